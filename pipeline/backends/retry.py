"""Attempts and their outcomes: the retry bookkeeping every backend shares.

A :class:`RetryQueue` hands out :class:`Attempt` s: retries whose backoff has elapsed
first, then new batches pulled lazily from the caller's iterable. A backend reports each
attempt back with :meth:`RetryQueue.succeeded` or :meth:`RetryQueue.failed` and yields
the :class:`BatchOutcome` it gets. No Ray here.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_retries`` more attempts per batch; retry ``n`` (1-based) waits
    ``min(backoff_s * 2 ** (n - 1), backoff_max_s)`` seconds after the failure."""

    max_retries: int = 0
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError(
                f"need 0 <= backoff_s <= backoff_max_s, got {self.backoff_s} and {self.backoff_max_s}"
            )

    def delay_s(self, retry: int) -> float:
        return min(self.backoff_s * 2.0 ** (retry - 1), self.backoff_max_s)


@dataclass(frozen=True)
class BatchOutcome:
    """One attempt at batch ``index``: ``results`` (one per item) or an ``error`` text whose
    last line is ``Type: message``.

    ``attempt`` counts from 1 (0: abandoned before any attempt). ``retry_in_s`` is set when
    the backend will try the batch again after that many seconds; an outcome without it is
    the batch's last. ``worker`` says where the attempt ran (for messages).
    """

    index: int
    results: list[Any] | None
    error: str | None = None
    attempt: int = 1
    retry_in_s: float | None = None
    worker: str = ""

    @property
    def final(self) -> bool:
        return self.retry_in_s is None


@dataclass(frozen=True)
class Attempt:
    """Attempt ``number`` (from 1) at batch ``index``."""

    index: int
    items: list[Any]
    number: int = 1


class RetryQueue:
    """Batches from ``batches`` (pulled one at a time) and failed ones waiting to be retried."""

    def __init__(
        self,
        batches: Iterable[tuple[int, list[Any]]],
        policy: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source: Iterator[tuple[int, list[Any]]] | None = iter(batches)
        self._lookahead: Attempt | None = None
        self._waiting: list[tuple[float, int, Attempt]] = []  # (due, tie-breaker, attempt) heap
        self._order = itertools.count()
        self.policy = policy
        self.clock = clock

    def take(self) -> Attempt | None:
        """The next attempt to run now: a due retry, else a new batch; None if neither."""
        if self._waiting and self._waiting[0][0] <= self.clock():
            return heapq.heappop(self._waiting)[2]
        self._fill()
        attempt, self._lookahead = self._lookahead, None
        return attempt

    def exhausted(self) -> bool:
        """No batch left to pull and no retry waiting (attempts in flight are the caller's)."""
        self._fill()
        return self._lookahead is None and not self._waiting

    def wait_s(self) -> float | None:
        """Seconds until the next retry is due (0 if one is), None if none is waiting."""
        if not self._waiting:
            return None
        return max(0.0, self._waiting[0][0] - self.clock())

    def succeeded(self, attempt: Attempt, results: list[Any], worker: str = "") -> BatchOutcome:
        return BatchOutcome(attempt.index, results, attempt=attempt.number, worker=worker)

    def failed(self, attempt: Attempt, error: str, worker: str = "") -> BatchOutcome:
        """The outcome of a failed attempt; schedules the next one if the policy allows."""
        if attempt.number > self.policy.max_retries:
            return BatchOutcome(attempt.index, None, error, attempt.number, None, worker)
        delay = self.policy.delay_s(attempt.number)
        retry = Attempt(attempt.index, attempt.items, attempt.number + 1)
        heapq.heappush(self._waiting, (self.clock() + delay, next(self._order), retry))
        return BatchOutcome(attempt.index, None, error, attempt.number, delay, worker)

    def abandon(self, error: str) -> Iterator[BatchOutcome]:
        """Final failures with ``error`` for every batch not yet run (waiting or unpulled);
        their ``attempt`` is the number of attempts made (0 for a batch never tried)."""
        while self._waiting:
            attempt = heapq.heappop(self._waiting)[2]
            yield BatchOutcome(attempt.index, None, error, attempt.number - 1)
        while (attempt := self.take()) is not None:
            yield BatchOutcome(attempt.index, None, error, attempt.number - 1)

    def _fill(self) -> None:
        if self._lookahead is None and self._source is not None:
            nxt = next(self._source, None)
            if nxt is None:
                self._source = None
            else:
                self._lookahead = Attempt(nxt[0], nxt[1])


def last_line(error: str) -> str:
    """The last non-blank line of an error text: its ``Type: message``."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
