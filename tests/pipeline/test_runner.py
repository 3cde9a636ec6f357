"""Task lifecycle (order, retries, failures) and backends."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import skimage

from pipeline.backends import open_backend
from pipeline.imageio import load_image
from pipeline.tasks import TasksFailed, run_tasks
from pipeline.stage import Resources

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"


class MeanStage:
    """Mean pixel value of a real photo's rows ``items``.

    Fails on ``broken`` rows always, on ``flaky`` rows the first time in any process
    (a file in ``scratch`` remembers the failure across workers).
    """

    name = "mean"
    resources = Resources(cpus=1)

    def __init__(self, scratch: Path, flaky: frozenset[int] = frozenset(), broken: frozenset[int] = frozenset()) -> None:
        self.scratch, self.flaky, self.broken = scratch, flaky, broken

    def setup(self) -> None:
        self.image = load_image(ASTRONAUT)

    def process_batch(self, items: list[int]) -> list[tuple[float, int]]:
        for row in items:
            seen = self.scratch / f"failed-{row}"
            if row in self.broken or (row in self.flaky and not seen.exists()):
                seen.touch()
                raise RuntimeError(f"row {row} failed")
        return [(float(self.image[row].mean()), os.getpid()) for row in items]

    def teardown(self) -> None:
        del self.image


def test_results_come_back_in_task_order_after_retries(tmp_path: Path) -> None:
    rows = [5, 100, 300, 7]
    with open_backend("local", num_workers=1) as backend:
        results = run_tasks(backend, MeanStage(tmp_path, flaky=frozenset({100})), rows, label=str, max_retries=1, backoff_s=0)
    image = load_image(ASTRONAUT)
    assert [r[0] for r in results] == [float(image[r].mean()) for r in rows]


def test_tasks_failing_after_retries_are_listed(tmp_path: Path) -> None:
    with open_backend("local", num_workers=1) as backend, pytest.raises(TasksFailed) as info:
        run_tasks(backend, MeanStage(tmp_path, broken=frozenset({7})), [5, 7], label=lambda r: f"row {r}", max_retries=2,
                  backoff_s=0)  # fmt: skip
    assert list(info.value.failures) == ["row 7"]
    assert "row 7 failed" in str(info.value)


def test_resources_are_validated() -> None:
    with pytest.raises(ValueError, match="cpus"):
        Resources(cpus=0)
    with pytest.raises(ValueError, match="gpus"):
        Resources(gpus=-1)


@pytest.mark.ray
def test_ray_backend_matches_local_in_worker_processes(tmp_path: Path) -> None:
    """Same results as in-process, computed outside the driver. (Dispatch is pull-based, so
    how many workers share 8 short tasks depends on when each is ready; that two workers run
    side by side is tested in test_backends.py.)"""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    rows = list(range(0, 512, 64))
    with open_backend("local", num_workers=1) as local:
        expected = run_tasks(local, MeanStage(tmp_path), rows, label=str)
    with open_backend("ray", num_workers=2) as ray_backend:
        got = run_tasks(ray_backend, MeanStage(tmp_path, flaky=frozenset({64})), rows, label=str, max_retries=1,
                        backoff_s=0)  # fmt: skip
    assert [r[0] for r in got] == [r[0] for r in expected]
    assert os.getpid() not in {pid for _, pid in got}
