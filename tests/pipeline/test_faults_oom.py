"""An OOM kill by Ray's memory monitor: a worker grabs memory mid-task; the outputs must
still equal an undisturbed run's bytes.

The monitor's threshold is set to what the machine uses now plus a margin, and the task
grabs a little more than the margin, so the kill happens without exhausting the (shared)
machine: at most ``margin + 1.5 GB`` is allocated, for at most one monitor period.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psutil
import pytest

import fault_stage
from fault_stage import CropStage, CropTask, retries, tree_digest
from pipeline.backends import open_backend
from pipeline.tasks import run_tasks

TASKS = 12


@pytest.mark.ray
def test_worker_killed_by_rays_memory_monitor(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import ray

    caplog.set_level(logging.WARNING)
    with open_backend("local", num_workers=1) as backend:
        run_tasks(backend, CropStage(tmp_path / "ref", tmp_path / "s0", work_s=0), [CropTask(i) for i in range(TASKS)], label=str)

    memory = psutil.virtual_memory()
    margin = min(3e9, 0.25 * memory.available)
    threshold = (memory.total - memory.available + margin) / memory.total
    ray.cloudpickle.register_pickle_by_value(fault_stage)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _system_config={"memory_usage_threshold": threshold, "memory_monitor_refresh_ms": 100})  # fmt: skip
    try:
        out, scratch = tmp_path / "out", tmp_path / "scratch"
        stage = CropStage(out, scratch, hog_bytes=int(margin + 1.5e9))
        tasks = [CropTask(i, fault="hog" if i == 3 else None) for i in range(TASKS)]
        with open_backend("ray", num_workers=2) as backend:
            run_tasks(backend, stage, tasks, label=lambda t: f"crop {t.index}", max_retries=3, backoff_s=0.5)
    finally:
        ray.shutdown()
    assert tree_digest(out) == tree_digest(tmp_path / "ref")
    failed = retries(caplog)
    assert "crop 3" in failed, failed
    message = failed["crop 3"][0]
    assert "OutOfMemoryError: worker" in message
    assert "was killed by Ray's memory monitor (its node ran low on memory)" in message
