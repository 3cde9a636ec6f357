"""In-process backend: one worker, the driver's own process. No Ray needed.

Same contract as the Ray backend (attempts, retries with backoff, one final outcome per
batch; a ``stage.setup()`` that raises fails every batch with ``WorkersUnavailable``)
with one exception: ``task_timeout_s`` is accepted but not enforced, because
code running in the driver's own thread cannot be preempted. A hung task hangs a local
build; use the Ray backend (even with one worker) where a time limit matters.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from typing import Any, Generator, Iterable

from pipeline.backends.retry import BatchOutcome, RetryPolicy, RetryQueue, last_line
from pipeline.stage import Stage

log = logging.getLogger(__name__)


class LocalBackend:
    """Runs every batch in this process, in order (``num_workers`` is always 1)."""

    num_workers = 1

    def run(
        self,
        stage: Stage,
        batches: Iterable[tuple[int, list[Any]]],
        *,
        workers: int | None = None,
        retry: RetryPolicy = RetryPolicy(),
        task_timeout_s: float | None = None,
    ) -> Generator[BatchOutcome, None, None]:
        if workers not in (None, 1):
            raise ValueError(f"the local backend runs exactly 1 worker, asked for {workers}")
        queue = RetryQueue(batches, retry)
        if queue.exhausted():
            return
        where = f"pid {os.getpid()} (in-process)"
        try:
            stage.setup()
        except Exception:  # as on Ray: every batch fails with the start error, nothing is torn down
            error = traceback.format_exc(limit=8)
            yield from queue.abandon(
                f"{error}\nWorkersUnavailable: stage {stage.name!r} could not start in {where}: {last_line(error)}"
            )
            return
        try:
            while not queue.exhausted():
                attempt = queue.take()
                if attempt is None:  # only retries are left, none due yet
                    time.sleep(queue.wait_s() or 0.0)
                    continue
                try:
                    results = stage.process_batch(attempt.items)
                except Exception:  # reported to the caller with its traceback; retried per ``retry``
                    yield queue.failed(attempt, traceback.format_exc(limit=8), where)
                    continue
                yield queue.succeeded(attempt, results, where)
        finally:
            try:
                stage.teardown()
            except Exception:  # the batches' outputs are committed; a teardown failure must not hide them
                log.warning("stage %r: teardown failed in %s", stage.name, where, exc_info=True)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "LocalBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
