"""End-to-end builds on real photos: shards, manifests, determinism, resume, growth, rejects."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import matplotlib
import skimage

from detectors.gates import inter_ocular
from detectors.records import PortraitDetections
from manifests.schema import member_sha_columns
from manifests.shards import iter_tar_members
from manifests.storage import Store
from pipeline.build import ConfigMismatch, build, regenerate
from pipeline.config import load_config, with_overrides
from warps.augment import transform_points

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
COFFEE = Path(skimage.__file__).parent / "data" / "coffee.png"
GRACE = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
REPO = Path(__file__).resolve().parents[2]

#: Small but complete: two usable portraits, two views and two edits per face, one edit per shard.
CONFIG_YAML = """\
simulated:
  views: 2
  edits_per_face: 2
  ladders:
    per_face: 0
output:
  shard_target_bytes: 1500000
  edits_per_run: 1
cluster:
  num_workers: 1
"""

#: The professional subset, small: three ops (facial, face shape, body) alone at +-100, one view
#: per edit, one edit per shard, full resolution (views of these ~0.3 MP photos are ~0.15 MP).
PROFESSIONAL_YAML = CONFIG_YAML + """\
professional:
  ops: [eye_size, jawline, shoulder_width]
  min_pixels: 100000
  combos:
    - {size: 1, views: 1, max_edits: null}
"""


def tree_digest(out: Path) -> dict[str, str]:
    """sha256 of every file under ``out`` by relative path (verify reports and the build lock excluded)."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "verify.json" and "_lock" not in p.relative_to(out).parts
    }


def member_digests(out: Path, subset: str = "simulated") -> dict[str, str]:
    digests = {}
    for tar in sorted((out / "shards" / subset).glob("*.tar")):
        with open(tar, "rb") as stream:
            for member in iter_tar_members(stream, tar.name):
                digests[member.name] = hashlib.sha256(member.data).hexdigest()
    return digests


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e")
    photos = root / "photos"
    photos.mkdir()
    shutil.copy(ASTRONAUT, photos / "astronaut.png")
    shutil.copy(GRACE, photos / "grace_hopper.jpg")
    shutil.copy(COFFEE, photos / "coffee.png")  # no person: a plan reject
    shutil.copy(ASTRONAUT, photos / "astronaut_copy.png")  # same bytes: a duplicate
    (photos / "broken.jpg").write_bytes(GRACE.read_bytes()[:5000])  # truncated JPEG: found when detection decodes it
    (photos / "notes.txt").write_text("not a photo")  # not an image by content: an ingest reject
    outside = root / "elsewhere.jpg"
    shutil.copy(GRACE, outside)
    (photos / "link.jpg").symlink_to(outside)  # escapes the source folder: refused
    config_file = root / "params.yaml"
    config_file.write_text(CONFIG_YAML)
    professional_file = root / "professional.yaml"
    professional_file.write_text(PROFESSIONAL_YAML)
    return {"root": root, "photos": photos, "config": config_file, "professional": professional_file}


@pytest.fixture(scope="module")
def reference(workspace: dict[str, Path]) -> Path:
    """An uninterrupted in-process build (1 worker)."""
    out = workspace["root"] / "reference"
    build(str(workspace["photos"]), str(out), load_config(workspace["config"]), progress=False)
    return out


