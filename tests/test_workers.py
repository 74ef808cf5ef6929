"""The worker pool import, fetch and classify share: order, and stopping without a hang."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from mailnet.workers import Workers


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_results_come_back_in_input_order() -> None:
    naps = [0.05, 0.0, 0.03, 0.0, 0.01, 0.0] * 3
    with Workers(2, ahead=1) as pool:
        assert list(pool.map(nap, naps)) == naps


def test_an_abandoned_pool_stops_tasks_stuck_in_a_long_wait() -> None:
    """What a Ctrl-C does to a fetch waiting out a network timeout: it ends now, not in a minute."""
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), Workers(2) as pool:
        results = pool.map(nap, [0.0, 60.0, 60.0, 60.0])
        assert next(results) == 0.0  # the long naps are running or queued now
        raise KeyboardInterrupt
    assert time.monotonic() - start < 10
    assert multiprocessing.active_children() == []


def test_idle_workers_ignore_a_ctrl_c_meant_for_the_main_process() -> None:
    with Workers(2) as pool:
        assert list(pool.map(nap, [0.0, 0.0])) == [0.0, 0.0]
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGINT)
        time.sleep(0.2)
        assert len(multiprocessing.active_children()) == 2
        assert list(pool.map(nap, [0.01, 0.0])) == [0.01, 0.0]


def deaf_nap(seconds: float) -> float:
    """A task that cannot be interrupted (as one stuck in C code would be)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return nap(seconds)


def test_an_abandoned_pool_whose_worker_ignores_the_stop_still_closes() -> None:
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), Workers(2, grace=1.0) as pool:
        results = pool.map(deaf_nap, [0.0, 60.0, 60.0])
        assert next(results) == 0.0
        raise KeyboardInterrupt
    assert time.monotonic() - start < 20
    assert multiprocessing.active_children() == []


def test_the_stop_flag_takes_no_lock() -> None:
    """A lock in the flag is one a signal can leave held: every worker then blocks for good
    (a multiprocessing.Event did that in CI)."""
    pool = Workers(1)
    try:
        assert not hasattr(pool._stop, "get_lock") and not hasattr(pool._stop, "_cond")
    finally:
        pool.close()


ORPHAN = """
import threading, time
from mailnet.workers import Workers

def spin(_):
    while True:  # a stall: busy, never returns
        pass

pool = Workers(2)
threading.Thread(target=lambda: next(pool.map(spin, range(4))), daemon=True).start()
while len(pool._pool._processes or {}) < 2:
    time.sleep(0.01)
print(" ".join(str(pid) for pid in pool._pool._processes), flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is gone
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to see the workers")
def test_workers_die_with_their_parent_even_when_stalled(tmp_path) -> None:
    """kill -9 (or the OOM killer) of import or fetch must not leave its workers running."""
    import subprocess
    import sys

    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    workers = [int(pid) for pid in proc.stdout.readline().split()]
    assert len(workers) == 2
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if not _gone(pid)]
    for pid in left:  # don't leave them burning CPU if the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == []
