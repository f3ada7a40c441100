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
_WORK: tuple[Callable[[Any], Any], Sequence[Any]] | None = None  # what the forked children run


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fork_map(func: Callable[[T], R], items: Sequence[T], *, per_worker: int, workers: int | None = None) -> list[R]:
    """``[func(item) for item in items]``, in order; in forked workers when each gets at least
    ``per_worker`` items (fewer would not pay for the fork). An exception in a worker is raised here.

    ``workers`` overrides the count (tests use it to take the forked path on any machine).
    """
    global _WORK
    count = workers or max(1, min(cpus(), len(items) // per_worker))
    if count == 1:
        return [func(item) for item in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    _WORK = (func, items)
    # more slices than workers, taken in turn as workers come free: a worker on a CPU that the
    # hypervisor or another process slows down takes fewer, and the others are not kept waiting
    slices = min(len(items), count * SLICES_PER_WORKER)
    # what exists now is shared with the children: kept out of their garbage collector, which
    # would otherwise walk, and so copy, every inherited page (the gc module's advice for fork)
    gc.freeze()
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start,
                               initargs=(os.getpid(),))
    try:
        # the workers are forked as the slices are handed out: Ctrl-C or SIGTERM in the middle of a fork
        # would interrupt Python's own at-fork handlers ("Exception ignored in ..._releaseLock"); they
        # are held back until every worker exists, then delivered as usual
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            running = pool.map(_run_slice, [(start, slices) for start in range(slices)])
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        parts = list(running)
    except BrokenProcessPool:  # killed (the OOM killer, a signal): nothing it did is used
        raise ProvisionError(f"a worker process died while {count} worked on {len(items)} items; nothing was kept") from None
    except BaseException:  # Ctrl-C, SIGTERM, an error: the workers end now, not after their slices
        for child in multiprocessing.active_children():
            child.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _WORK = None
        gc.unfreeze()
    results: list[Any] = [None] * len(items)
    for start, part in enumerate(parts):
        results[start::slices] = part  # interleaved slices: hosts alike in cost are spread evenly
    return results


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


def _run_slice(where: tuple[int, int]) -> list[Any]:
    assert _WORK is not None
    func, items = _WORK
    start, step = where
    return [func(item) for item in items[start::step]]
