"""Run a piece of a test as an unprivileged user (nobody), as provision may be run on a node."""

import os
from collections.abc import Callable

NOBODY = 65534


def as_nobody(what: Callable[[], str]) -> str:
    """``what()`` in a forked child that has dropped to nobody (or stays the unprivileged user the suite
    already runs as); its result, or the error it raised, as text."""
    read, written = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            if os.geteuid() == 0:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                said = str(what())
            except Exception as exc:  # the error is the answer the test asserts
                said = f"{type(exc).__name__}: {exc}"
            os.write(written, said.encode())
        finally:
            os._exit(0)
    os.close(written)
    os.waitpid(pid, 0)
    with os.fdopen(read) as fh:
        return fh.read()
