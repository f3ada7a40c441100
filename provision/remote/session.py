"""One connection per node for a whole run: the probe, the remedies, the probe again, the apply agent and
the verification after it are requests to one program on the node (:mod:`provision.node.session`),
over one SSH (or ``docker exec``) session, instead of one connection each.

Each connection costs the node a login, its login shell's start-up files (``~/.bashrc`` runs for an SSH
command on Debian) and Python's start; on a fleet those, not provision's own work, are most of a no-op
apply. Within :class:`sessions`, :func:`provision.remote.probe.run_bundle` sends a request to the
node's session, started at its first request and ended when the block ends; outside it (and for
paramiko, an Ansible connection, or local hosts but the one started ahead) each bundle runs as a
program of its own.

The wire: a frame is its body's length in bytes, in decimal, a newline, then the body. The session
program comes first in a frame of its own (read by :data:`SESSION_BOOT`), then one request per frame;
each request carries the sources of the modules the node has not been sent yet. See
:mod:`provision.node.session` for the requests and answers.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import threading
import time
from typing import Any

from provision.errors import Unreachable
from provision.remote.hosts import HostSpec

# What the node's Python runs (``-c``) for a session: its program in the first frame on standard input
# (the rest of the input is the requests). What every request needs is imported before the first byte
# comes: a session started ahead (:meth:`Sessions.warm`) has done it by the time its program arrives.
SESSION_BOOT = ('import sys,json,subprocess;I=sys.stdin.buffer;S=I.read(int(I.readline())).decode("utf-8");'
                'exec(compile(S,"<provision>","exec"),{"__name__":"__main__","PROGRAM":S})')
KEEP_STDERR = 64 * 1024  # the last bytes of the session's standard error, for the reason it failed


def frame(body: bytes) -> bytes:
    return b"%d\n" % len(body) + body


def can_hold(host: HostSpec, names: tuple[str, ...]) -> bool:
    """Whether the bundle ``names`` for ``host`` may go to a session: ssh and docker (a program of ours
    whose pipes stay open), and the probe on the local node (under the node's own Python; the local
    agent runs under provision's). A local one only where it was started ahead (:meth:`Sessions.warm`):
    an inventory of many local hosts would otherwise keep a Python running for each."""
    from provision.node import PROBE

    if host.problem:
        return False
    return host.scheme in ("ssh", "docker") or (host.is_local and names == PROBE)


def session_argv(host: HostSpec, *, timeout: float) -> list[str]:
    """The argument vector that starts the session program on ``host`` (ssh, ``docker exec -i``, or the
    local node's Python)."""
    from provision.remote.probe import local_node_python, probe_command
    from provision.remote.transport import connect

    if host.is_local:
        return [*local_node_python(host), "-I", "-S", "-c", SESSION_BOOT]
    backend = connect(host, timeout=timeout).backend
    command = backend.get_command(probe_command(host.python), SESSION_BOOT)
    if host.scheme == "docker":
        return backend.argv(command, stdin=True)
    return backend.argv(command)


def _failed(body: bytes) -> None:
    """:class:`Unreachable` for an answer that says its request failed (``!`` and why)."""
    from provision.remote.probe import brief

    if body[:1] == b"!":
        raise Unreachable(f"the node program failed: {brief(body[1:].decode('utf-8', 'replace'))}")


class NodeSession:
    """The node program serving one run's requests for ``host``; started at the first :meth:`call`.
    One thread at a time uses it (a node's requests come one after another)."""

    def __init__(self, host: HostSpec) -> None:
        self.host = host
        self.proc: subprocess.Popen | None = None
        self.loaded: set[str] = set()
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.started = 0  # how many times its program was started (a failed request ends it)
        self.requests = 0  # how many requests it answered
        self.lock = threading.Lock()  # held by the request using it (and by the run ending it for room)
        self.ahead = b""  # sent ahead (:meth:`warm`): what is still to be written, and
        self.unanswered = 0  # how many answers to load-only requests are still to be read

    def warm(self, names: tuple[str, ...], *, timeout: float) -> None:
        """Start the program now and send the modules of ``names`` ahead, without waiting: the node
        starts Python and compiles them while this process works out the first request."""
        from provision.node import sources

        if self.proc is None:
            self._start(timeout)
        missing = [part for part in sources(names) if part[0] not in self.loaded]
        if missing:
            self.ahead += frame(json.dumps({"load": missing, "call": None}).encode("utf-8"))
            self.loaded.update(name for name, _ in missing)
            self.unanswered += 1
        try:
            written = os.write(self.proc.stdin.fileno(), self.ahead)  # type: ignore[union-attr]
        except (BlockingIOError, BrokenPipeError):  # the rest goes with the first request
            written = 0
        self.ahead = self.ahead[written:]

    def call(self, names: tuple[str, ...], spec: Any, *, timeout: float) -> dict:
        """What the bundle ``names`` (its last module's ``main(spec)``) answers on the node, as a dict; or
        :class:`Unreachable`, and the session ends (the next call starts another)."""
        from provision.node import sources

        deadline = time.monotonic() + timeout
        if self.proc is None:
            self._start(timeout)
        missing = [part for part in sources(names) if part[0] not in self.loaded]
        data, self.ahead = self.ahead + frame(json.dumps({"load": missing, "call": names[-1], "spec": spec}).encode("utf-8")), b""
        try:
            body = self._exchange(data, deadline, timeout)
            while self.unanswered:  # the answers to what was sent ahead come first
                self.unanswered -= 1
                _failed(body)
                body = self._exchange(b"", deadline, timeout)
        except BaseException:
            self.close(kill=True)
            raise
        self.loaded.update(name for name, _ in missing)
        self.requests += 1
        from provision.remote.probe import answer_of

        _failed(body)
        return answer_of(body[1:].decode("utf-8", "replace"))

    def _start(self, timeout: float) -> None:
        from provision.node import SESSION, bundle
        from provision.parallel import _CHILDREN

        argv = session_argv(self.host, timeout=timeout)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:  # the local node's Python, or ssh or docker here, is missing
            from provision.remote.probe import exit_reason

            raise Unreachable(exit_reason(self.host, 127, f"{argv[0]}: {exc.strerror}")) from None
        _CHILDREN.add(self.proc)  # a signal to the run ends it with the run
        self.started += 1
        self.loaded.clear()
        self.stdout.clear()
        self.stderr.clear()
        self.unanswered = 0
        self.ahead = frame(bundle(SESSION, {}).encode("utf-8"))  # the program first
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)

    def _exchange(self, data: bytes, deadline: float, timeout: float) -> bytes:
        """Write ``data`` and read the next answer's frame, by ``deadline``."""
        proc = self.proc
        assert proc is not None and proc.stdin and proc.stdout and proc.stderr
        view = memoryview(data)
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            selector.register(proc.stderr, selectors.EVENT_READ)
            if view:
                selector.register(proc.stdin, selectors.EVENT_WRITE)
            ended = False
            while True:
                body = self._frame()
                if body is not None:
                    return body
                if ended:
                    raise Unreachable(self._why_ended())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unreachable(f"no answer within {timeout:g} s")
                for key, _ in selector.select(left):
                    if key.fileobj is proc.stdin:
                        try:
                            view = view[os.write(proc.stdin.fileno(), view[:1 << 20]):]
                        except BrokenPipeError:  # the program ended: its output says why
                            view = view[:0]
                        if not view:
                            selector.unregister(proc.stdin)
                        continue
                    chunk = os.read(key.fd, 1 << 20)
                    if key.fileobj is proc.stderr:
                        self.stderr += chunk
                        del self.stderr[:-KEEP_STDERR]
                        if not chunk:
                            selector.unregister(proc.stderr)
                    elif chunk:
                        self.stdout += chunk
                    else:
                        ended = True

    def _frame(self) -> bytes | None:
        """The first whole frame read, taken from the buffer; None until one is whole. Output that is not
        a frame (a login banner on standard output, say) is the answer's failure."""
        head, newline, rest = bytes(self.stdout[:24]).partition(b"\n")
        if not newline:
            if len(self.stdout) >= 24 or (self.stdout and not self.stdout.isdigit()):
                raise Unreachable(self._not_an_answer())
            return None
        if not head.isdigit():
            raise Unreachable(self._not_an_answer())
        size, start = int(head), len(head) + 1
        if len(self.stdout) < start + size:
            return None
        body = bytes(self.stdout[start:start + size])
        del self.stdout[:start + size]
        return body

    def _not_an_answer(self) -> str:
        from provision.remote.probe import no_answer

        return no_answer(bytes(self.stdout[:200]).decode("utf-8", "replace"))

    def _why_ended(self) -> str:
        """Why the program ended before it answered: its exit (the node's Python missing: 127; ssh's own
        failure: 255) and the last lines it wrote on standard error."""
        from provision.remote.probe import exit_reason, ssh_said

        proc = self.proc
        assert proc is not None
        try:
            rc = proc.wait(5)
        except subprocess.TimeoutExpired:
            return "the node closed the session's output and did not end"
        try:  # what it wrote last on standard error
            while chunk := os.read(proc.stderr.fileno(), 1 << 20):  # type: ignore[union-attr]
                self.stderr += chunk
        except BlockingIOError:
            pass
        stderr = self.stderr.decode("utf-8", "replace")
        if rc == 255 and self.host.scheme == "ssh":
            return ssh_said(stderr, rc)
        return exit_reason(self.host, rc or 1, stderr)

    def end_input(self) -> None:
        """Close the program's input: at the end of its requests, it ends."""
        if self.proc is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:  # a pipe whose reader is gone: closed all the same
                pass

    def close(self, *, kill: bool = False, wait: float = 2.0) -> None:
        """End the session: its input closes and the node program ends; killed where ``kill`` or when it
        has not ended within ``wait`` seconds."""
        from provision.parallel import _CHILDREN

        proc = self.proc
        if proc is None:
            return
        self.end_input()
        self.proc = None
        try:
            if not kill:
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    kill = True
            if kill:
                proc.kill()
                proc.wait()
        finally:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    pipe.close()  # type: ignore[union-attr]
                except OSError:  # a pipe whose other end is gone: closed all the same
                    pass
            _CHILDREN.discard(proc)


MAX_SESSIONS = 256  # each an ssh process here (beside its master), a few MiB: a fleet past it pays per stage


def session_limit() -> int:
    """How many sessions a run keeps open at once: at most :data:`MAX_SESSIONS`, three descriptors each,
    within this process's limit (raised to its hard limit, up to 8,192, as a run of many nodes needs)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):  # not allowed here: the soft limit stands, and the room is smaller
            pass
    room = 8192 if soft == resource.RLIM_INFINITY else soft
    return max(8, min(MAX_SESSIONS, (room - 256) // 3))


class Sessions:
    """The sessions of a run, one per node, made at each node's first request. At most ``limit`` are
    open at once: past that, the one used least recently (and not in use) ends, and its node's next
    request starts another (a fleet larger than the limit pays a connection per stage, as without
    sessions)."""

    def __init__(self, limit: int | None = None) -> None:
        self.lock = threading.Lock()
        self.open: dict[HostSpec, NodeSession] = {}
        self.limit = limit or session_limit()

    def holds(self, host: HostSpec, names: tuple[str, ...]) -> bool:
        return can_hold(host, names) and (not host.is_local or host in self.open)

    def of(self, host: HostSpec) -> NodeSession:
        """``host``'s session (its program starts at its first request)."""
        with self.lock:
            session = self.open.pop(host, None) or NodeSession(host)
            self.open[host] = session  # the most recently used last
            return session

    def call(self, host: HostSpec, names: tuple[str, ...], spec: Any, *, timeout: float) -> dict:
        """A request to ``host``'s session (:meth:`NodeSession.call`), within the limit of open sessions."""
        session = self.of(host)
        with session.lock:
            if session.proc is None:
                self._make_room(session)
            return session.call(names, spec, timeout=timeout)

    def _make_room(self, starting: NodeSession) -> None:
        """End the least recently used sessions that no request is using, so that ``starting`` keeps the
        number open within the limit."""
        with self.lock:
            others = [s for s in self.open.values() if s is not starting and s.proc is not None]
        for old in others[:max(0, len(others) + 1 - self.limit)]:
            if old.lock.acquire(blocking=False):  # one in use is left alone
                try:
                    old.close()
                finally:
                    old.lock.release()

    def warm(self, host: HostSpec, names: tuple[str, ...], *, timeout: float) -> None:
        """Start ``host``'s session ahead of its first request for ``names`` (:meth:`NodeSession.warm`);
        nothing where that bundle would not go to a session. A failure shows at the request."""
        if can_hold(host, names):
            session = self.of(host)
            with session.lock:
                if session.proc is None:
                    self._make_room(session)
                try:
                    session.warm(names, timeout=timeout)
                except Unreachable:  # its Python cannot start: the request starts it again and says why
                    pass

    def close(self) -> None:
        """End every session: all inputs close first, so the nodes end together."""
        with self.lock:
            sessions, self.open = list(self.open.values()), {}
        for session in sessions:
            session.end_input()
        for session in sessions:
            session.close()


class sessions:
    """``with sessions():`` each node gets one connection for the block's requests
    (:func:`provision.remote.probe.run_bundle`), ended with the block. Nested blocks share the outer one's."""

    def __enter__(self) -> Sessions:
        from provision.remote import probe

        self.own = probe._SESSIONS is None
        if self.own:
            probe._SESSIONS = Sessions()
        return probe._SESSIONS

    def __exit__(self, *exc) -> None:
        from provision.remote import probe

        if self.own:
            active, probe._SESSIONS = probe._SESSIONS, None
            if active is not None:
                active.close()
