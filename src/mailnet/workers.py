"""Work spread over worker processes, results back in input order.

Import, fetch and classify each run a function over a stream of tasks in
worker processes while this process reads and writes the store. They share
this one pool so that stopping works the same everywhere.

Workers are never killed in the normal course: a worker killed while it writes
a result to its pipe leaves a half-written message that hangs the pool
(multiprocessing.Pool and ProcessPoolExecutor alike; a Ctrl-C during import
hung CI that way). Instead a worker takes SIGINT only while it runs a task,
where the executor returns the KeyboardInterrupt like any other error, and
checks a stop flag before each task; idle or writing, it ignores SIGINT. So a
Ctrl-C (which the terminal sends to every process of the job) ends a network
fetch stuck in its timeout at once, and the pool then shuts down cleanly.

No lock is taken on a path a signal can interrupt: the stop flag is one byte of
shared memory, read and written without a lock (a multiprocessing.Event takes a
semaphore, and a worker interrupted while holding it blocked every other worker
for good). A worker dies with its parent (kill -9 or the OOM killer must not
leave workers holding IMAP connections), and an abandoned pool that still has a
worker after a grace period kills it rather than hang.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Seconds an abandoned pool's workers get to end the task they were interrupted in.
GRACE = 10.0
_PR_SET_PDEATHSIG = 1

_stop: Any = None  # in a worker: the pool's stop flag (a lock-free shared byte)


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


def _die_with(parent: int) -> None:
    """End this worker when its parent ends, however the parent ends."""
    if sys.platform.startswith("linux"):
        # The kernel kills us even while we are stuck in C code holding the GIL.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _start(stop: Any, parent: int, initializer: Callable[..., None] | None,
           initargs: tuple[Any, ...]) -> None:
    global _stop
    _stop = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if initializer is not None:
        initializer(*initargs)


def stopping() -> bool:
    """In a worker: whether the pool was abandoned, so slow clean-up (a logout) is skipped."""
    return _stop is not None and bool(_stop.value)


def _run(func: Callable[[T], R], item: T) -> R:
    # Interruptible first, then check the flag: a stop signalled in between is not missed.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if _stop.value:
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
                 initargs: tuple[Any, ...] = (), *, ahead: int = 2, grace: float = GRACE) -> None:
        # fork starts workers in milliseconds and shares what the parent built.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        self._stop = context.RawValue(ctypes.c_bool, False)
        self._pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start,
                                         initargs=(self._stop, os.getpid(), initializer,
                                                   initargs))
        self._in_flight = processes * ahead
        self._grace = grace

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

    def _processes(self) -> list[multiprocessing.process.BaseProcess]:
        # The executor keeps its workers here (CPython 3.8 and later); this pool's only.
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def close(self, *, abandon: bool = False) -> None:
        """Let the workers finish and exit; with `abandon` (after an error), stop their tasks."""
        if not abandon:
            self._pool.shutdown(wait=True)
            return
        self._stop.value = True
        workers = self._processes()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError, TypeError):  # exited meanwhile
                os.kill(worker.pid, signal.SIGINT)
        manager = getattr(self._pool, "_executor_manager_thread", None)
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + self._grace
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:  # deaf to SIGINT for the whole grace: the last resort
            if worker.is_alive():
                worker.kill()
                worker.join()
        # The executor's thread reaps the workers too; bounded, as a killed one can stall it.
        if manager is not None:
            manager.join(self._grace)
