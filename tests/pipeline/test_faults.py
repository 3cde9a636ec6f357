"""Faults injected into Ray runs; every time the outputs must equal an undisturbed run's
bytes. A worker SIGKILLed mid-task (by itself and from outside), a hung task, a killed
driver (then rerun, taking over its stale lock), and a worker killed inside a real build.
The OOM kill by Ray's memory monitor needs its own Ray: test_faults_oom.py."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

import fault_stage
from fault_stage import ASTRONAUT, CropStage, CropTask, alive, retries, tree_digest, wait_for, worker_pids
from pipeline.backends import open_backend
from pipeline.tasks import run_tasks

REPO = Path(__file__).resolve().parents[2]
TASKS = 40
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The crops of an undisturbed in-process run."""
    root = tmp_path_factory.mktemp("reference")
    with open_backend("local", num_workers=1) as backend:
        run_tasks(backend, CropStage(root / "out", root / "scratch", work_s=0), [CropTask(i) for i in range(TASKS)], label=str)
    return tree_digest(root / "out")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    import ray

    ray.cloudpickle.register_pickle_by_value(fault_stage)  # workers cannot import tests/
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_workers_sigkilled_mid_task(ray_session, reference, tmp_path: Path, caplog) -> None:
    """Task 5's worker SIGKILLs itself; task 20's worker is SIGKILLed from outside while the
    task sleeps. (The old pool failed 4 of 40 batches after one such crash.)"""
    caplog.set_level(logging.WARNING)
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    pid_file = scratch / "running-20.pid"

    def killer() -> None:
        wait_for(pid_file.exists, 60, "task 20 to start")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    thread = threading.Thread(target=killer)
    thread.start()
    tasks = [CropTask(i, fault={5: "sigkill", 20: "wait_for_kill"}.get(i)) for i in range(TASKS)]
    with open_backend("ray", num_workers=2) as backend:
        run_tasks(backend, CropStage(out, scratch), tasks, label=lambda t: f"crop {t.index}", backoff_s=0.1)
    thread.join()
    assert tree_digest(out) == reference
    failed = retries(caplog)
    assert sorted(failed) == ["crop 20", "crop 5"]
    for (message,) in failed.values():
        assert "ActorDiedError: worker" in message and "died during the task" in message
    assert len(worker_pids(scratch)) == 4  # two replacements; no task went to a dead actor


def test_idle_workers_lost_with_a_node_cost_no_attempts(ray_session, reference, tmp_path: Path, caplog) -> None:
    """Task 0's worker kills the (idle) other worker, then itself, as a node loss would. The
    pool checks its idle workers before giving them work: only task 0 is retried, once."""
    caplog.set_level(logging.WARNING)
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    tasks = [CropTask(0, fault="kill_idle_pool"), CropTask(1), CropTask(2)]
    with open_backend("ray", num_workers=2) as backend:
        run_tasks(backend, CropStage(out, scratch), tasks, label=lambda t: f"crop {t.index}", backoff_s=0.1)
    assert tree_digest(out) == {name: reference[name] for name in ("crop-0000.png", "crop-0001.png", "crop-0002.png")}
    assert list(retries(caplog)) == ["crop 0"] and len(retries(caplog)["crop 0"]) == 1
    assert "was found dead while idle" in caplog.text


def test_hung_task_is_rerun_elsewhere_and_its_worker_killed(ray_session, reference, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    tasks = [CropTask(i, fault="hang" if i == 7 else None) for i in range(TASKS)]
    with open_backend("ray", num_workers=2) as backend:
        run_tasks(backend, CropStage(out, scratch), tasks, label=lambda t: f"crop {t.index}",
                  task_timeout_s=3, backoff_s=0.1)  # fmt: skip
    assert tree_digest(out) == reference
    failed = retries(caplog)
    assert list(failed) == ["crop 7"]
    (message,) = failed["crop 7"]
    assert "TaskTimeout: no result from worker" in message and "after 3 s; the worker was killed" in message
    wait_for(lambda: not any(alive(pid) for pid in worker_pids(scratch)), 20, "the workers to exit")


def test_killed_driver_leaves_no_workers_and_a_rerun_finishes_the_same_bytes(reference, tmp_path: Path) -> None:
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    command = [sys.executable, "-m", "fault_stage", str(out), str(scratch), str(TASKS), "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "pipeline")])}
    log = tmp_path / "driver.log"
    with open(log, "w") as sink:
        driver = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        wait_for(lambda: len(list(out.glob("*.png"))) >= 6 or driver.poll() is not None, 120, "six crops")
        assert driver.poll() is None, log.read_text()
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    done = len(list(out.glob("*.png")))
    assert 6 <= done < TASKS and (out / "_lock" / "owner.json").exists()
    # Ray's reaper takes the killed driver's workers down: nothing keeps writing into OUT.
    orphans = worker_pids(scratch)
    wait_for(lambda: not any(alive(pid) for pid in orphans), 30, "the killed driver's workers to exit")
    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert f"pid {driver.pid} no longer runs on this host" in rerun.stdout
    assert rerun.stdout.strip().endswith(f"done {TASKS}")
    assert [p.name for p in (out / "_lock").iterdir()] == ["guard"]  # records removed on release
    shutil.rmtree(out / "_lock")
    assert tree_digest(out) == reference


@pytest.mark.slow
def test_real_build_survives_workers_killed_in_detection_and_in_a_shard(tmp_path: Path, caplog) -> None:
    """``pipeline.build.build`` on a real portrait with Ray: the worker is SIGKILLed while it
    detects, and again while it writes the shard; the dataset's bytes equal an undisturbed
    in-process build's."""
    import psutil

    from pipeline.build import build
    from pipeline.config import load_config, with_overrides

    caplog.set_level(logging.WARNING, logger="pipeline.tasks")
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(ASTRONAUT, photos / ASTRONAUT.name)
    config = with_overrides(load_config(), {
        "simulated.views": 4, "simulated.edits_per_face": 2, "cluster.num_workers": 1,
    })  # fmt: skip
    build(str(photos), tmp_path / "reference", config, progress=False)

    out = tmp_path / "out"
    detections = out / "manifests" / "detections" / "part-000000.parquet"
    killed: list[str] = []

    def kill_busy_worker(stage: str) -> None:
        """SIGKILL the first of this process's Ray workers seen running a task."""
        def busy() -> bool:
            for proc in psutil.Process().children(recursive=True):
                try:
                    if proc.cmdline()[:1] == ["ray::_StageActor.process"]:
                        proc.send_signal(signal.SIGKILL)
                        killed.append(stage)
                        return True
                except psutil.Error:
                    continue  # exited meanwhile
            return False

        wait_for(busy, 120, f"a {stage} task")

    def killer() -> None:
        wait_for((out / "manifests" / "sources" / "part-000000.parquet").exists, 120, "the sources table")
        kill_busy_worker("detect")
        wait_for(detections.exists, 120, "the detections part")
        kill_busy_worker("shard")

    thread = threading.Thread(target=killer)
    thread.start()
    build(str(photos), out, with_overrides(config, {"cluster.num_workers": 2}), progress=False)
    thread.join()
    assert killed == ["detect", "shard"]
    assert tree_digest(out) == tree_digest(tmp_path / "reference")
    failed = retries(caplog)
    assert sorted(failed) == ["detect chunk 0", "simulated-000000"]
    assert all(len(messages) == 1 and "ActorDiedError" in messages[0] for messages in failed.values())
