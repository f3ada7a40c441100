"""The shared Jinja2 environment: StrictUndefined, XML autoescaped, templates from every plugin."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def environment(extra_paths: tuple[str, ...] = ()):
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

    import provision_templates

    builtin = str(Path(provision_templates.__file__).parent)
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(builtin), *(FileSystemLoader(p) for p in extra_paths)]),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("xml.j2",), default_for_string=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates do not change during a run: no stat per render
    )
    return env
