"""Where stages run. Every backend has the same signature, so the runner is backend-agnostic.

``backend.run(stage, batches, retry=..., task_timeout_s=...)`` streams one
:class:`BatchOutcome` per attempt, in completion order. A failed attempt that will be
tried again carries ``retry_in_s``; every batch ends with exactly one final outcome
(results, or the error of its last attempt). Only ``ray_backend`` imports Ray;
:func:`open_backend` imports it lazily. What each fault does: docs/reliability.md.
"""

from __future__ import annotations

from typing import Any, Generator, Iterable, Protocol

from pipeline.backends.retry import BatchOutcome, RetryPolicy
from pipeline.stage import Stage

__all__ = ["Backend", "BatchOutcome", "RetryPolicy", "WorkersUnavailable", "open_backend"]


class WorkersUnavailable(RuntimeError):
    """The backend could not start or reach its workers (e.g. no Ray cluster at the address)."""


class Backend(Protocol):
    """Runs a stage on its workers; usable as a context manager."""

    num_workers: int

    def run(
        self,
        stage: Stage,
        batches: Iterable[tuple[int, list[Any]]],
        *,
        workers: int | None = None,
        retry: RetryPolicy = RetryPolicy(),
        task_timeout_s: float | None = None,
    ) -> Generator[BatchOutcome, None, None]:
        """Process ``(index, items)`` batches with ``stage`` on ``workers`` workers (default
        ``num_workers``); yield an outcome per attempt as it finishes.

        Batches are pulled from ``batches`` lazily (one per idle worker), so the driver never
        materialises them all. A failed attempt is retried after ``retry``'s backoff, up to
        ``retry.max_retries`` times. An attempt running longer than ``task_timeout_s``
        (None = no limit) fails as hung. Each worker runs ``stage.setup()`` once first and
        ``stage.teardown()`` when the stream ends.
        """

    def close(self) -> None:
        """Release workers and any runtime this backend started."""


def open_backend(
    kind: str, *, num_workers: int, address: str | None = None, worker_start_timeout_s: float | None = 600.0
) -> Backend:
    """``"local"`` (in-process, one worker) or ``"ray"`` (actor pool, local or ``address``).

    ``worker_start_timeout_s`` bounds a Ray worker's start (scheduling, code upload,
    ``stage.setup()``); the local backend starts nothing.
    """
    if kind == "local":
        if num_workers != 1:
            raise ValueError(f"the local backend runs exactly 1 worker, asked for {num_workers}")
        from pipeline.backends.local import LocalBackend

        return LocalBackend()
    if kind == "ray":
        from pipeline.backends.ray_backend import RayBackend

        return RayBackend(num_workers=num_workers, address=address, worker_start_timeout_s=worker_start_timeout_s)
    raise ValueError(f"unknown backend {kind!r}; expected 'local' or 'ray'")
