"""``mirrorset preview ROOT``: a contact sheet of pairs, to look at what a dataset holds.

Each row is one pair: before | after | 4x |after - before| as a heat map (inferno, the
largest channel difference) | edit mask, under a label naming the subset, the op chain with
requested (and, when clamped, applied) strengths, and the pair key. Pairs are chosen
deterministically from the pairs manifest: one view per edit, round-robin over op chains
so different ops show up, in shard order. Only the shards holding chosen pairs are read,
each sequentially and only up to its last chosen sample. Drawing uses OpenCV alone
(Hershey font), so the same pairs give the same PNG bytes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from manifests.schema import PAIRS_DIR, SUBSETS, check_subset, image_ext, shard_tar_path, parse_shard_name
from manifests.shards import iter_tar_members
from manifests.storage import Store

#: Candidates (edits) read per requested pair before choosing.
POOL_FACTOR = 8
#: Factor the difference heat map multiplies |after - before| by.
DIFF_GAIN = 4
_COLUMNS = ("before", "after", f"{DIFF_GAIN}x |after - before|", "mask")
_BACKGROUND = (24, 24, 24)
_TEXT = (235, 235, 235)
_DIM = (160, 160, 160)
_LABEL_H = 22
_SMALL_H = 14
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def select_pairs(store: Store, n: int, op: str | None = None, subset: str | None = None,
                 source: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Up to ``n`` pairs rows (module docstring); ``op`` keeps chains holding that op,
    ``source`` the pairs of one photo (its ``source_id``).

    One view per edit; then greedily the candidate whose subset, op chain and photo have
    been chosen least so far (ties: shard order). Parts are read until ``POOL_FACTOR * n``
    candidates are in hand."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    columns = ["pair_id", "subset", "group_id", "source_id", "shard", "key", "ops", "image_format", "view"]
    pool: list[dict[str, Any]] = []
    for name in [check_subset(subset)] if subset else list(SUBSETS):
        groups: set[str] = set()
        for rel in store.list(f"{PAIRS_DIR}/subset={name}", ".parquet"):
            for row in store.read_table(rel, columns=columns).to_pylist():
                if row["group_id"] not in groups and (op is None or op in _chain(row)) \
                        and (source is None or row["source_id"] == source):  # fmt: skip
                    groups.add(row["group_id"])
                    pool.append(row)
            if len(groups) >= POOL_FACTOR * n:
                break
    uses: dict[Any, int] = defaultdict(int)
    chosen: list[dict[str, Any]] = []
    while pool and len(chosen) < n:
        best = min(range(len(pool)), key=lambda i: (uses[pool[i]["subset"]], uses[(pool[i]["subset"], _chain(pool[i]))],
                                                    uses[pool[i]["source_id"]], i))  # fmt: skip
        row = pool.pop(best)
        for key in (row["subset"], (row["subset"], _chain(row)), row["source_id"]):
            uses[key] += 1
        chosen.append(row)
    return chosen


def _chain(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(o["name"] for o in row["ops"])


def read_samples(store: Store, rows: list[dict[str, Any]]) -> dict[str, dict[str, bytes]]:
    """key -> {suffix: bytes} of the given pairs, reading each shard once up to its last one."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        wanted[row["shard"]].add(row["key"])
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(wanted):
        keys = wanted[shard]
        rel = shard_tar_path(*parse_shard_name(shard))
        with store.open_read(rel) as stream:
            for member in iter_tar_members(stream, rel):
                if member.key in keys:
                    samples.setdefault(member.key, {})[member.suffix] = member.data
                elif keys <= samples.keys():
                    break
    missing = sorted(r["key"] for r in rows if r["key"] not in samples)
    if missing:
        raise ValueError(f"pairs {missing} are not in their shards")
    return samples


def label(row: dict[str, Any]) -> str:
    """``"simulated: eye_size +35, nose_length -60 (applied -48)"``."""
    ops = []
    for o in row["ops"]:
        text = f"{o['name']} {o['strength']:+d}"
        if o["applied_strength"] != o["strength"]:
            text += f" (applied {o['applied_strength']:+d})"
        ops.append(text)
    return f"{row['subset']}: {', '.join(ops)}"


def contact_sheet(rows: list[dict[str, Any]], samples: dict[str, dict[str, bytes]], cell: int = 192) -> np.ndarray:
    """RGB uint8 sheet: a header, then per row a label band (ops; key) and the four cells."""
    width = cell * len(_COLUMNS)
    parts = [_band(width, [(i * cell + 4, name) for i, name in enumerate(_COLUMNS)])]
    for row in rows:
        parts.append(_band(width, [(4, label(row))], [(4, row["key"])]))
        parts.append(np.concatenate([_fit(image, cell) for image in _views(row, samples[row["key"]])], axis=1))
    return np.concatenate(parts, axis=0)


def write_preview(root: str | Store, out: str | None = None, *, n: int = 16, op: str | None = None,
                  subset: str | None = None, cell: int = 192, source: str | None = None) -> str:  # fmt: skip
    """Write the contact sheet PNG (default ``ROOT/preview.png``); returns where."""
    store = root if isinstance(root, Store) else Store(root)
    rows = select_pairs(store, n, op, subset, source)
    if not rows:
        what = " and ".join(x for x in (f"op {op}" if op else "", f"subset {subset}" if subset else "",
                                        f"source {source}" if source else "") if x)  # fmt: skip
        raise ValueError(f"{store.url} holds no pairs" + (f" with {what}" if what else ""))
    sheet = contact_sheet(rows, read_samples(store, rows), cell)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    if out is None:
        store.write_bytes("preview.png", png.tobytes())
        return store.uri("preview.png")
    folder, _, name = out.rstrip("/").rpartition("/")
    Store(folder or ".").write_bytes(name, png.tobytes())
    return out


def _views(row: dict[str, Any], members: dict[str, bytes]) -> Iterator[np.ndarray]:
    ext = image_ext(row["image_format"])
    before = _decode(members[f"before.{ext}"])
    after = _decode(members[f"after.{ext}"])
    yield before
    yield after
    diff = np.abs(after.astype(np.int16) - before.astype(np.int16)).max(axis=2)
    heat = np.clip(diff * DIFF_GAIN, 0, 255).astype(np.uint8)
    yield cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    mask = cv2.imdecode(np.frombuffer(members["mask.png"], np.uint8), cv2.IMREAD_GRAYSCALE)
    yield cv2.cvtColor(mask, cv2.COLOR_GRAY2RGB)


def _decode(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("a pair image does not decode")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    """``image`` scaled (area filter) to fit a ``cell`` square, centred on the background."""
    h, w = image.shape[:2]
    scale = min((cell - 4) / w, (cell - 4) / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    out = np.full((cell, cell, 3), _BACKGROUND, np.uint8)
    y, x = (cell - size[1]) // 2, (cell - size[0]) // 2
    out[y : y + size[1], x : x + size[0]] = small
    return out


def _band(width: int, texts: list[tuple[int, str]], small: list[tuple[int, str]] = ()) -> np.ndarray:
    """A label band: ``texts`` on one line, then ``small`` (grey, smaller) on a second when given."""
    band = np.full((_LABEL_H + (_SMALL_H if small else 0), width, 3), _BACKGROUND, np.uint8)
    for x, text in texts:
        cv2.putText(band, text, (x, _LABEL_H - 8), _FONT, 0.42, _TEXT, 1, cv2.LINE_AA)
    for x, text in small:
        cv2.putText(band, text, (x, _LABEL_H + _SMALL_H - 6), _FONT, 0.34, _DIM, 1, cv2.LINE_AA)
    return band
