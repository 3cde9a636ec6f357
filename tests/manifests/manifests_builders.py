"""Small real builds for the manifests tests: pair members are JPEG/PNG bytes of
crops of skimage's astronaut photo (before) and the same crop shifted (after)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from manifests.markers import write_json_atomic, write_marker
from manifests.parquet import write_table
from manifests.schema import (
    PAIRS_SCHEMA,
    REJECTS_SCHEMA,
    SOURCES_SCHEMA,
    group_key,
    image_ext,
    pair_key,
    pairs_part_path,
    rejects_path,
    shard_name,
    shard_tar_path,
    sources_path,
)
from manifests.shards import ShardTarWriter

OP_NAMES = ("eye_size", "mouth_width", "nose_length")
CROP = 96


def _encode(image: np.ndarray, fmt: str) -> bytes:
    bgr = image[:, :, ::-1] if image.ndim == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpeg" else []
    ok, buf = cv2.imencode("." + image_ext(fmt), bgr, params)
    assert ok
    return buf.tobytes()


def make_pair(photo: np.ndarray, key: str, offset: int, fmt: str = "jpeg") -> dict[str, bytes]:
    """A sample dict: before = crop at ``offset``, after = crop 3 px further right."""
    y = 100 + offset % 300
    x = 150 + (offset * 7) % 250
    before = np.ascontiguousarray(photo[y : y + CROP, x : x + CROP])
    after = np.ascontiguousarray(photo[y : y + CROP, x + 3 : x + 3 + CROP])
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2)
    mask = np.where(diff > 24, 255, 0).astype(np.uint8)
    ext = image_ext(fmt)
    record = {"pair_id": key, "record_version": 1}
    return {
        "__key__": key,
        f"after.{ext}": _encode(after, fmt),
        f"before.{ext}": _encode(before, fmt),
        "json": json.dumps(record, sort_keys=True).encode(),
        "mask.png": _encode(mask, "png"),
    }


def source_id_for(subset: str, index: int, n: int) -> str:
    return hashlib.sha256(f"{subset}/{index}/{n}".encode()).hexdigest()[:16]


def pair_row(subset: str, index: int, sample: dict[str, bytes], view: int, rng: np.random.Generator,
             fmt: str = "jpeg") -> dict:
    key = sample["__key__"]
    source_id = key.split("-")[0]
    ext = image_ext(fmt)
    n_ops = int(rng.integers(1, 4))
    ops = []
    for _ in range(n_ops):
        strength = int(rng.choice([-100, -61, -20, -1, 1, 20, 21, 55, 100]))
        clamped = bool(rng.random() < 0.3)
        applied = int(strength * 0.5) if clamped else strength
        ops.append({"name": str(rng.choice(OP_NAMES)), "strength": strength,
                    "applied_strength": applied, "clamped": clamped})
    return {
        "pair_id": key,
        "subset": subset,
        "group_id": group_key(source_id, 0, 0),
        "view": view,
        "source_id": source_id,
        "face_index": 0,
        "shard": shard_name(subset, index),
        "key": key,
        "ops": ops,
        "aug_matrix": [1.0, 0.0, float(view), 0.0, 1.0, 0.0],
        "width": CROP,
        "height": CROP,
        "seed": int(rng.integers(0, 2**63 - 1)),
        "image_format": fmt,
        "sha256_before": hashlib.sha256(sample[f"before.{ext}"]).hexdigest(),
        "sha256_after": hashlib.sha256(sample[f"after.{ext}"]).hexdigest(),
        "sha256_mask": hashlib.sha256(sample["mask.png"]).hexdigest(),
        "sha256_json": hashlib.sha256(sample["json"]).hexdigest(),
        "region_bbox": [10, 12, 80, 90],
        "region_area_px": 4321,
        "min_jacobian": 0.75,
    }


def write_shard(out: Path, photo: np.ndarray, subset: str, index: int, *, sources: int = 2,
                views: int = 2, fmt: str = "jpeg") -> list[dict]:
    """Write tar, part and marker of one shard; returns its pair rows."""
    rng = np.random.default_rng([index, len(subset)])
    samples = []
    for n in range(sources):
        source_id = source_id_for(subset, index, n)
        for view in range(views):
            key = pair_key(source_id, 0, 0, view)
            samples.append((make_pair(photo, key, index * 31 + n * 5 + view, fmt), view))
    samples.sort(key=lambda s: s[0]["__key__"])
    rows = []
    with ShardTarWriter(shard_tar_path(out, subset, index)) as writer:
        for sample, view in samples:
            writer.write(sample)
            rows.append(pair_row(subset, index, sample, view, rng, fmt))
    write_table(pairs_part_path(out, subset, index), rows, PAIRS_SCHEMA)
    write_marker(out, subset, index, {"timings": {"total_s": 1.5}})
    return rows


def write_build(out: Path, photo: np.ndarray) -> list[dict]:
    """Two simulated shards, one professional (PNG) shard, sources, rejects, dataset.json."""
    rows = write_shard(out, photo, "simulated", 0)
    rows += write_shard(out, photo, "simulated", 1, sources=1, views=3)
    rows += write_shard(out, photo, "professional", 0, sources=1, fmt="png")
    source_ids = sorted({r["source_id"] for r in rows})
    sources = [
        {"source_id": sid, "path": f"photos/{sid}.jpg", "width": 512, "height": 512,
         "bytes": 1000 + i, "sha256": sid * 4, "status": "accepted", "reason": None}
        for i, sid in enumerate(source_ids)
    ]
    sources.append({"source_id": "f" * 16, "path": "photos/tiny.jpg", "width": None, "height": None,
                    "bytes": 99, "sha256": "f" * 64, "status": "rejected", "reason": "too_small"})
    sources.append({"source_id": "e" * 16, "path": "photos/broken.jpg", "width": None, "height": None,
                    "bytes": None, "sha256": None, "status": "rejected", "reason": "undecodable"})
    rejects = [
        {"source_id": "f" * 16, "path": "photos/tiny.jpg", "stage": "ingest", "reason": "too_small",
         "detail": "20x20 < 256"},
        {"source_id": "e" * 16, "path": "photos/broken.jpg", "stage": "ingest", "reason": "undecodable",
         "detail": "cannot identify image"},
        {"source_id": source_ids[0], "path": f"photos/{source_ids[0]}.jpg", "stage": "detect",
         "reason": "no_face", "detail": None},
    ]
    write_table(sources_path(out), sources, SOURCES_SCHEMA)
    write_table(rejects_path(out), rejects, REJECTS_SCHEMA)
    groups = {(r["subset"], r["group_id"]) for r in rows}
    write_json_atomic(out / "dataset.json", {"counts": {
        "pairs": len(rows), "sources": len(sources), "accepted": len(source_ids), "rejects": len(rejects),
        "shards": 3, "groups": len(groups)}})
    return rows
