"""fork_map: results in order, from forked workers when the work is large enough, errors raised."""

import os

import pytest

from provision.parallel import fork_map


def test_results_come_back_in_order_from_forked_workers():
    results = fork_map(lambda n: (n * n, os.getpid()), list(range(10)), per_worker=1, workers=3)
    assert [square for square, _ in results] == [n * n for n in range(10)]
    pids = {pid for _, pid in results}
    assert pids and os.getpid() not in pids  # a pool worker may take more than one slice


def test_a_slow_item_does_not_hold_back_the_rest(tmp_path):
    """Slices are taken as workers come free: the worker stuck on one slow item takes no other. The slow
    item waits for the event itself (the other 15 done), not for a guessed time; 60 s is only a bound."""
    import time

    def work(n):
        if n == 0:
            deadline = time.monotonic() + 60
            while len(list(tmp_path.glob("done-*"))) < 15 and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            (tmp_path / f"done-{n}").touch()
        return os.getpid()

    pids = fork_map(work, list(range(16)), per_worker=1, workers=2)
    assert len(list(tmp_path.glob("done-*"))) == 15
    assert pids.count(pids[0]) == 1 and len(set(pids)) == 2


def test_small_work_stays_in_this_process():
    results = fork_map(lambda n: os.getpid(), list(range(10)), per_worker=100)
    assert set(results) == {os.getpid()}


def test_an_error_in_a_worker_is_raised_here():
    def fail_on_seven(n):
        if n == 7:
            raise ValueError(f"item {n} is bad")
        return n

    with pytest.raises(ValueError, match="item 7 is bad"):
        fork_map(fail_on_seven, list(range(10)), per_worker=1, workers=2)


def test_output_buffered_before_the_fork_is_written_once():
    """multiprocessing flushes the standard streams before it forks; a child must not repeat them."""
    import subprocess
    import sys

    script = ("import sys; from provision.parallel import fork_map\n"
              "sys.stdout.write('before\\n')\n"
              "fork_map(lambda n: n, list(range(4)), per_worker=1, workers=2)\n"
              "print('after')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out == "before\nafter\n"


def test_a_worker_that_dies_is_an_error_not_a_traceback():
    from provision.errors import ProvisionError

    def die_on_three(n):
        if n == 3:
            os._exit(9)  # as the OOM killer would end it
        return n

    with pytest.raises(ProvisionError, match="a worker process died while 2 worked on 6 items; nothing was kept"):
        fork_map(die_on_three, list(range(6)), per_worker=1, workers=2)
