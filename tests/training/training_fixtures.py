"""The shard index and verify report that the build and `mirrorset verify` will write,
derived here from real tars (tests only), and the settings of the session's sample build."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pandas as pd

from manifests.digests import file_sha256
from pipeline.seeding import derive_seed
from pipeline.training.data import is_held_out

#: Settings of the session's sample build (small, still 2 shards and several views per edit).
SAMPLE_SETTINGS = {
    "simulated.views": 4,
    "simulated.edits_per_face": 1,
    "simulated.ladders.per_face": 0,
    "output.shard_target_bytes": 6_000_000,
    "cluster.num_workers": 1,
}


def shard_nsamples(tar_path: Path) -> int:
    """Number of distinct sample keys (name up to the first dot) in a tar."""
    with tarfile.open(tar_path) as tar:
        return len({m.name.split("/")[-1].split(".", 1)[0] for m in tar if m.isfile()})


def write_shard_index(root: Path, subset: str) -> list[dict]:
    """Write ``root/shards/<subset>/index.json`` (wids-shard-index-v1) from the tars there."""
    folder = root / "shards" / subset
    entries = [
        {"url": tar.name, "nsamples": shard_nsamples(tar), "filesize": tar.stat().st_size, "sha256": file_sha256(tar)}
        for tar in sorted(folder.glob("*.tar"))
    ]
    index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": subset, "shardlist": entries}
    (folder / "index.json").write_text(json.dumps(index, indent=2))
    return entries


def write_verify_report(root: Path, subsets: tuple[str, ...] = ("simulated",), *, ok: bool = True, mode: str = "full") -> Path:
    """Write ``root/verify.json`` as the verify stage will: every tar of ``subsets`` hashed
    and stat'ed now (relative urls, sha256, nsamples, filesize, mtime_ns)."""
    shards = []
    for subset in subsets:
        for tar in sorted((root / "shards" / subset).glob("*.tar")):
            stat = tar.stat()
            shards.append({
                "subset": subset, "url": tar.relative_to(root).as_posix(), "sha256": file_sha256(tar),
                "nsamples": shard_nsamples(tar), "filesize": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            })  # fmt: skip
    report = {"ok": ok, "mode": mode, "problems": [] if ok else [{"code": "checksum"}], "shards": shards}
    path = root / "verify.json"
    path.write_text(json.dumps(report, indent=2))
    return path


def verified_copy(source: Path, destination: Path) -> Path:
    """A copy of a built dataset's shards with a fresh index and verify report."""
    shutil.copytree(source / "shards", destination / "shards")
    for folder in (destination / "shards").iterdir():
        write_shard_index(destination, folder.name)
    write_verify_report(destination, tuple(sorted(f.name for f in (destination / "shards").iterdir())))
    return destination


def manifest_edits(build: Path) -> dict[str, dict]:
    """From a build's pairs manifest: group_id -> {"shard": shard name, "views": sorted views}."""
    pairs = pd.read_parquet(build / "manifests" / "pairs", columns=["group_id", "view", "shard"])
    return {
        group: {"shard": rows["shard"].iloc[0], "views": sorted(int(v) for v in rows["view"])}
        for group, rows in pairs.groupby("group_id", sort=True)
    }


def held_out_edits(build: Path, seed: int, fraction: float) -> dict[str, dict]:
    """The edits of :func:`manifest_edits` that the held-out split keeps out of training."""
    return {g: e for g, e in manifest_edits(build).items() if is_held_out(g, seed, fraction)}


def holdout_fraction(build: Path, held: int, seed: int = 0) -> float:
    """A ``holdout_fraction`` that holds out exactly ``held`` of the build's edits (between the
    held-th and the next smallest of their holdout hashes), whatever the build produced."""
    hashes = sorted(derive_seed(seed, "holdout", group) / 2**63 for group in manifest_edits(build))
    assert 0 < held < len(hashes), f"the build has {len(hashes)} edits"
    return (hashes[held - 1] + hashes[held]) / 2
