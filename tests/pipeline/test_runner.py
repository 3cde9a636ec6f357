"""Task lifecycle (order, retries, failures), backends, and the shard commit protocol."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest
import skimage

from manifests.markers import read_marker
from manifests.schema import marker_path, pairs_part_path, shard_tar_path
from manifests.shards import iter_tar_members
from pipeline.backends import open_backend
from pipeline.imageio import encode_jpeg, encode_png, load_image
from pipeline.runner import ShardStage, ShardTask, SourceOutput, shard_is_done
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


class CropProducer:
    """Pairs made of real photo crops: before = crop, after = the crop shifted by one pixel."""

    def __init__(self, fail_on: str | None = None, wrong_digest: bool = False) -> None:
        self.fail_on = fail_on
        self.wrong_digest = wrong_digest

    def setup(self) -> None:
        self.image = load_image(ASTRONAUT)

    def produce(self, task: ShardTask) -> Iterator[SourceOutput]:
        for n, source_id in enumerate(task.source_ids):
            if source_id == self.fail_on:
                raise RuntimeError(f"cannot make {source_id}")
            key = f"{source_id}-f00-e00-v00"
            before = np.ascontiguousarray(self.image[64 * n : 64 * n + 128, :128])
            after = np.ascontiguousarray(self.image[64 * n + 1 : 64 * n + 129, :128])
            mask = np.full((128, 128), 255, np.uint8)
            sample = {"__key__": key, "after.jpg": encode_jpeg(after), "before.jpg": encode_jpeg(before),
                      "json": b"{}", "mask.png": encode_png(mask)}  # fmt: skip
            row = _row(task, source_id, key, sample)
            if self.wrong_digest:
                row["sha256_mask"] = row["sha256_before"]
            yield SourceOutput(samples=[sample], rows=[row],
                               rejects=[{"source_id": source_id, "path": "x", "stage": "synthesis",
                                         "reason": "test", "detail": None}])  # fmt: skip


def _row(task: ShardTask, source_id: str, key: str, sample: dict) -> dict:
    import hashlib

    sha = {k: hashlib.sha256(v).hexdigest() for k, v in sample.items() if k != "__key__"}
    return {
        "pair_id": key, "subset": task.subset, "group_id": key[:-4], "view": 0, "source_id": source_id,
        "face_index": 0, "shard": task.name, "key": key,
        "ops": [{"name": "eye_size", "strength": 10, "applied_strength": 10, "clamped": False}],
        "aug_matrix": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], "width": 128, "height": 128, "seed": 1,
        "image_format": "jpeg", "sha256_before": sha["before.jpg"], "sha256_after": sha["after.jpg"],
        "sha256_mask": sha["mask.png"], "sha256_json": sha["json"], "region_bbox": [0, 0, 128, 128],
        "region_area_px": 128 * 128, "min_jacobian": 1.0,
    }  # fmt: skip


def test_shard_commit_protocol_and_skip(tmp_path: Path) -> None:
    task = ShardTask("simulated", 3, ("aaaa000000000001", "aaaa000000000002"))
    stage = ShardStage(tmp_path, CropProducer())
    stage.setup()
    first = stage.run_shard(task)
    assert (first.pairs, first.rejects, first.skipped) == (2, 2, False)
    names = [m.name for m in iter_tar_members(shard_tar_path(tmp_path, "simulated", 3))]
    assert names == sorted(names) and len(names) == 8
    assert pq.read_table(pairs_part_path(tmp_path, "simulated", 3)).num_rows == 2
    assert read_marker(tmp_path, "simulated", 3)["rejects"]["rows"] == 2
    assert shard_is_done(tmp_path, "simulated", 3)
    again = stage.run_shard(task)
    assert again.skipped and again.pairs == 2


def test_failed_shard_leaves_no_files(tmp_path: Path) -> None:
    task = ShardTask("simulated", 0, ("aaaa000000000001", "aaaa000000000002"))
    stage = ShardStage(tmp_path, CropProducer(fail_on="aaaa000000000002"))
    stage.setup()
    with pytest.raises(RuntimeError, match="cannot make"):
        stage.run_shard(task)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not marker_path(tmp_path, "simulated", 0).exists()


def test_row_naming_other_bytes_than_the_member_is_refused(tmp_path: Path) -> None:
    task = ShardTask("simulated", 0, ("aaaa000000000001",))
    stage = ShardStage(tmp_path, CropProducer(wrong_digest=True))
    stage.setup()
    with pytest.raises(ValueError, match="sha256_mask does not match the written member 'mask.png'"):
        stage.run_shard(task)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
