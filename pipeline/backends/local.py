"""In-process backend: one worker, the driver's own process. No Ray needed."""

from __future__ import annotations

import traceback
from typing import Any, Iterable, Iterator

from pipeline.backends import BatchOutcome
from pipeline.stage import Stage


class LocalBackend:
    """Runs every batch in this process, in order (``num_workers`` is always 1)."""

    num_workers = 1

    def run(
        self, stage: Stage, batches: Iterable[tuple[int, list[Any]]], *, workers: int | None = None
    ) -> Iterator[BatchOutcome]:
        if workers not in (None, 1):
            raise ValueError(f"the local backend runs exactly 1 worker, asked for {workers}")
        stage.setup()
        try:
            for index, items in batches:
                try:
                    results = stage.process_batch(items)
                except Exception:  # reported to the runner, which retries or fails the run
                    yield BatchOutcome(index, None, traceback.format_exc(limit=8))
                    continue
                yield BatchOutcome(index, results)
        finally:
            stage.teardown()

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "LocalBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
