"""Dataset roots and sources on an S3-compatible server (moto, started here on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import skimage

from manifests.storage import Store
from pipeline.build import build
from pipeline.config import load_config

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
CONFIG_YAML = "simulated:\n  views: 2\n  edits_per_face: 1\n  ladders:\n    per_face: 0\ncluster:\n  num_workers: 1\n"


@pytest.fixture(scope="module")
def s3(s3_endpoint: str, monkeypatch_module: pytest.MonkeyPatch) -> str:
    """An empty bucket on the session's moto server; returns its s3:// URL. Env points every client there."""
    monkeypatch_module.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir("mirrorset-test")
    return "s3://mirrorset-test"


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _digests_local(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "_lock" not in p.relative_to(root).parts}  # fmt: skip


def _digests_s3(url: str) -> dict[str, str]:
    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    fs.invalidate_cache()
    return {path[len(root) + 1 :]: hashlib.sha256(fs.cat_file(path)).hexdigest() for path in sorted(fs.find(root))
            if not path[len(root) + 1 :].startswith("_lock/")}  # fmt: skip


def test_store_commits_whole_objects_or_nothing(s3: str) -> None:
    store = Store(f"{s3}/store")
    written = store.write_bytes("a/b.bin", b"x" * 10)
    assert written.sha256 == hashlib.sha256(b"x" * 10).hexdigest() and store.size("a/b.bin") == 10
    with pytest.raises(RuntimeError):
        with store.writer("a/half.bin") as w:
            w.write(b"y" * 100)
            raise RuntimeError("interrupted")
    assert not store.exists("a/half.bin") and store.list("a") == ["a/b.bin"]
    assert store.stamp("a/b.bin")["etag"]


def test_build_into_s3_from_s3_equals_the_local_build(s3: str, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(ASTRONAUT, photos / "astronaut.png")
    (photos / "notes.txt").write_text("not a photo")
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.put(str(photos) + "/", "mirrorset-test/photos/", recursive=True)
    config_file = tmp_path / "params.yaml"
    config_file.write_text(CONFIG_YAML)
    config = load_config(config_file)
    local = tmp_path / "local"
    build(str(photos), str(local), config, progress=False)
    build(f"{s3}/photos", f"{s3}/dataset", config, progress=False)
    remote = _digests_s3(f"{s3}/dataset")
    ours = _digests_local(local)
    # Everything but what names the source (paths, and the records holding them: markers hash
    # their shard's rejects part) is byte-identical: shards, pairs, pair_ops, detections, index.
    naming = {"config.json", "dataset.json"} | {k for k in ours if k.startswith(("manifests/sources/", "manifests/rejects/",
                                                                                "_work/ingest/", "manifests/plan/", "_markers/"))}  # fmt: skip
    assert set(remote) == set(ours)
    same = {k for k in ours if k not in naming}
    assert {"shards/simulated/simulated-000000.tar", "manifests/pairs/subset=simulated/part-000000.parquet"} <= same
    assert {k: remote[k] for k in same} == {k: ours[k] for k in same}
    pairs = pd.read_parquet(f"{s3}/dataset/manifests/pairs", storage_options={"skip_instance_cache": True})
    assert len(pairs) == 2 and pairs.source_id.nunique() == 1
    rerun = build(None, f"{s3}/dataset", config, progress=False)
    assert rerun.subsets[0].shards_skipped == rerun.subsets[0].shards
