"""Per-shard commit markers: ``_markers/<shard>.json``, written last.

A marker exists only once its shard's tar and pairs part are renamed into place;
it records their sizes and sha256 and the row/member counts, so a rerun skips a
shard whose marker still matches its files. Marker JSON has sorted keys::

    {"schema_version": 1, "subset": "simulated", "index": 3, "shard": "simulated-000003",
     "counts": {"pairs": 16, "members": 64},
     "tar":  {"path": "shards/simulated/simulated-000003.tar", "bytes": ..., "sha256": "..."},
     "part": {"path": "manifests/pairs/subset=simulated/part-000003.parquet", ...},
     ...caller payload (e.g. "timings")}
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from manifests.schema import (
    SCHEMA_VERSION,
    marker_path,
    pairs_part_path,
    parse_shard_name,
    partial_path,
    shard_name,
    shard_tar_path,
)
from manifests.digests import file_sha256

#: Keys a marker sets itself; a payload may not use them.
RESERVED_KEYS = frozenset({"schema_version", "subset", "index", "shard", "counts", "tar", "part"})


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON (sorted keys, 2-space indent, trailing newline) atomically."""
    text = json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a partial file, fsync it, then ``os.replace`` it onto ``path``;
    on any failure the partial file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _file_record(out: Path, path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"cannot mark shard: {path} does not exist")
    return {
        "path": path.relative_to(out).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }


def _count_members(tar_path: Path) -> int:
    with tarfile.open(tar_path, mode="r:") as tar:
        return sum(1 for _ in tar)


def write_marker(
    out: str | Path, subset: str, index: int, payload: Mapping[str, Any] | None = None
) -> Path:
    """Write the marker of shard (subset, index) after its tar and part exist."""
    out = Path(out)
    payload = dict(payload or {})
    clash = sorted(RESERVED_KEYS & set(payload))
    if clash:
        raise ValueError(f"marker payload may not set reserved key(s) {clash}")
    tar_path = shard_tar_path(out, subset, index)
    part_path = pairs_part_path(out, subset, index)
    marker = {
        **payload,
        "schema_version": SCHEMA_VERSION,
        "subset": subset,
        "index": index,
        "shard": shard_name(subset, index),
        "tar": _file_record(out, tar_path),
        "part": _file_record(out, part_path),
        "counts": {
            "pairs": pq.ParquetFile(part_path).metadata.num_rows,
            "members": _count_members(tar_path),
        },
    }
    return write_json_atomic(marker_path(out, subset, index), marker)


def _load_marker(path: Path) -> dict[str, Any]:
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"marker {path} is not valid JSON: {exc}") from exc
    if not isinstance(marker, dict):
        raise ValueError(f"marker {path} must hold a JSON object")
    return marker


def read_marker(out: str | Path, subset: str, index: int) -> dict[str, Any] | None:
    """The marker of shard (subset, index), or None if it has none."""
    path = marker_path(out, subset, index)
    if not path.is_file():
        return None
    return _load_marker(path)


def read_markers(out: str | Path, subset: str) -> dict[int, dict[str, Any]]:
    """All markers of ``subset``, by shard index."""
    markers = {}
    for path in sorted((Path(out) / "_markers").glob(f"{subset}-*.json")):
        found_subset, index = parse_shard_name(path.stem)
        if found_subset != subset:
            continue
        markers[index] = _load_marker(path)
    return markers


def marker_mismatches(
    out: str | Path, subset: str, index: int, marker: Mapping[str, Any], *, full_hash: bool
) -> list[str]:
    """Human-readable differences between ``marker`` and the files on disk (empty
    when they agree); sizes always, sha256 only with ``full_hash``."""
    out = Path(out)
    problems = []
    expected_shard = shard_name(subset, index)
    if marker.get("shard") != expected_shard:
        problems.append(f"marker names shard {marker.get('shard')!r}, expected {expected_shard!r}")
    for entry, path in (
        ("tar", shard_tar_path(out, subset, index)),
        ("part", pairs_part_path(out, subset, index)),
    ):
        record = marker.get(entry)
        if not isinstance(record, Mapping):
            problems.append(f"marker has no {entry!r} record")
            continue
        if not path.is_file():
            problems.append(f"{entry} file {path} is missing")
            continue
        size = path.stat().st_size
        if size != record.get("bytes"):
            problems.append(f"{entry} {path.name}: {size} bytes, marker says {record.get('bytes')}")
        elif full_hash and file_sha256(path) != record.get("sha256"):
            problems.append(f"{entry} {path.name}: sha256 differs from the marker")
    return problems


def is_complete(out: str | Path, subset: str, index: int, *, full_hash: bool = False) -> bool:
    """True if shard (subset, index) has a marker and both files match it (sizes;
    sha256 too with ``full_hash``)."""
    marker = read_marker(out, subset, index)
    if marker is None:
        return False
    return not marker_mismatches(out, subset, index, marker, full_hash=full_hash)
