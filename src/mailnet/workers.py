"""Work spread over worker processes, results back in input order.

Import, fetch and classify each run a function over a stream of tasks in
worker processes while this process reads and writes the store. They share
this one pool so that stopping works the same everywhere.

Workers are never killed: a worker killed while it writes a result to its pipe
leaves a half-written message that hangs the pool (multiprocessing.Pool and
ProcessPoolExecutor alike; a Ctrl-C during import hung CI that way). Instead a
worker takes SIGINT only while it runs a task, where the executor returns the
KeyboardInterrupt like any other error, and checks a stop flag before each
task; idle or writing, it ignores SIGINT. So a Ctrl-C (which the terminal
sends to every process of the job) ends a network fetch stuck in its timeout
at once, and the pool then shuts down cleanly.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_stop: Any = None  # in a worker: the pool's stop flag (a multiprocessing.Event)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back while the executor may fork a worker: a child inherits the mask, so a
    Ctrl-C cannot kill it before :func:`_start` ignores SIGINT (it then drops what is pending).
    Held back, not lost: this process gets it as soon as the mask is restored."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no fork, no signal masks
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _start(stop: Any, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    global _stop
    _stop = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if initializer is not None:
        initializer(*initargs)


def stopping() -> bool:
    """In a worker: whether the pool was abandoned, so slow clean-up (a logout) is skipped."""
    return _stop is not None and _stop.is_set()


def _run(func: Callable[[T], R], item: T) -> R:
    # Interruptible first, then check the flag: a stop signalled in between is not missed.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if _stop.is_set():
            raise KeyboardInterrupt
        return func(item)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class Workers:
    """`processes` worker processes, each set up once by `initializer(*initargs)`.

    `ahead` tasks per worker are kept in flight, so the workers stay busy
    while the caller stores a result, and memory stays bounded however long
    the input.
    """

    def __init__(self, processes: int, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = (), *, ahead: int = 2) -> None:
        # fork starts workers in milliseconds and shares what the parent built.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        self._stop = context.Event()
        self._pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start,
                                         initargs=(self._stop, initializer, initargs))
        self._in_flight = processes * ahead

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.close(abandon=exc_type is not None)

    def map(self, func: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """func(item) for every item, in input order."""
        pending: collections.deque[Future[R]] = collections.deque()
        for item in items:
            with _sigint_blocked():  # submit is where the executor starts its workers
                pending.append(self._pool.submit(_run, func, item))
            if len(pending) >= self._in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self, *, abandon: bool = False) -> None:
        """Let the workers finish and exit; with `abandon` (after an error), stop their tasks."""
        if abandon:
            self._stop.set()
            for child in multiprocessing.active_children():  # the pool's workers
                with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                    os.kill(child.pid, signal.SIGINT)
        self._pool.shutdown(wait=True, cancel_futures=abandon)
