"""CPU-bound work on many hosts spread over forked workers, one per CPU.

Only the results travel between processes: the function and its inputs are inherited by the
forked children (hooks, templates and validated settings are costly to pickle, or cannot be).
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from provision.errors import ProvisionError

T = TypeVar("T")
R = TypeVar("R")

SLICES_PER_WORKER = 8
_WORK: tuple[Callable[[Any], Any], Sequence[Any], int] | None = None  # what the forked children run, in how many slices


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fork_map(func: Callable[[T], R], items: Sequence[T], *, per_worker: int, workers: int | None = None) -> list[R]:
    """``[func(item) for item in items]``, in order; in forked workers when each gets at least
    ``per_worker`` items (fewer would not pay for the fork). An exception in a worker is raised here.

    ``workers`` overrides the count (tests use it to take the forked path on any machine).

    The workers are driven by this thread alone, through pipes (no manager thread, no lock shared with a
    child): Ctrl-C or SIGTERM here kills and reaps every worker at once, and nothing can wait for a
    worker that is gone (``concurrent.futures``' shutdown after its workers were killed could).
    """
    global _WORK
    count = workers or max(1, min(cpus(), len(items) // per_worker))
    if count == 1:
        return [func(item) for item in items]
    # more slices than workers, taken in turn as workers come free: a worker on a CPU that the
    # hypervisor or another process slows down takes fewer, and the others are not kept waiting
    slices = min(len(items), count * SLICES_PER_WORKER)
    _WORK = (func, items, slices)
    # what exists now is shared with the children: kept out of their garbage collector, which
    # would otherwise walk, and so copy, every inherited page (the gc module's advice for fork)
    gc.freeze()
    children: dict[int, int] = {}  # pid -> the read end of its answers
    terminated = _on_sigterm()
    try:
        tasks_read, tasks_write = os.pipe()
        # every slice's number, written before any worker starts: each worker reads one at a time (a
        # read of 4 bytes from a pipe is whole), until the pipe is empty and closed
        os.write(tasks_write, b"".join(i.to_bytes(4, "little") for i in range(slices)))
        os.close(tasks_write)
        # Ctrl-C or SIGTERM in the middle of a fork would interrupt Python's own at-fork handlers; they
        # are held back until every worker exists, then delivered as usual
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            parent = os.getpid()
            for _ in range(count):
                answer_read, answer_write = os.pipe()
                pid = os.fork()
                if pid == 0:  # the worker: never returns into the caller's stack
                    os.close(answer_read)
                    _worker(parent, tasks_read, answer_write)
                os.close(answer_write)
                children[pid] = answer_read
        finally:
            os.close(tasks_read)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        parts = _collect(children, slices, len(items))
    except BaseException:  # Ctrl-C, SIGTERM, an error: the workers end now, not after their slices
        _end(children)
        if terminated():  # reaped: now end as SIGTERM asked
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        terminated.restore()
        _WORK = None
        gc.unfreeze()
    results: list[Any] = [None] * len(items)
    for start, part in parts.items():
        results[start::slices] = part  # interleaved slices: hosts alike in cost are spread evenly
    return results


class _Terminated(BaseException):
    """SIGTERM arrived while workers ran: they are killed and reaped before the process ends by it."""


def _on_sigterm():
    """Where SIGTERM would end this process at once (its default), it raises :class:`_Terminated` instead
    while the workers run, so that none is left unreaped (an orphaned zombie lingers until init reaps
    it). A caller's own handler is left alone. Returns a callable: whether SIGTERM came; ``.restore()``."""
    import threading

    got: list[int] = []

    def handler(signum, frame):
        if not got:
            got.append(signum)
            raise _Terminated()

    own = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if own:
        signal.signal(signal.SIGTERM, handler)

    def terminated() -> bool:
        return bool(got)

    def restore() -> None:
        if own and not got:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    terminated.restore = restore  # type: ignore[attr-defined]
    return terminated


def _collect(children: dict[int, int], slices: int, total: int) -> dict[int, list[Any]]:
    """Read every worker's answers until each closes its pipe, then reap it. A worker's exception is
    raised here; a worker that died (the OOM killer, a signal) is an error: nothing it did is used."""
    import pickle
    import selectors

    buffers = {fd: bytearray() for fd in children.values()}
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 1 << 20)
                if chunk:
                    buffers[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
    parts: dict[int, list[Any]] = {}
    died = []
    for pid, fd in list(children.items()):
        os.close(fd)
        del children[pid]
        _, status = os.waitpid(pid, 0)
        data = memoryview(buffers[fd])
        while len(data) >= 8:
            size = int.from_bytes(data[:8], "little")
            if len(data) < 8 + size:
                break
            kind, where, value = pickle.loads(data[8:8 + size])
            if kind == "error":
                raise value
            parts[where] = value
            data = data[8 + size:]
        if status:
            died.append(pid)
    if died or len(parts) != slices:
        count = len(buffers)
        raise ProvisionError(f"a worker process died while {count} worked on {total} items; nothing was kept")
    return parts


def _end(children: dict[int, int]) -> None:
    """Kill and reap every worker still listed, and close their pipes."""
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid, fd in children.items():
        os.close(fd)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    children.clear()


def _worker(parent: int, tasks: int, answers: int) -> None:
    """A forked worker: take slice numbers from ``tasks`` until none is left, write each slice's results
    (or the exception that stopped it) to ``answers``, then exit without running the caller's code."""
    import pickle

    code = 0
    try:
        _worker_start(parent)
        while True:
            number = os.read(tasks, 4)
            if len(number) < 4:
                break
            where = int.from_bytes(number, "little")
            failed = False
            try:
                message = pickle.dumps(("part", where, _run_slice(where)))
            except Exception as exc:
                failed = True
                try:
                    message = pickle.dumps(("error", where, exc))
                except Exception:  # an exception that cannot travel: its text does
                    message = pickle.dumps(("error", where, ProvisionError(f"{type(exc).__name__}: {exc}")))
            _write_all(answers, len(message).to_bytes(8, "little") + message)
            if failed:
                break
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _worker_start(parent: int) -> None:
    """In each worker: die with the parent (a parent killed by SIGKILL must not leave workers blocked on a
    pipe, holding the caller's output open), and leave Ctrl-C and SIGTERM to the parent, which ends them."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect (orphans go to 1 or a subreaper)
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # held while the parent forked


def _run_slice(start: int) -> list[Any]:
    assert _WORK is not None
    func, items, step = _WORK
    return [func(item) for item in items[start::step]]


# -- fan-outs to nodes: threads that wait on the network, and the programs they start (ssh, the probe) --

_CHILDREN: set = set()  # subprocess.Popen objects the node threads are waiting on


def run_child(argv: list[str], *, data: bytes | None = None, timeout: float | None = None):
    """``subprocess.run(argv, input=data, capture_output=True)``, the child known to :class:`FanOut` so
    that a signal ends it with the run (ssh and the local probe: nothing of a run outlives it)."""
    import subprocess

    stdin = subprocess.PIPE if data is not None else subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _CHILDREN.add(proc)
    try:
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)
    finally:
        _CHILDREN.discard(proc)


def end_children() -> None:
    """Kill and reap every program a node thread started and still waits on (one given up on after its
    node's timeout, whose thread still waits): nothing provision started outlives it."""
    for proc in list(_CHILDREN):
        try:
            proc.kill()
            proc.wait()
        except ProcessLookupError:  # it ended meanwhile
            pass


class FanOut:
    """``func(item)`` for every item, ``forks`` at a time, in daemon threads that this thread waits on
    without joining: Ctrl-C or SIGTERM here ends the wait at once, kills every program the threads
    started (:func:`run_child`), and leaves nothing running (``concurrent.futures`` joins its threads
    first, each up to its node's timeout). :meth:`results` are in the items' order; the first item's
    exception, in that order, is raised."""

    def __init__(self, func: Callable[[T], R], items: Sequence[T], *, forks: int) -> None:
        import itertools
        import queue
        import threading

        self.count = len(items)
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.terminated = _on_sigterm()
        order = itertools.count()
        take = threading.Lock()

        def work() -> None:
            while True:
                with take:
                    index = next(order)
                if index >= self.count:
                    return
                try:
                    self.done.put((index, True, func(items[index])))
                except BaseException as exc:  # handed to the waiting thread, raised there
                    self.done.put((index, False, exc))

        for n in range(max(1, min(forks, self.count))):
            threading.Thread(target=work, name=f"fan-out {n}", daemon=True).start()

    def results(self) -> list[R]:
        import queue

        found: dict[int, tuple[bool, Any]] = {}
        try:
            while len(found) < self.count:
                try:
                    index, ok, value = self.done.get(timeout=0.5)  # a timed wait: signals are seen at once
                except queue.Empty:
                    continue
                found[index] = (ok, value)
        except BaseException:
            self.stop()
            raise
        self.terminated.restore()
        for index in range(self.count):
            ok, value = found[index]
            if not ok:
                raise value
        return [found[i][1] for i in range(self.count)]

    def stop(self) -> None:
        """End every program the threads started; after a SIGTERM, end this process by it."""
        end_children()
        self.terminated.restore()
        if self.terminated():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


def fan_out(func: Callable[[T], R], items: Sequence[T], *, forks: int) -> list[R]:
    """``[func(item) for item in items]``, ``forks`` at a time (:class:`FanOut`)."""
    return FanOut(func, items, forks=forks).results()
