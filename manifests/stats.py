"""Dataset statistics from the Parquet manifests alone (no image is read).

Pairs parts are streamed batch by batch with only the needed columns. Strength
buckets are signed and 20 wide by magnitude: ``"0"``, ``"+1..+20"``, ...,
``"+81..+100"`` and ``"-1..-20"``, ..., ``"-81..-100"``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from manifests.schema import pairs_dir, rejects_path, sources_path

BUCKET_WIDTH = 20
_PAIR_COLUMNS = ["subset", "group_id", "ops", "image_format"]
_BATCH_ROWS = 65_536


def strength_buckets(strengths: np.ndarray) -> np.ndarray:
    """Signed bucket index per strength: 0 for 0, +k for (20(k-1), 20k], -k mirrored."""
    strengths = np.asarray(strengths, dtype=np.int64)
    magnitude = -(-np.abs(strengths) // BUCKET_WIDTH)
    return np.where(strengths >= 0, magnitude, -magnitude)


def bucket_label(bucket: int) -> str:
    """``0 -> "0"``, ``3 -> "+41..+60"``, ``-1 -> "-1..-20"``."""
    if bucket == 0:
        return "0"
    sign = "+" if bucket > 0 else "-"
    hi = abs(bucket) * BUCKET_WIDTH
    return f"{sign}{hi - BUCKET_WIDTH + 1}..{sign}{hi}"


def _buckets_dict(counter: Counter[int]) -> dict[str, int]:
    return {bucket_label(b): counter[b] for b in sorted(counter)}


def _part_paths(out: Path) -> list[Path]:
    return sorted(pairs_dir(out).glob("subset=*/part-*.parquet"))


def stats(out: str | Path) -> dict[str, Any]:
    """Counts of a build: per subset, op, strength bucket, image format, ops per pair,
    views per group, source status and rejects per (stage, reason)."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"output directory {out} does not exist")
    per_subset: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    ops_per_pair: Counter[int] = Counter()
    op_count: Counter[str] = Counter()
    op_clamped: Counter[str] = Counter()
    op_buckets: dict[str, Counter[int]] = {}
    all_buckets: Counter[int] = Counter()
    views: Counter[tuple[str, str]] = Counter()
    for part in _part_paths(out):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=_BATCH_ROWS, columns=_PAIR_COLUMNS):
            subsets = batch.column("subset").to_pylist()
            per_subset.update(subsets)
            views.update(zip(subsets, batch.column("group_id").to_pylist()))
            formats.update(batch.column("image_format").to_pylist())
            ops = batch.column("ops")
            ops_per_pair.update(pc.list_value_length(ops).to_numpy(zero_copy_only=False).tolist())
            _count_ops(pc.list_flatten(ops), op_count, op_clamped, op_buckets, all_buckets)
    groups_per_subset = Counter(subset for subset, _ in views)
    return {
        "pairs": sum(per_subset.values()),
        "groups": len(views),
        "subsets": {
            s: {"pairs": per_subset[s], "groups": groups_per_subset[s]} for s in sorted(per_subset)
        },
        "image_formats": dict(sorted(formats.items())),
        "ops": {
            name: {
                "count": op_count[name],
                "clamped": op_clamped[name],
                "strength_buckets": _buckets_dict(op_buckets[name]),
            }
            for name in sorted(op_count)
        },
        "strength_buckets": _buckets_dict(all_buckets),
        "ops_per_pair": {str(k): v for k, v in sorted(ops_per_pair.items())},
        "views_per_group": {str(k): v for k, v in sorted(Counter(views.values()).items())},
        "sources": _value_counts(sources_path(out), ["status"]),
        "rejects": _value_counts(rejects_path(out), ["stage", "reason"]),
    }


def _count_ops(
    flat: pa.StructArray,
    op_count: Counter[str],
    op_clamped: Counter[str],
    op_buckets: dict[str, Counter[int]],
    all_buckets: Counter[int],
) -> None:
    if len(flat) == 0:
        return
    names = np.asarray(flat.field("name").to_pylist(), dtype=object)
    strengths = flat.field("applied_strength").to_numpy(zero_copy_only=False)
    clamped = flat.field("clamped").to_numpy(zero_copy_only=False).astype(bool)
    buckets = strength_buckets(strengths)
    op_count.update(names.tolist())
    op_clamped.update(names[clamped].tolist())
    for name, bucket in zip(names.tolist(), buckets.tolist()):
        op_buckets.setdefault(name, Counter())[bucket] += 1
        all_buckets[bucket] += 1


def _value_counts(path: Path, columns: list[str]) -> dict[str, Any] | None:
    """Nested counts of ``columns`` in the table at ``path`` (None if absent)."""
    if not path.is_file():
        return None
    nested: dict[str, Any] = {}
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        for values in zip(*(batch.column(c).to_pylist() for c in columns)):
            level = nested
            for value in values[:-1]:
                level = level.setdefault(str(value), {})
            level[str(values[-1])] = level.get(str(values[-1]), 0) + 1
    return _sorted_nested(nested)


def _sorted_nested(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_nested(v) if isinstance(v, dict) else v for k, v in sorted(d.items())}


def format_stats(s: dict[str, Any]) -> str:
    """A readable multi-line table of :func:`stats`' result."""
    lines = [f"pairs {s['pairs']}, groups {s['groups']}"]
    for subset, c in s["subsets"].items():
        lines.append(f"  subset {subset:<14} pairs {c['pairs']:>10}  groups {c['groups']:>9}")
    lines.append("image formats: " + ", ".join(f"{k} {v}" for k, v in s["image_formats"].items()))
    lines.append("ops per pair:  " + ", ".join(f"{k}: {v}" for k, v in s["ops_per_pair"].items()))
    lines.append("views per group: " + ", ".join(f"{k}: {v}" for k, v in s["views_per_group"].items()))
    labels = list(s["strength_buckets"])
    lines.append(f"{'op':<22}{'count':>8}{'clamped':>9}  " + " ".join(f"{b:>10}" for b in labels))
    for name, c in s["ops"].items():
        cells = " ".join(f"{c['strength_buckets'].get(b, 0):>10}" for b in labels)
        lines.append(f"{name:<22}{c['count']:>8}{c['clamped']:>9}  {cells}")
    if s["sources"] is not None:
        lines.append("sources: " + ", ".join(f"{k} {v}" for k, v in s["sources"].items()))
    if s["rejects"] is not None:
        lines.append("rejects:")
        for stage, reasons in s["rejects"].items():
            for reason, n in reasons.items():
                lines.append(f"  {stage:<12} {reason:<28} {n:>8}")
    return "\n".join(lines)
