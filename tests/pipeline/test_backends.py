"""Backends: retry bookkeeping, the local backend, and the Ray pool's dispatch, start
failures, retries and clean shutdown (fault injection proper: test_faults.py)."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import fault_stage
from fault_stage import CropStage, CropTask, alive, wait_for, worker_pids
from pipeline.backends import RetryPolicy, open_backend
from pipeline.backends.retry import RetryQueue
from pipeline.tasks import TasksFailed, run_tasks


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_retry_queue_backs_off_exponentially_and_runs_due_retries_first() -> None:
    clock = FakeClock()
    queue = RetryQueue(((i, [i]) for i in range(3)), RetryPolicy(max_retries=3, backoff_s=1, backoff_max_s=3), clock)
    first = queue.take()
    outcome = queue.failed(first, "RuntimeError: boom")
    assert (outcome.attempt, outcome.retry_in_s, outcome.final) == (1, 1.0, False)
    assert queue.take().index == 1  # the retry is not due yet
    clock.now += 1.0
    retry = queue.take()
    assert (retry.index, retry.number) == (0, 2)  # due retries before new batches
    assert queue.failed(retry, "x").retry_in_s == 2.0
    clock.now += 2.0
    assert queue.failed(queue.take(), "x").retry_in_s == 3.0  # capped at backoff_max_s
    clock.now += 3.0
    last = queue.take()
    assert last.number == 4 and queue.failed(last, "RuntimeError: boom").final
    assert queue.take().index == 2 and queue.exhausted()


def test_abandoned_batches_report_the_attempts_they_had() -> None:
    queue = RetryQueue(((i, [i]) for i in range(3)), RetryPolicy(max_retries=1, backoff_s=5))
    queue.failed(queue.take(), "x")
    abandoned = list(queue.abandon("WorkersUnavailable: none"))
    assert [(o.index, o.attempt, o.final) for o in abandoned] == [(0, 1, True), (1, 0, True), (2, 0, True)]
    assert queue.exhausted()


def test_retry_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff_s=2, backoff_max_s=1)


def test_local_backend_retries_after_backoff_and_ends_each_batch_once(tmp_path: Path) -> None:
    stage = CropStage(tmp_path / "out", tmp_path / "scratch", work_s=0)
    tasks = [CropTask(0), CropTask(1, fault="raise"), CropTask(2)]
    with open_backend("local", num_workers=1) as backend:
        outcomes = list(backend.run(stage, ((i, [t]) for i, t in enumerate(tasks)), retry=RetryPolicy(1, 0.05)))
    assert [(o.index, o.attempt, o.final, o.error is None) for o in outcomes] == [
        (0, 1, True, True), (1, 1, False, False), (2, 1, True, True), (1, 2, True, True),
    ]  # fmt: skip
    assert outcomes[1].error.strip().endswith("RuntimeError: crop 1 failed on purpose")


def test_a_failing_check_stops_the_run(tmp_path: Path) -> None:
    """E.g. ``OutputLock.check`` raising LockLost: no further task starts."""
    from manifests.lock import LockLost

    seen = []

    def check() -> None:
        seen.append(len(seen))
        if len(seen) == 2:
            raise LockLost("lost the lock on OUT")

    with open_backend("local", num_workers=1) as backend, pytest.raises(LockLost):
        run_tasks(backend, CropStage(tmp_path / "out", tmp_path, work_s=0), [CropTask(i) for i in range(5)],
                  label=str, check=check)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["crop-0000.png", "crop-0001.png"]


def test_local_stage_that_cannot_start_fails_every_batch_with_its_setup_error(tmp_path: Path) -> None:
    class NoSetup(CropStage):
        def setup(self) -> None:
            raise FileNotFoundError("weights.pt is missing")

    with open_backend("local", num_workers=1) as backend, pytest.raises(TasksFailed) as info:
        run_tasks(backend, NoSetup(tmp_path, tmp_path), [CropTask(0), CropTask(1)], label=lambda t: f"crop {t.index}")
    assert list(info.value.failures) == ["crop 0", "crop 1"]
    assert str(info.value).endswith(
        f"  crop 1: WorkersUnavailable: stage 'crops' could not start in pid {os.getpid()} (in-process): "
        "FileNotFoundError: weights.pt is missing"
    )


def test_local_teardown_failure_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenTeardown(CropStage):
        def teardown(self) -> None:
            raise OSError("cannot release")

    with open_backend("local", num_workers=1) as backend:
        results = run_tasks(backend, BrokenTeardown(tmp_path / "o", tmp_path / "s", work_s=0), [CropTask(0)], label=str)
    assert len(results) == 1 and (tmp_path / "o" / "crop-0000.png").exists()
    assert "teardown failed" in caplog.text and "cannot release" in caplog.text


def test_task_failure_message_names_task_attempts_and_errors(tmp_path: Path) -> None:
    class AlwaysFails(CropStage):
        def process_batch(self, items: list[CropTask]) -> list[str]:
            raise RuntimeError(f"crop {items[0].index} cannot be made")

    with open_backend("local", num_workers=1) as backend, pytest.raises(TasksFailed) as info:
        run_tasks(backend, AlwaysFails(tmp_path, tmp_path), [CropTask(3)], label=lambda t: f"crop {t.index}",
                  max_retries=2, backoff_s=0)  # fmt: skip
    assert str(info.value) == (
        "stage 'crops': 1 task(s) failed after retries:\n"
        "  crop 3: failed 3 attempts:\n"
        "    attempt 1: RuntimeError: crop 3 cannot be made\n"
        "    attempt 2: RuntimeError: crop 3 cannot be made\n"
        "    attempt 3: RuntimeError: crop 3 cannot be made"
    )


#: As at collection: tests/detectors/conftest.py's session-wide ``no_network`` fixture
#: replaces them later in a full run; the test below needs a loopback connection attempt.
LOOPBACK = {"getaddrinfo": socket.getaddrinfo, "create_connection": socket.create_connection}
LOOPBACK_CONNECT = socket.socket.connect


def test_an_address_where_nothing_listens_is_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.backends import WorkersUnavailable

    for name, function in LOOPBACK.items():
        monkeypatch.setattr(socket, name, function)
    monkeypatch.setattr(socket.socket, "connect", LOOPBACK_CONNECT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens on it
    with pytest.raises(WorkersUnavailable, match=f"cannot join the Ray cluster at 'ray://127.0.0.1:{port}': nothing accepts"):
        open_backend("ray", num_workers=1, address=f"ray://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One private Ray for this module (2 CPUs); backends join it and leave it running."""
    import ray

    ray.cloudpickle.register_pickle_by_value(fault_stage)  # workers cannot import tests/
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.ray
def test_pull_dispatch_keeps_a_slow_task_from_holding_others(ray_session: None, tmp_path: Path) -> None:
    class Straggler(CropStage):
        """Task 0 finishes only once every other task is done (or after 30 s)."""

        def process_batch(self, items: list[CropTask]) -> list[tuple[int, int]]:
            (task,) = items
            others = [self.out / f"done-{i}" for i in range(1, 12)]
            deadline = time.monotonic() + 30
            while task.index == 0 and not all(p.exists() for p in others) and time.monotonic() < deadline:
                time.sleep(0.02)
            (self.out / f"done-{task.index}").touch()
            return [(task.index, os.getpid())]

    with open_backend("ray", num_workers=2) as backend:
        results = run_tasks(backend, Straggler(tmp_path, tmp_path), [CropTask(i) for i in range(12)], label=str)
    slow_pid = results[0][1]
    # While task 0 runs, the other worker takes every other task: nothing is queued behind it.
    assert [i for i, pid in results if pid == slow_pid] == [0]


