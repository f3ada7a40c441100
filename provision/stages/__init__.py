"""The pipeline's stages: preflight, render (and the tree of --out), apply with its remedies, and the
settings' defaults; :mod:`provision.pipeline` runs them."""
