"""A time limit for one unit of work (one photo's detection, one edit's synthesis).

``time_limit(seconds)`` raises :class:`WorkTimeout` inside the block once ``seconds`` of
wall-clock time have passed, using ``SIGALRM`` (``signal.setitimer``). It works where
signals are delivered: the main thread of a process, which is where the in-process
backend and Ray's (synchronous) actors run tasks. Elsewhere, or with ``seconds == 0``, it
does not limit; the Ray backend's per-task timeout is the outer guard. Native code that
does not return to Python (one long OpenCV call) is interrupted only when it returns.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WorkTimeout(Exception):
    """The block ran past its time limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expire(signum: int, frame: object) -> None:
        raise WorkTimeout(f"ran longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
