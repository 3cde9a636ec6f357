"""Run small picklable tasks on a backend, collect their results, retry failures.

Stages make tasks idempotent: a task whose output is committed returns at once, so a
retry, or a rerun after a crash, only does what is missing.
"""

from __future__ import annotations

import logging
from contextlib import closing
from typing import Any, Callable, Sequence, TypeVar

from pipeline.backends import Backend, RetryPolicy
from pipeline.backends.retry import last_line
from pipeline.progress import bar
from pipeline.stage import Stage

T = TypeVar("T")

log = logging.getLogger(__name__)


class TasksFailed(RuntimeError):
    """Some tasks still failed after their retries.

    ``failures`` maps task label -> the last attempt's error text; ``attempts`` maps task
    label -> one ``Type: message`` line per attempt, in order.
    """

    def __init__(self, stage: str, failures: dict[str, str], attempts: dict[str, list[str]]) -> None:
        self.stage = stage
        self.failures = failures
        self.attempts = attempts
        listing = "\n".join(_explain(label, self.attempts[label]) for label in failures)
        super().__init__(f"stage {stage!r}: {len(failures)} task(s) failed after retries:\n{listing}")


def run_tasks(
    backend: Backend,
    stage: Stage,
    tasks: Sequence[T],
    *,
    label: Callable[[T], str],
    max_retries: int = 2,
    backoff_s: float = 1.0,
    backoff_max_s: float = 60.0,
    task_timeout_s: float | None = None,
    progress: bool = False,
    unit: str = "task",
    workers: int | None = None,
    check: Callable[[], None] | None = None,
) -> list[Any]:
    """Run every task (one per batch) on ``backend`` (``workers`` workers, default all,
    never more than there are tasks); results in task order.

    A failed attempt (the stage raised, its worker died or ran past ``task_timeout_s``
    seconds) is retried up to ``max_retries`` more times, after ``backoff_s`` doubling per
    retry up to ``backoff_max_s``. If any task still fails, :class:`TasksFailed` lists each
    with every attempt's error (the successful ones stay committed on disk).

    ``check`` (e.g. ``OutputLock.check``) is called after every outcome; an exception it
    raises stops the run at once (the backend kills its busy workers) and propagates.
    """
    retry = RetryPolicy(max_retries, backoff_s, backoff_max_s)
    if not tasks:
        return []
    count = min(workers or backend.num_workers, len(tasks))
    results: list[Any] = [None] * len(tasks)
    history: dict[int, list[str]] = {}
    failures: dict[int, str] = {}
    batches = ((i, [task]) for i, task in enumerate(tasks))
    outcomes = backend.run(stage, batches, workers=count, retry=retry, task_timeout_s=task_timeout_s)
    with bar(stage.name, len(tasks), enabled=progress, unit=unit) as progress_bar, closing(outcomes):
        for outcome in outcomes:
            if check is not None:
                check()
            if outcome.error is None:
                if len(outcome.results) != 1:
                    raise ValueError(f"stage {stage.name!r} returned {len(outcome.results)} results for one task")
                (results[outcome.index],) = outcome.results
                progress_bar.update(1)
                continue
            history.setdefault(outcome.index, []).append(last_line(outcome.error))
            if outcome.final:
                failures[outcome.index] = outcome.error
            else:
                log.warning(
                    "stage %r: %s, attempt %d failed on %s: %s; retrying in %.1f s",
                    stage.name, label(tasks[outcome.index]), outcome.attempt, outcome.worker,
                    last_line(outcome.error), outcome.retry_in_s,
                )  # fmt: skip
    if failures:
        order = sorted(failures)
        raise TasksFailed(
            stage.name,
            {label(tasks[i]): failures[i] for i in order},
            {label(tasks[i]): history[i] for i in order},
        )
    return results


def _explain(label: str, attempts: list[str]) -> str:
    if len(attempts) == 1:
        return f"  {label}: {attempts[0]}"
    lines = "\n".join(f"    attempt {n}: {error}" for n, error in enumerate(attempts, 1))
    return f"  {label}: failed {len(attempts)} attempts:\n{lines}"
