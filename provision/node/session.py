"""One connection, many requests (stdlib only, Python 3.6+): the node side of provision.remote.session.

Apply talks to a node several times (probe, remedies, probe again, the agent, the verification after
it); each over a connection of its own would pay the login (and the login shell's start-up files) and
Python's start each time. This program stays for the run instead: it reads framed requests on its
standard input and answers each on its standard output, until the input ends.

A frame is the length of its body in bytes, in decimal, a newline, then the body. A request's body is
JSON: ``{"load": [[name, source], ...], "call": name, "spec": ...}``; the modules in ``load`` are
registered first (each once per session: the controller sends only those not sent before), then
``call``'s ``main(spec)`` runs and what it prints is the answer (a ``call`` of null only loads: the
controller sends modules ahead, to be compiled while it works out the request). An answer's body starts with ``=``
(what ``main`` printed follows) or ``!`` (why the request failed follows: the last lines of its
traceback, as a program that failed would have written them).

What the modules run cannot take the session's pipes: standard input is ``/dev/null`` and standard
output goes to standard error while a request runs."""
import io
import json
import os
import sys


class Frames:
    """The frames on a descriptor, after the bytes already read from it (``leftover``)."""

    def __init__(self, leftover, fd):
        self.buffer = bytearray(leftover)
        self.fd = fd

    def _more(self):
        chunk = os.read(self.fd, 1 << 20)
        self.buffer += chunk
        return bool(chunk)

    def next(self):
        """The next frame's body (bytes), or None at the end of the input (or mid-frame: the controller
        went away)."""
        while b"\n" not in self.buffer:
            if not self._more():
                return None
        head, _, rest = bytes(self.buffer).partition(b"\n")
        size = int(head)
        while len(rest) < size:
            if not self._more():
                return None
            rest = bytes(self.buffer).partition(b"\n")[2]
        self.buffer = bytearray(rest[size:])
        return rest[:size]


def write_frame(stream, body):
    stream.write(b"%d\n" % len(body) + body)
    stream.flush()


def serve(package, requests, answers):
    """Answer each request of ``requests`` (:class:`Frames`) on ``answers`` until the input ends."""
    import traceback

    while True:
        body = requests.next()
        if body is None:
            return
        try:
            request = json.loads(body.decode("utf-8"))
            package.load([tuple(part) for part in request.get("load", [])])
            if request.get("call") is None:  # only the modules, sent ahead of the request that needs them
                write_frame(answers, b"=")
                continue
            module = getattr(package, request["call"])
            printed = io.StringIO()
            sys.stdout, saved = printed, sys.stdout
            try:
                module.main(request["spec"])
            finally:
                sys.stdout = saved
            answer = b"=" + printed.getvalue().encode("utf-8")
        except Exception:
            lines = traceback.format_exc().strip().splitlines()[-3:]
            answer = b"!" + "\n".join(lines).encode("utf-8", "replace")
        write_frame(answers, answer)


def main(spec):
    """Serve the controller's requests (``spec`` is unused). The program came in a frame of its own, read
    by a buffered reader of standard input, which may hold the start of the first request already."""
    package = sys.modules[__package__]
    sys.stdout.flush()
    pipe = os.dup(0)  # the session's own copies of its pipes
    answers = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # a child that writes to its standard output writes to the session's standard error
    # what the reader holds beyond the program: one read of the underlying descriptor at most, which is
    # now /dev/null (nothing) where it held nothing
    leftover = sys.stdin.buffer.read1(1 << 30)  # type: ignore[union-attr]
    serve(package, Frames(leftover, pipe), answers)
