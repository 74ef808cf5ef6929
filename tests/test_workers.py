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
