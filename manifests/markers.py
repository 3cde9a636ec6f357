"""Per-shard commit markers: ``_markers/<shard>.json``, written last.

A marker exists only once every file of its shard is committed. It records, for each
file, the size and sha256 *of the bytes that attempt wrote* (hashed while writing, see
``manifests.storage``), the sample counts and the plan generation, so a rerun skips a
shard whose marker still matches its files and verify can check them. Marker JSON::

    {"schema_version": 2, "subset": "simulated", "index": 3, "shard": "simulated-000003",
     "counts": {"pairs": 3200, "planned": 3200, "rejects": 4},
     "files": {"tar":      {"path": "shards/simulated/simulated-000003.tar", "bytes": ..., "sha256": ...},
               "pairs":    {"path": "manifests/pairs/subset=simulated/part-000003.parquet", ...},
               "pair_ops": {...}, "rejects": {...}},
     ...caller payload (e.g. "timings")}
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from manifests.schema import MARKERS_DIR, SCHEMA_VERSION, marker_path, parse_shard_name, shard_name
from manifests.storage import Store, Written

#: Keys a marker sets itself; a payload may not use them.
RESERVED_KEYS = frozenset({"schema_version", "subset", "index", "shard", "counts", "files"})


def write_marker(
    store: Store,
    subset: str,
    index: int,
    files: Mapping[str, Written],
    counts: Mapping[str, int],
    payload: Mapping[str, Any] | None = None,
) -> Written:
    """Commit the marker of shard (subset, index); ``files`` maps a role ("tar", "pairs", ...)
    to what was written for it."""
    payload = dict(payload or {})
    clash = sorted(RESERVED_KEYS & set(payload))
    if clash:
        raise ValueError(f"marker payload may not set reserved key(s) {clash}")
    marker = {
        **payload,
        "schema_version": SCHEMA_VERSION,
        "subset": subset,
        "index": index,
        "shard": shard_name(subset, index),
        "files": {role: written.to_record() for role, written in sorted(files.items())},
        "counts": dict(sorted(counts.items())),
    }
    return store.write_json(marker_path(subset, index), marker)


def read_marker(store: Store, subset: str, index: int) -> dict[str, Any] | None:
    """The marker of shard (subset, index), or None if it has none."""
    rel = marker_path(subset, index)
    try:
        marker = store.read_json(rel)
    except ValueError as exc:
        raise ValueError(f"marker {store.uri(rel)} is not valid JSON: {exc}") from exc
    if marker is not None and not isinstance(marker, dict):
        raise ValueError(f"marker {store.uri(rel)} must hold a JSON object")
    return marker


def read_markers(store: Store, subset: str) -> dict[int, dict[str, Any]]:
    """All markers of ``subset``, by shard index."""
    markers = {}
    for rel in store.list(MARKERS_DIR, ".json"):
        stem = rel.rsplit("/", 1)[-1].removesuffix(".json")
        try:
            found_subset, index = parse_shard_name(stem)
        except ValueError:
            continue
        if found_subset == subset:
            marker = read_marker(store, subset, index)
            if marker is not None:
                markers[index] = marker
    return markers


def marker_mismatches(store: Store, subset: str, index: int, marker: Mapping[str, Any], *, full_hash: bool) -> list[str]:
    """Human-readable differences between ``marker`` and the stored files (empty when they
    agree); sizes always, sha256 too with ``full_hash`` (reads every byte)."""
    problems = []
    expected = shard_name(subset, index)
    if marker.get("shard") != expected:
        problems.append(f"marker names shard {marker.get('shard')!r}, expected {expected!r}")
    files = marker.get("files")
    if not isinstance(files, Mapping) or "tar" not in files:
        return problems + ["marker has no file records"]
    for role, record in sorted(files.items()):
        rel = record.get("path") if isinstance(record, Mapping) else None
        if not isinstance(rel, str):
            problems.append(f"marker's {role!r} record has no path")
            continue
        size = store.size(rel)
        if size is None:
            problems.append(f"{role} {rel} is missing")
        elif size != record.get("bytes"):
            problems.append(f"{role} {rel}: {size} bytes, marker says {record.get('bytes')}")
        elif full_hash and stored_sha256(store, rel) != record.get("sha256"):
            problems.append(f"{role} {rel}: sha256 differs from the marker")
    return problems


def is_complete(store: Store, subset: str, index: int, *, full_hash: bool = False) -> bool:
    """True if shard (subset, index) has a marker and every file matches it."""
    marker = read_marker(store, subset, index)
    return marker is not None and not marker_mismatches(store, subset, index, marker, full_hash=full_hash)


def stored_sha256(store: Store, rel: str, chunk: int = 1 << 22) -> str:
    """sha256 hex of a stored file, read in chunks."""
    digest = hashlib.sha256()
    with store.open_read(rel) as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