@pytest.mark.ray
def test_stage_errors_keep_the_worker_and_are_retried(ray_session: None, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="pipeline.tasks")
    stage = CropStage(tmp_path / "out", tmp_path / "scratch")
    tasks = [CropTask(i, fault="raise" if i in (2, 5) else None) for i in range(8)]
    with open_backend("ray", num_workers=2) as backend:
        digests = run_tasks(backend, stage, tasks, label=lambda t: f"crop {t.index}", backoff_s=0.2)
    assert len(set(digests)) == 8
    retried = sorted(r.getMessage().split(",")[0] for r in caplog.records)
    assert retried == ["stage 'crops': crop 2", "stage 'crops': crop 5"]
    assert "RuntimeError: crop 2 failed on purpose; retrying in 0.2 s" in caplog.text
    assert len(worker_pids(tmp_path / "scratch")) == 2  # no actor was replaced


@pytest.mark.ray
def test_a_stage_that_cannot_start_fails_every_batch_with_its_setup_error(ray_session: None, tmp_path: Path) -> None:
    class NoSetup(CropStage):
        def setup(self) -> None:
            raise FileNotFoundError("weights.pt is missing")

    with open_backend("ray", num_workers=2) as backend:
        outcomes = list(backend.run(NoSetup(tmp_path, tmp_path), ((i, [CropTask(i)]) for i in range(3))))
    assert sorted(o.index for o in outcomes) == [0, 1, 2]
    assert all(o.final and o.attempt == 0 for o in outcomes)
    lines = outcomes[0].error.strip().splitlines()
    assert lines[-1] == "WorkersUnavailable: no worker of stage 'crops' could start (4 failed starts in a row)"
    assert "could not start (scheduling, code upload or stage.setup() failed): FileNotFoundError: weights.pt is missing" in lines[-2]


@pytest.mark.ray
def test_abandoning_the_stream_kills_busy_workers_without_errors(ray_session: None, tmp_path: Path) -> None:
    """The old cleanup called ray.cancel(force=True) on actor tasks: Ray refused with a
    ValueError that hid the real error and skipped teardown."""
    scratch = tmp_path / "scratch"
    stage = CropStage(tmp_path / "out", scratch, work_s=0)
    tasks = [CropTask(0, fault="wait_for_kill"), CropTask(1), CropTask(2)]
    with open_backend("ray", num_workers=2) as backend:
        with pytest.raises(KeyError, match="^1$"):  # the consumer's own error, not a ValueError
            for outcome in backend.run(stage, ((t.index, [t]) for t in tasks)):
                if outcome.index != 0:  # task 0 still runs (for 60 s) on the other worker
                    raise KeyError(outcome.index)
    busy = int((scratch / "running-0.pid").read_text())
    pids = worker_pids(scratch)
    assert len(pids) == 2 and busy in pids
    wait_for(lambda: not any(alive(pid) for pid in pids), 20, "the workers to exit")
