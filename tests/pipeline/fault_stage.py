"""A small deterministic stage for fault tests, and a driver that runs it under a lock.

Each :class:`CropTask` writes one PNG crop of a real photo to ``OUT/crop-NNNN.png``
idempotently (a committed crop is returned as is; otherwise half of it goes to a
``.partial`` file first, then the whole file is renamed into place), so reruns and retries
end with the same bytes. A task may misbehave on its first attempt, *after* writing its
half file (``fault``):

- ``raise``: the stage raises;
- ``sigkill``: the worker SIGKILLs itself;
- ``wait_for_kill``: the worker writes ``SCRATCH/running-N.pid`` and sleeps 60 s, for a
  test to kill it from outside;
- ``hang``: the worker sleeps an hour (a hung task);
- ``hog``: the worker fills ``hog_bytes`` of memory and sleeps 60 s holding it;
- ``kill_idle_pool``: once ``crop-0001.png`` and ``crop-0002.png`` exist (so the other
  workers are idle), the worker SIGKILLs every other worker, then itself (a lost node).

Also the checks the fault tests share (:func:`tree_digest`, :func:`retries`, ...).

Run as a script (``python -m fault_stage OUT SCRATCH TASKS WORKERS`` with the repo root
and this folder on PYTHONPATH, from the repo root), it takes the output lock on OUT and
runs the tasks on a private Ray.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import skimage

from pipeline.imageio import encode_png, load_image
from pipeline.stage import Resources

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"


@dataclass(frozen=True)
class CropTask:
    index: int
    fault: str | None = None


class CropStage:
    """Writes ``crop-NNNN.png`` (a 96x96 crop of astronaut.png) per task; returns its sha256."""

    name = "crops"
    resources = Resources(cpus=1)

    def __init__(self, out: Path, scratch: Path, *, work_s: float = 0.05, hog_bytes: int = 0) -> None:
        self.out, self.scratch, self.work_s, self.hog_bytes = Path(out), Path(scratch), work_s, hog_bytes

    def setup(self) -> None:
        self.image = load_image(ASTRONAUT)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.scratch / "workers").mkdir(parents=True, exist_ok=True)
        (self.scratch / "workers" / str(os.getpid())).touch()

    def process_batch(self, items: list[CropTask]) -> list[str]:
        return [self._run(task) for task in items]

    def teardown(self) -> None:
        del self.image

    def _run(self, task: CropTask) -> str:
        final = self.out / f"crop-{task.index:04d}.png"
        if final.exists():
            return hashlib.sha256(final.read_bytes()).hexdigest()
        y, x = task.index * 37 % 416, task.index * 11 % 416
        data = encode_png(self.image[y : y + 96, x : x + 96])
        partial = final.with_name(final.name + ".partial")
        partial.write_bytes(data[: len(data) // 2])
        if task.fault and self._first_attempt(task):
            self._misbehave(task)
        time.sleep(self.work_s)
        partial.write_bytes(data)
        os.replace(partial, final)
        return hashlib.sha256(data).hexdigest()

    def _first_attempt(self, task: CropTask) -> bool:
        try:
            (self.scratch / f"fault-{task.index}").open("x").close()
        except FileExistsError:
            return False
        return True

    def _misbehave(self, task: CropTask) -> None:
        if task.fault == "raise":
            raise RuntimeError(f"crop {task.index} failed on purpose")
        if task.fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if task.fault == "wait_for_kill":
            (self.scratch / f"running-{task.index}.pid").write_text(str(os.getpid()))
            time.sleep(60)
        if task.fault == "hang":
            time.sleep(3600)
        if task.fault == "kill_idle_pool":
            others = [self.out / f"crop-{i:04d}.png" for i in (1, 2)]
            deadline = time.monotonic() + 60
            while not all(p.exists() for p in others) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)  # their results reach the driver, which leaves them idle
            for pid in worker_pids(self.scratch) - {os.getpid()}:
                os.kill(pid, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        if task.fault == "hog":
            import numpy as np

            held = np.ones(self.hog_bytes, np.uint8)  # every page touched
            time.sleep(60)
            del held


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def worker_pids(scratch: Path) -> set[int]:
    """Pids of every worker that ran ``CropStage.setup()`` with this scratch folder."""
    return {int(p.name) for p in (scratch / "workers").iterdir()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.02)


def retries(caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    """Task label -> the warnings logged for its failed attempts that were retried."""
    logged: dict[str, list[str]] = {}
    for record in caplog.records:
        if record.name == "pipeline.tasks":
            logged.setdefault(record.args[1], []).append(record.getMessage())
    return logged


def main(out: str, scratch: str, tasks: int, workers: int) -> None:
    from manifests.lock import OutputLock
    from pipeline.backends import open_backend
    from pipeline.tasks import run_tasks

    with OutputLock(out, stale_after_s=30, heartbeat_s=1) as lock:
        if lock.took_over:
            print(lock.took_over, flush=True)
        stage = CropStage(Path(out), Path(scratch), work_s=0.2)
        with open_backend("ray", num_workers=workers) as backend:
            digests = run_tasks(backend, stage, [CropTask(i) for i in range(tasks)], label=lambda t: f"crop {t.index}")
    print(f"done {len(digests)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
