"""A node step that runs after the files: it stamps the digest of a file provision just wrote into a
file of its own (as a daemon reload would act on its new configuration). Standard library only."""

import hashlib
import os


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except IOError:
        return None


def plan(spec, owned, context):
    watched = _read(spec["watch"])
    if watched is None:
        return {"changes": [{"target": spec["stamp"], "action": "create", "why": "its file is written first"}],
                "refused": []}
    want = hashlib.sha256(watched).hexdigest()
    if _read(spec["stamp"]) == want.encode():
        return {"changes": [], "refused": []}
    return {"changes": [{"target": spec["stamp"], "action": "update", "why": "its file changed"}], "refused": []}


def snapshot(spec):
    data = _read(spec["stamp"])
    return None if data is None else data.decode()


def apply(spec, owned, context):
    data = _read(spec["watch"])
    if data is None:
        raise RuntimeError("%s is not there: the step runs after the files" % spec["watch"])
    with open(spec["stamp"], "w") as fh:
        fh.write(hashlib.sha256(data).hexdigest())
    return {"stamped": spec["watch"]}


def restore(saved, spec):
    if saved is None:
        try:
            os.unlink(spec["stamp"])
        except OSError:
            pass
    else:
        with open(spec["stamp"], "w") as fh:
            fh.write(saved)
    return []