def test_shards_and_manifests_agree(reference: Path) -> None:
    pairs = pd.read_parquet(reference / "manifests" / "pairs")
    assert len(pairs) == 8 and set(pairs["subset"]) == {"simulated"}
    expected = {}
    for row in pairs.itertuples():
        for suffix, column in member_sha_columns("jpeg").items():
            expected[f"{row.key}.{suffix}"] = getattr(row, column)
    assert member_digests(reference) == expected
    assert all(sorted(views) == [0, 1] for views in pairs.groupby("group_id")["view"].apply(list))
    ops = pd.read_parquet(reference / "manifests" / "pair_ops")
    assert len(ops) == sum(len(o) for o in pairs["ops"]) and set(ops.pair_id) == set(pairs.pair_id)
    index = json.loads((reference / "shards" / "simulated" / "index.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1"
    assert sum(s["nsamples"] for s in index["shardlist"]) == len(pairs)
    for entry in index["shardlist"]:
        tar = reference / "shards" / "simulated" / entry["url"]
        assert hashlib.sha256(tar.read_bytes()).hexdigest() == entry["sha256"] and tar.stat().st_size == entry["filesize"]
    dataset = json.loads((reference / "dataset.json").read_text())
    assert dataset["subsets"]["simulated"]["pairs"] == len(pairs)
    assert dataset["groups"]["simulated"]["simulated"]["views"] == 2


def test_shards_hold_whole_edits_and_the_planned_count(reference: Path) -> None:
    pairs = pd.read_parquet(reference / "manifests" / "pairs")
    # 1.5 MB per shard at ~0.73 MB per simulated pair: 2 samples, i.e. one edit of 2 views per shard.
    per_shard = pairs.groupby("shard").agg(n=("pair_id", "size"), groups=("group_id", "nunique"))
    assert (per_shard.n == 2).all() and (per_shard.groups == 1).all()


def test_shards_load_in_webdataset_and_torch(reference: Path) -> None:
    import torch
    import webdataset as wds

    urls = [str(p) for p in sorted((reference / "shards" / "simulated").glob("*.tar"))]
    dataset = (
        wds.WebDataset(urls, shardshuffle=False)
        .decode("rgb8")
        .to_tuple("before.jpg", "after.jpg", "mask.png", "json")
        .map(lambda s: (torch.tensor(s[0]), torch.tensor(s[1]), torch.tensor(s[2]), s[3]["pair_id"]))
    )
    seen = 0
    for before, after, mask, pair_id in torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=0):
        assert before.shape == after.shape and before.dtype == torch.uint8
        assert mask.shape[:2] == before.shape[:2]
        assert (before.int() - after.int()).abs().max() > 20  # the edit changes pixels...
        assert mask.max() == 255  # ...and the mask says where
        seen += 1
    assert seen == len(pd.read_parquet(reference / "manifests" / "pairs"))


def test_bad_inputs_end_in_rejects_with_reasons(reference: Path) -> None:
    rejects = pd.read_parquet(reference / "manifests" / "rejects")
    by_name = {Path(p).name: (stage, reason) for p, stage, reason in zip(rejects.path, rejects.stage, rejects.reason)}
    assert by_name["broken.jpg"] == ("detect", "truncated")
    assert by_name["notes.txt"] == ("ingest", "undecodable")
    assert by_name["link.jpg"] == ("ingest", "outside_root")
    assert by_name["astronaut_copy.png"] == ("ingest", "duplicate")
    assert by_name["coffee.png"] == ("plan", "no_person")
    assert rejects["reason"].notna().all()
    sources = pd.read_parquet(reference / "manifests" / "sources")
    assert len(sources) == 7
    duplicate = sources[sources.path.str.endswith("astronaut_copy.png")].iloc[0]
    original = sources[sources.path.str.endswith("/astronaut.png")].iloc[0]
    assert duplicate.status == "duplicate" and duplicate.detail.startswith(original.source_id)
    assert set(pd.read_parquet(reference / "manifests" / "pairs")["source_id"]) <= set(sources.source_id)


def test_every_pair_shows_the_face_at_the_configured_scale(reference: Path) -> None:
    """face_iod_px lies in framing.iod_px and the recorded matrices reproduce it from the detections."""
    pairs = pd.read_parquet(reference / "manifests" / "pairs")
    detections = {r["source_id"]: PortraitDetections.from_row(r) for r in pd.read_parquet(reference / "manifests" / "detections").to_dict("records")}
    lo, hi = load_config().simulated.framing.iod_px
    assert pairs.face_iod_px.between(lo, hi).all()
    for row in pairs.itertuples():
        face = detections[row.source_id].faces[row.face_index].landmarks[:, :2]
        base = np.array(row.base_matrix).reshape(2, 3)
        aug = np.array(row.aug_matrix).reshape(2, 3)
        shown = transform_points(aug, transform_points(base, face))
        assert inter_ocular(shown) == pytest.approx(row.face_iod_px, abs=1e-3)
        assert row.max_disp_px >= 1.0


def test_base_photo_frames_the_whole_photo(workspace: dict[str, Path], tmp_path: Path) -> None:
    config = with_overrides(load_config(workspace["config"]), {"simulated.framing.base": "photo", "simulated.edits_per_face": 1})
    build(str(workspace["photos"]), str(tmp_path / "photo"), config, progress=False)
    pairs = pd.read_parquet(tmp_path / "photo" / "manifests" / "pairs")
    assert len(pairs) > 0
    for row in pairs.itertuples():
        # Photos of at most 1024 px are not rescaled: the base frame is the photo itself.
        assert row.base_matrix == pytest.approx([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def test_rerun_is_a_no_op_and_other_config_is_refused(reference: Path, workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out, symlinks=True)
    before = tree_digest(out)
    report = build(str(workspace["photos"]), str(out), load_config(workspace["config"]), progress=False)
    (sub,) = report.subsets
    assert sub.shards_skipped == sub.shards == 4
    assert tree_digest(out) == before
    with pytest.raises(ConfigMismatch, match="seed"):
        build(str(workspace["photos"]), str(out), with_overrides(load_config(workspace["config"]), {"seed": 1}), progress=False)


def test_replace_rebuilds_one_subset_only(reference: Path, workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out, symlinks=True)
    before = tree_digest(out)
    config = with_overrides(load_config(workspace["config"]), {"simulated.views": 3})
    build(None, str(out), config, stage="shards", replace=True, progress=False)
    after = tree_digest(out)
    untouched = [k for k in before if k.startswith(("manifests/sources", "manifests/detections", "_work/ingest"))]
    assert untouched and all(after[k] == before[k] for k in untouched)
    pairs = pd.read_parquet(out / "manifests" / "pairs")
    assert pairs.groupby("group_id").size().eq(3).all()


def test_regenerate_reproduces_bytes(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out, symlinks=True)
    before = tree_digest(out)
    (tar := out / "shards" / "simulated" / "simulated-000001.tar").write_bytes(b"damaged")
    summaries = regenerate(str(out), "simulated", [1], progress=False)
    assert [s.shard for s in summaries] == ["simulated-000001"] and not summaries[0].skipped
    assert tree_digest(out) == before
    regenerate(str(out), "simulated", progress=False)
    assert tree_digest(out) == before and tar.stat().st_size > 1000
    with pytest.raises(ValueError, match="no simulated shard"):
        regenerate(str(out), "simulated", [7], progress=False)


def test_growing_the_source_appends_shards_only(reference: Path, workspace: dict[str, Path], tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(workspace["photos"], photos, symlinks=True)
    grace = photos / "grace_hopper.jpg"
    kept = tmp_path / "grace_hopper.jpg"
    grace.rename(kept)
    out = tmp_path / "grow"
    config = load_config(workspace["config"])
    build(str(photos), str(out), config, progress=False)
    first = {k: v for k, v in tree_digest(out).items() if k.startswith(("shards/", "manifests/pairs/", "_markers/"))}
    kept.rename(grace)
    build(str(photos), str(out), config, progress=False)
    grown = tree_digest(out)
    assert all(grown[k] == v for k, v in first.items() if not k.endswith("index.json"))
    new_shards = sorted(k for k in grown if k.startswith("shards/simulated/simulated-") and k not in first)
    first_shards = sorted(k for k in first if k.startswith("shards/simulated/simulated-"))
    assert new_shards and new_shards[0] > first_shards[-1]
    assert len(pd.read_parquet(out / "manifests" / "pairs")) == len(pd.read_parquet(reference / "manifests" / "pairs"))


@pytest.fixture(scope="module")
def professional_reference(workspace: dict[str, Path]) -> Path:
    """An uninterrupted in-process build of the professional subset (1 worker)."""
    out = workspace["root"] / "professional"
    build(str(workspace["photos"]), str(out), load_config(workspace["professional"]), subsets=["professional"],
          progress=False)  # fmt: skip
    return out


def test_professional_build_edits_both_portraits_with_the_chosen_ops(professional_reference: Path) -> None:
    pairs = pd.read_parquet(professional_reference / "manifests" / "pairs")
    assert set(pairs["subset"]) == {"professional"} and len(pairs) >= 4
    assert pairs["source_id"].nunique() == 2  # astronaut and grace_hopper
    ops = pd.read_parquet(professional_reference / "manifests" / "pair_ops")
    assert set(ops["name"]) <= {"eye_size", "jawline", "shoulder_width"} and {"eye_size", "jawline"} <= set(ops["name"])
    assert len(member_digests(professional_reference, "professional")) >= 4 * len(pairs)


@pytest.mark.slow
@pytest.mark.ray
def test_professional_on_two_ray_workers_gives_the_same_bytes(professional_reference: Path, workspace: dict[str, Path],
                                                              tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "two"
    config = with_overrides(load_config(workspace["professional"]), {"cluster.num_workers": 2})
    build(str(workspace["photos"]), str(out), config, subsets=["professional"], progress=False)
    assert tree_digest(out) == tree_digest(professional_reference)


@pytest.mark.slow
@pytest.mark.ray
def test_two_ray_workers_give_the_same_bytes(reference: Path, workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "two"
    config = with_overrides(load_config(workspace["config"]), {"cluster.num_workers": 2})
    assert config.cluster.resolved_backend() == "ray"
    build(str(workspace["photos"]), str(out), config, progress=False)
    assert tree_digest(out) == tree_digest(reference)


@pytest.mark.slow
@pytest.mark.parametrize("subset", ["simulated", "professional"])
def test_killed_build_resumes_to_the_same_bytes(subset: str, workspace: dict[str, Path], tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:  # fmt: skip
    reference = request.getfixturevalue("reference" if subset == "simulated" else "professional_reference")
    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "pipeline.cli", "build", "--source", str(workspace["photos"]), "--out", str(out),
        "--config", str(workspace["config" if subset == "simulated" else "professional"]), "--subset", subset, "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_marker = out / "_markers" / f"{subset}-000000.json"
    deadline = time.monotonic() + 120
    while not first_marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be killed mid-way"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first_marker.exists() and not (out / "dataset.json").exists()
    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "already done" in rerun.stdout and "(0 already done)" not in rerun.stdout
    assert not list(out.rglob("*.partial"))
    assert tree_digest(out) == tree_digest(reference)


def test_store_paths_are_absolute_so_workers_elsewhere_see_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store("relative/out")
    monkeypatch.chdir("/")
    assert store.url == str(tmp_path / "relative" / "out")
    store.write_json("x.json", {"a": 1})
    assert (tmp_path / "relative" / "out" / "x.json").is_file()


def test_a_different_software_stack_is_refused_unless_allowed(reference: Path, workspace: dict[str, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import versions
    from pipeline.build import VersionMismatch

    out = tmp_path / "copy"
    shutil.copytree(reference, out, symlinks=True)
    recorded = json.loads((out / "config.json").read_text())["stack"]
    assert recorded["libraries"]["opencv-python"] and recorded["models"]["yolo"]
    real = versions.library_versions
    monkeypatch.setattr(versions, "library_versions", lambda: {**real(), "opencv-python": "9.9.9"})
    with pytest.raises(VersionMismatch, match="opencv-python: recorded .* now '9.9.9'"):
        build(str(workspace["photos"]), str(out), load_config(workspace["config"]), progress=False)
    build(str(workspace["photos"]), str(out), load_config(workspace["config"]), allow_version_change=True, progress=False)
    assert json.loads((out / "config.json").read_text())["stack"]["libraries"]["opencv-python"] == "9.9.9"


def test_one_photo_failing_never_stops_a_build_and_can_be_retried(workspace: dict[str, Path], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from detectors.portrait import PortraitDetector

    real = PortraitDetector.detect

    def failing(self, rgb):
        if rgb.shape[:2] == (600, 512):  # grace_hopper
            raise RuntimeError("simulated detector crash")
        return real(self, rgb)

    out = tmp_path / "retry"
    config = load_config(workspace["config"])
    with monkeypatch.context() as patch:
        patch.setattr(PortraitDetector, "detect", failing)
        first = build(str(workspace["photos"]), str(out), config, progress=False)
    rejects = pd.read_parquet(out / "manifests" / "rejects")
    crashed = rejects[rejects.path.str.endswith("grace_hopper.jpg")]
    assert list(crashed.reason) == ["internal_error"] and "simulated detector crash" in crashed.detail.iloc[0]
    assert build(str(workspace["photos"]), str(out), config, progress=False).pairs == first.pairs  # not retried by itself
    retried = build(str(workspace["photos"]), str(out), config, retry_rejects=True, progress=False)
    assert retried.pairs > first.pairs
    rejects = pd.read_parquet(out / "manifests" / "rejects")
    assert "internal_error" not in set(rejects.reason)
