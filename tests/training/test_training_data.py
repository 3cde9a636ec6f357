"""Quadruple streaming from real shards: edits, held-out split, worker split, exact resume, letterbox."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from training_fixtures import held_out_edits, manifest_edits

from pipeline.training.config import TrainConfig
from pipeline.training.data import (
    OP_NAMES,
    PositionTracker,
    StreamPosition,
    group_views,
    heldout_set,
    is_held_out,
    rotate_for_workers,
    training_loader,
    view_from_sample,
)
from pipeline.training.frames import Letterbox, decode_mask, view_frames

pytestmark = pytest.mark.usefixtures("opencv_one_thread")

CONFIG = TrainConfig(resolution=64, batch_size=3, num_workers=2, shuffle_buffer=16, eval_quads=64)


@pytest.fixture
def config(holdout: float) -> TrainConfig:
    return dataclasses.replace(CONFIG, holdout_fraction=holdout)


def shard_urls(root: Path) -> list[str]:
    return [str(p) for p in sorted((root / "shards" / "simulated").glob("*.tar"))]


def edits(root: Path) -> list[list]:
    return list(group_views(wds.tarfile_samples([{"url": u} for u in shard_urls(root)])))


def test_views_group_into_edits_as_the_manifest_lists_them(sample_build: Path) -> None:
    groups = edits(sample_build)
    assert all(len({v.record["group_id"] for v in views}) == 1 for views in groups)
    streamed = {views[0].record["group_id"]: [v.record["view"] for v in views] for views in groups}
    expected = {group: edit["views"] for group, edit in manifest_edits(sample_build).items()}
    assert len(groups) == len(expected) and streamed == expected


def working(build: Path, config: TrainConfig) -> set[int]:
    """The DataLoader workers whose share of the shards (every num_workers-th, in index order)
    holds a training edit, from the build's manifest."""
    names = [Path(u).stem for u in shard_urls(build)]
    held = held_out_edits(build, config.seed, config.holdout_fraction)
    trained = {e["shard"] for g, e in manifest_edits(build).items() if g not in held}
    return {w for w in range(config.num_workers) if trained & set(names[w :: config.num_workers])}


def epoch_zero_and_beyond(urls: list[str], config: TrainConfig, workers: set[int], limit: int) -> list[dict]:
    """Batches from the start until each of ``workers`` has delivered a batch of epoch 1."""
    batches, later = [], set()
    for batch in islice(training_loader(urls, "simulated", config, StreamPosition()), limit):
        batches.append(batch)
        if batch["epoch"] > 0:
            later.add(batch["worker"])
        if later == workers:
            break
    return batches


def test_one_epoch_trains_each_view_of_each_training_edit_once(sample_build: Path, config: TrainConfig) -> None:
    """Two workers, several shards: epoch 0 covers every (edit, query view) of the training edits
    exactly once, with an exemplar from another view, and no held-out edit; every worker whose
    share of the shards holds a training edit takes part."""
    held = held_out_edits(sample_build, config.seed, config.holdout_fraction)
    training = {(g, v) for g, edit in manifest_edits(sample_build).items() if g not in held for v in edit["views"]}
    workers = working(sample_build, config)
    assert held and training and workers
    seen = Counter()
    batches = epoch_zero_and_beyond(shard_urls(sample_build), config, workers, 4 * len(training))
    for batch in batches:
        assert batch["exemplar"].shape == (len(batch["groups"]), 6, 64, 64) and batch["exemplar"].dtype == torch.uint8
        if batch["epoch"] == 0:
            for group, (exemplar_view, query_view) in zip(batch["groups"], batch["views"]):
                assert exemplar_view != query_view
                seen[(group, query_view)] += 1
    assert {b["worker"] for b in batches} == workers
    assert set(seen) == training and set(seen.values()) == {1}


