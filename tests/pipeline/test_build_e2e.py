"""End-to-end builds on real photos: shards, manifests, determinism, resume, verify, rejects."""

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

import pandas as pd
import pytest
import matplotlib
import skimage

from manifests.shards import iter_tar_members
from manifests.verify import verify
from pipeline.build import ConfigMismatch, build, regenerate
from pipeline.config import load_config, with_overrides

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
COFFEE = Path(skimage.__file__).parent / "data" / "coffee.png"
GRACE = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
REPO = Path(__file__).resolve().parents[2]

#: Small but complete: two usable portraits (one shard each), two views, two edits per face.
CONFIG_YAML = """\
simulated:
  views: 2
  edits_per_face: 2
output:
  sources_per_shard: 1
cluster:
  num_workers: 1
"""


def tree_digest(out: Path) -> dict[str, str]:
    """sha256 of every file under ``out`` by relative path (verify.json excluded)."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "verify.json"
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e")
    photos = root / "photos"
    photos.mkdir()
    shutil.copy(ASTRONAUT, photos / "astronaut.png")
    shutil.copy(GRACE, photos / "grace_hopper.jpg")
    shutil.copy(COFFEE, photos / "coffee.png")  # no person: a detect reject
    (photos / "broken.jpg").write_bytes(GRACE.read_bytes()[:5000])  # truncated JPEG: an ingest reject
    (photos / "notes.txt").write_text("not a photo")  # an ingest reject by extension
    config_file = root / "params.yaml"
    config_file.write_text(CONFIG_YAML)
    return {"root": root, "photos": photos, "config": config_file}


@pytest.fixture(scope="module")
def reference(workspace: dict[str, Path]) -> Path:
    """An uninterrupted in-process build (1 worker)."""
    out = workspace["root"] / "reference"
    build(str(workspace["photos"]), out, load_config(workspace["config"]), progress=False)
    return out


def test_shards_and_manifests_agree(reference: Path) -> None:
    pairs = pd.read_parquet(reference / "manifests" / "pairs")
    assert len(pairs) > 0 and set(pairs["subset"]) == {"simulated"}
    members = {}
    for tar in sorted((reference / "shards" / "simulated").glob("*.tar")):
        for member in iter_tar_members(tar):
            members[member.name] = hashlib.sha256(member.data).hexdigest()
    expected = {}
    for row in pairs.itertuples():
        expected[f"{row.key}.before.jpg"] = row.sha256_before
        expected[f"{row.key}.after.jpg"] = row.sha256_after
        expected[f"{row.key}.mask.png"] = row.sha256_mask
        expected[f"{row.key}.json"] = row.sha256_json
    assert members == expected
    assert all(sorted(views) == [0, 1] for views in pairs.groupby("group_id")["view"].apply(list))
    report = verify(reference, write=False)
    assert report.ok, report.summary()
    dataset = json.loads((reference / "dataset.json").read_text())
    assert dataset["counts"]["pairs"] == len(pairs)
    assert dataset["config"]["simulated"]["views"] == 2


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
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=0)
    seen = 0
    for before, after, mask, pair_id in loader:
        assert before.shape == after.shape and before.dtype == torch.uint8
        assert mask.shape[:2] == before.shape[:2]
        # The edit changes pixels, and the mask says where.
        assert (before.int() - after.int()).abs().max() > 20
        assert mask.max() == 255
        seen += 1
    assert seen == len(pd.read_parquet(reference / "manifests" / "pairs"))


def test_bad_inputs_end_in_rejects_with_reasons(reference: Path) -> None:
    rejects = pd.read_parquet(reference / "manifests" / "rejects.parquet")
    by_name = {Path(p).name: (stage, reason) for p, stage, reason in zip(rejects.path, rejects.stage, rejects.reason)}
    assert by_name["broken.jpg"] == ("ingest", "truncated")
    assert by_name["notes.txt"] == ("ingest", "unsupported_format")
    assert by_name["coffee.png"] == ("detect", "no_person")
    assert rejects["reason"].notna().all()
    sources = pd.read_parquet(reference / "manifests" / "sources.parquet")
    assert len(sources) == 5
    assert set(pd.read_parquet(reference / "manifests" / "pairs")["source_id"]) <= set(sources.source_id)


def test_rerun_is_a_no_op_and_other_config_is_refused(reference: Path, workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    before = tree_digest(out)
    report = build(str(workspace["photos"]), out, load_config(workspace["config"]), progress=False)
    assert report.shards_skipped == report.shards == 2
    assert tree_digest(out) == before
    with pytest.raises(ConfigMismatch, match="seed"):
        build(str(workspace["photos"]), out, with_overrides(load_config(workspace["config"]), {"seed": 1}), progress=False)


def test_regenerate_reproduces_bytes(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    before = tree_digest(out)
    summaries = regenerate(out, "simulated", [1], progress=False)
    assert [s.shard for s in summaries] == ["simulated-000001"] and not summaries[0].skipped
    assert tree_digest(out) == before
    regenerate(out, "simulated", progress=False)
    assert tree_digest(out) == before
    with pytest.raises(ValueError, match="no shard"):
        regenerate(out, "simulated", [7], progress=False)


def test_verify_catches_a_flipped_byte(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    tar = out / "shards" / "simulated" / "simulated-000000.tar"
    data = bytearray(tar.read_bytes())
    data[2048] ^= 0x01  # inside the first member's bytes (after its 512-byte header)
    tar.write_bytes(bytes(data))
    report = verify(out, write=False)
    assert not report.ok
    assert "simulated-000000.tar" in report.summary()


@pytest.mark.slow
@pytest.mark.ray
def test_two_ray_workers_give_the_same_bytes(reference: Path, workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "two"
    config = with_overrides(load_config(workspace["config"]), {"cluster.num_workers": 2})
    assert config.cluster.resolved_backend() == "ray"
    build(str(workspace["photos"]), out, config, progress=False)
    assert tree_digest(out) == tree_digest(reference)


@pytest.mark.slow
def test_killed_build_resumes_to_the_same_bytes(reference: Path, workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "pipeline.cli", "build", "--source", str(workspace["photos"]),
        "--out", str(out), "--config", str(workspace["config"]), "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_marker = out / "_markers" / "simulated-000000.json"
    deadline = time.monotonic() + 120
    while not first_marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before it could be killed mid-way"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first_marker.exists() and not (out / "dataset.json").exists()
    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "1 already done" in rerun.stdout
    assert not list(out.rglob("*.partial"))
    assert tree_digest(out) == tree_digest(reference)
