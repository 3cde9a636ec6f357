"""Where stages run. Every backend has the same signature, so the runner is backend-agnostic.

``backend.run(stage, batches)`` streams ``BatchOutcome``s in completion order; a batch
whose processing raised comes back with ``error`` set (the runner decides on retries).
Only ``ray_backend`` imports Ray; :func:`open_backend` imports it lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol

from pipeline.stage import Stage


@dataclass(frozen=True)
class BatchOutcome:
    """Result of one submitted batch: ``results`` (one per item) or an ``error`` text."""

    index: int
    results: list[Any] | None
    error: str | None = None


class Backend(Protocol):
    """Runs a stage on its workers; usable as a context manager."""

    num_workers: int

    def run(
        self, stage: Stage, batches: Iterable[tuple[int, list[Any]]], *, workers: int | None = None
    ) -> Iterator[BatchOutcome]:
        """Process ``(index, items)`` batches with ``stage`` on ``workers`` workers (default
        ``num_workers``); yield outcomes as they finish.

        Batches are pulled from ``batches`` lazily (a bounded number in flight), so the
        driver never materialises them all. Each worker runs ``stage.setup()`` once first
        and ``stage.teardown()`` when the stream ends.
        """

    def close(self) -> None:
        """Release workers and any runtime this backend started."""


def open_backend(kind: str, *, num_workers: int, address: str | None = None) -> Backend:
    """``"local"`` (in-process, one worker) or ``"ray"`` (actor pool, local or ``address``)."""
    if kind == "local":
        if num_workers != 1:
            raise ValueError(f"the local backend runs exactly 1 worker, asked for {num_workers}")
        from pipeline.backends.local import LocalBackend

        return LocalBackend()
    if kind == "ray":
        from pipeline.backends.ray_backend import RayBackend

        return RayBackend(num_workers=num_workers, address=address)
    raise ValueError(f"unknown backend {kind!r}; expected 'local' or 'ray'")
