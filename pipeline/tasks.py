"""Run small picklable tasks on a backend, collect their results, retry failures.

Stages make tasks idempotent: a task whose output is committed returns at once, so a
rerun after a crash only does what is missing.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

from pipeline.backends import Backend
from pipeline.progress import bar
from pipeline.stage import Stage

T = TypeVar("T")


class TasksFailed(RuntimeError):
    """Some tasks still failed after their retries; ``failures`` maps task label -> error."""

    def __init__(self, stage: str, failures: dict[str, str]) -> None:
        self.stage = stage
        self.failures = failures
        listing = "\n".join(f"  {label}: {error.strip().splitlines()[-1]}" for label, error in failures.items())
        super().__init__(f"stage {stage!r}: {len(failures)} task(s) failed after retries:\n{listing}")


def run_tasks(
    backend: Backend,
    stage: Stage,
    tasks: Sequence[T],
    *,
    label: Callable[[T], str],
    max_retries: int = 2,
    progress: bool = False,
    unit: str = "task",
    workers: int | None = None,
) -> list[Any]:
    """Run every task (one per batch) on ``backend`` (``workers`` workers, default all);
    results in task order.

    Failed tasks are resubmitted up to ``max_retries`` more times; if any still fail,
    :class:`TasksFailed` lists them (the successful ones stay committed on disk).
    """
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    results: list[Any] = [None] * len(tasks)
    pending = list(range(len(tasks)))
    errors: dict[int, str] = {}
    with bar(stage.name, len(tasks), enabled=progress, unit=unit) as progress_bar:
        for _attempt in range(max_retries + 1):
            if not pending:
                break
            errors = {}
            batches = ((i, [tasks[i]]) for i in pending)
            for outcome in backend.run(stage, batches, workers=workers):
                if outcome.error is not None:
                    errors[outcome.index] = outcome.error
                    continue
                (results[outcome.index],) = outcome.results
                progress_bar.update(1)
            pending = sorted(errors)
    if pending:
        raise TasksFailed(stage.name, {label(tasks[i]): errors[i] for i in pending})
    return results