def same_batches(a: list[dict], b: list[dict]) -> bool:
    keys = ("exemplar", "query", "target", "weight", "ops", "strengths")
    return all(
        x["groups"] == y["groups"] and x["views"] == y["views"] and all(torch.equal(x[k], y[k]) for k in keys)
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("consumed", [3, 4])
def test_restarted_stream_continues_the_same_batch_sequence(sample_build: Path, config: TrainConfig, consumed: int) -> None:
    """A stream restarted from the position after ``consumed`` batches (odd: DataLoader worker 0
    then plays logical worker 1) yields exactly the batches the uninterrupted stream yields next,
    across an epoch boundary."""
    urls = shard_urls(sample_build)
    assert working(sample_build, config) == {0, 1}  # else no worker plays another's part
    reference = epoch_zero_and_beyond(urls, config, {0, 1}, 200)
    assert len(reference) > consumed + 2 and {0, 1} <= {b["epoch"] for b in reference}
    tracker = PositionTracker(StreamPosition(), config.num_workers)
    for batch in reference[:consumed]:
        tracker.consumed(batch)
    position = StreamPosition.from_dict(json.loads(json.dumps(tracker.position().to_dict())))
    resumed = list(islice(training_loader(urls, "simulated", config, position), len(reference) - consumed))
    assert same_batches(resumed, reference[consumed:])


def test_rotated_shards_give_each_worker_its_logical_slice() -> None:
    shards = [f"s{i}" for i in range(7)]
    for offset in range(3):
        rotated = rotate_for_workers(shards, 3, offset)
        for physical in range(3):
            mine = [s for s in rotated[physical::3] if s is not None]
            assert mine == shards[(physical + offset) % 3 :: 3]


def test_heldout_set_is_the_held_out_edits_in_index_order(sample_build: Path, config: TrainConfig) -> None:
    held = [v for v in edits(sample_build) if is_held_out(v[0].record["group_id"], 0, config.holdout_fraction)]
    assert len(held) == len(held_out_edits(sample_build, 0, config.holdout_fraction)) == 2
    data = heldout_set(shard_urls(sample_build), config)
    assert data is not None and len(data["ops"]) == sum(len(v) for v in held)
    again = heldout_set(shard_urls(sample_build), dataclasses.replace(config, eval_quads=2))
    assert again is not None and torch.equal(again["query"], data["query"][:2])
    first_ops = {OP_NAMES[i] for i in np.flatnonzero(data["ops"][0].numpy())}
    assert first_ops == {op["name"] for op in held[0][0].record["ops"]}


def test_edit_region_lines_up_with_the_change_after_letterbox(sample_build: Path, config: TrainConfig) -> None:
    """Where the weight marks the query's edit region, Yq differs from Xq far more than elsewhere."""
    data = heldout_set(shard_urls(sample_build), dataclasses.replace(config, resolution=128))
    assert data is not None
    change = (data["target"].float() - data["query"].float()).abs().mean(dim=1)
    weight = data["weight"][:, 0]
    inside = change[weight > 50].mean()
    outside = change[(weight > 0) & (weight < 1.01)].mean()
    assert inside > 5 * outside
    assert torch.all(weight[data["query"].sum(dim=1) > 0] > 0)  # no image pixel on zero weight


def test_letterbox_keeps_geometry(sample_build: Path) -> None:
    assert (Letterbox(1004, 522, 96).fitted, Letterbox(1004, 522, 96).offset) == ((96, 50), (0, 23))
    assert (Letterbox(300, 600, 64).fitted, Letterbox(300, 600, 64).offset) == ((32, 64), (16, 0))
    view = edits(sample_build)[0][1]
    full = decode_mask(view.mask, "mask").astype(np.float64)
    frames = view_frames(view.before, view.after, view.mask, 96, "view")
    box = Letterbox(full.shape[1], full.shape[0], 96)
    scale = box.fitted[0] / full.shape[1]

    def centroid(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.indices(mask.shape)
        return np.array([(xs * mask).sum(), (ys * mask).sum()]) / mask.sum()

    expected = scale * (centroid(full) + 0.5) - 0.5 + np.array(box.offset)
    assert np.abs(centroid(frames.mask.astype(np.float64)) - expected).max() < 0.3
    assert frames.valid.sum() == box.fitted[0] * box.fitted[1]


def member_samples(tar_path: Path) -> list[dict]:
    return list(wds.tarfile_samples([{"url": str(tar_path)}]))


def test_bad_samples_raise_naming_the_sample(sample_build: Path) -> None:
    sample = next(s for url in shard_urls(sample_build) for s in member_samples(Path(url)))
    missing = {k: v for k, v in sample.items() if k != "mask.png"}
    with pytest.raises(ValueError, match="lacks its json or mask.png"):
        view_from_sample(missing)
    record = json.loads(sample["json"])
    record["ops"][0]["name"] = "ear_size"
    with pytest.raises(ValueError, match="unknown op 'ear_size'"):
        view_from_sample(sample | {"json": json.dumps(record).encode()})
    extra = sample | {"depth.png": b"new member", "before.png": sample["before.jpg"]}
    with pytest.raises(ValueError, match="expected one before image member"):
        view_from_sample(extra)
    assert view_from_sample(sample | {"depth.png": b"unknown members are ignored"}).record == json.loads(sample["json"])


def test_split_edit_is_an_error(sample_build: Path, tmp_path: Path) -> None:
    """An edit whose views are not consecutive in a shard breaks the contract: a clear error."""
    by_edit: dict[str, list[dict]] = {}
    for url in shard_urls(sample_build):
        for sample in member_samples(Path(url)):
            by_edit.setdefault(json.loads(sample["json"])["group_id"], []).append(sample)
    first, second = list(by_edit.values())[:2]
    order = [first[0], second[0], first[1]]  # edit A, edit B, edit A again
    tar_path = tmp_path / "split.tar"
    with tarfile.open(tar_path, "w") as tar:
        for i, sample in enumerate(order):
            for suffix, data in sample.items():
                if not suffix.startswith("__"):
                    info = tarfile.TarInfo(f"k{i}.{suffix}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="are not consecutive in their shard"):
        list(group_views(member_samples(tar_path)))
