"""Quadruples (Xs, Xt, Xq, Yq) streamed from the shards with webdataset and a DataLoader.

A shard sample is one view of one edit: members ``{key}.before.<ext>``, ``{key}.after.<ext>``
(ext jpg | png | webp), ``{key}.mask.png`` and ``{key}.json`` (the parameter record: we read
``group_id``, ``view`` and ``ops``, never the key; other members are ignored). All views of an
edit share ``group_id`` and are consecutive within a shard. A quadruple takes the exemplar
pair from one view and the query pair from another view of the same edit.

Held-out edits: ``group_id`` hashed with the seed, a fraction ``holdout_fraction`` of them;
no view of a held-out edit is ever trained on.

Per DataLoader worker (:class:`QuadStream`): ``wds.split_by_node`` and ``wds.split_by_worker``
give it a fixed share of the shards; each epoch reads them in an order shuffled from (seed,
subset, epoch, node, worker): tar samples, edits, one quadruple per view as query with a
seeded exemplar, a seeded shuffle buffer, batches. A worker whose share holds no training
quadruple (empty shards, only held-out edits) stops; the others go on.
Images are decoded after the shuffle, once per view (cached while its edit's quadruples are
in the buffer), so resuming skips consumed batches without decoding them. Workers decode
with OpenCV single-threaded (see :func:`training_loader`).

Exact resume: every batch carries (logical worker, epoch, batch index). The DataLoader
returns batches round-robin over its workers in order; :class:`PositionTracker` records
what was consumed, and a restarted stream lets DataLoader worker ``i`` play logical
worker ``(i + offset) % num_workers`` (its shards are rotated to match), so the batch
sequence after a resume equals the uninterrupted one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from manifests.schema import IMAGE_FORMATS
from pipeline.seeding import derive_seed, rng_for
from pipeline.training.config import TrainConfig
from pipeline.training.frames import ViewFrames, view_frames
from warps.catalog import CATALOG

log = logging.getLogger(__name__)

#: Label order of the op heads: the catalog's order (27 ops).
OP_NAMES: tuple[str, ...] = tuple(CATALOG)
_OP_INDEX = {name: i for i, name in enumerate(OP_NAMES)}
_IMAGE_EXTS = tuple(sorted(set(IMAGE_FORMATS.values())))
#: Strength of an op record (applied, in [-100, 100]) divided by this is the regression target.
STRENGTH_SCALE = 100.0


class View:
    """One view of an edit: its parameter record and encoded members. ``frames(size)``
    decodes and letterboxes it on first use and keeps the result."""

    def __init__(self, record: dict, before: bytes, after: bytes, mask: bytes, where: str) -> None:
        self.record, self.before, self.after, self.mask, self.where = record, before, after, mask, where
        self._frames: tuple[int, ViewFrames] | None = None

    def frames(self, size: int) -> ViewFrames:
        if self._frames is None or self._frames[0] != size:
            self._frames = (size, view_frames(self.before, self.after, self.mask, size, self.where))
        return self._frames[1]


def view_from_sample(sample: dict) -> View:
    """A webdataset sample dict (member suffix -> bytes) to a :class:`View`; ValueError if a
    required member is missing or the record lacks ``group_id`` / ``ops``."""
    where = f"{sample.get('__url__')}#{sample.get('__key__')}"
    if "json" not in sample or "mask.png" not in sample:
        raise ValueError(f"{where}: sample lacks its json or mask.png member")
    record = json.loads(sample["json"])
    if not isinstance(record, dict) or not isinstance(record.get("group_id"), str):
        raise ValueError(f"{where}: the parameter record has no string group_id")
    if isinstance(record.get("view"), bool) or not isinstance(record.get("view"), int):
        raise ValueError(f"{where}: the parameter record has no integer view")
    op_targets(record, where)
    images = []
    for role in ("before", "after"):
        found = [f"{role}.{ext}" for ext in _IMAGE_EXTS if f"{role}.{ext}" in sample]
        if len(found) != 1:
            raise ValueError(f"{where}: expected one {role} image member, found {found}")
        images.append(sample[found[0]])
    return View(record, images[0], images[1], sample["mask.png"], where)


def op_targets(record: dict, where: str = "record") -> tuple[np.ndarray, np.ndarray]:
    """(present, strength): (27,) float32 each, in :data:`OP_NAMES` order; ``present`` is 1
    for each op of the chain, ``strength`` its applied strength / 100 (0 where absent)."""
    ops = record.get("ops")
    if not isinstance(ops, list) or not ops:
        raise ValueError(f"{where}: the parameter record has no ops")
    present = np.zeros(len(OP_NAMES), np.float32)
    strength = np.zeros(len(OP_NAMES), np.float32)
    for op in ops:
        name = op.get("name") if isinstance(op, dict) else None
        value = op.get("applied_strength") if isinstance(op, dict) else None
        if name not in _OP_INDEX:
            raise ValueError(f"{where}: unknown op {name!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not -100 <= value <= 100:
            raise ValueError(f"{where}: op {name!r} has applied_strength {value!r}, expected an int in [-100, 100]")
        if present[_OP_INDEX[name]]:
            raise ValueError(f"{where}: op {name!r} occurs twice in one chain")
        present[_OP_INDEX[name]] = 1.0
        strength[_OP_INDEX[name]] = value / STRENGTH_SCALE
    return present, strength


def group_views(samples: Iterable[dict]) -> Iterator[list[View]]:
    """Consecutive samples with one ``group_id`` -> the views of one edit; ValueError if an
    edit's views are split within a shard."""
    current: list[View] = []
    current_id: tuple[str, str] | None = None
    seen: set[tuple[str, str]] = set()  # edits of the current shard
    for sample in samples:
        view = view_from_sample(sample)
        edit = (str(sample.get("__url__")), view.record["group_id"])
        if edit == current_id:
            current.append(view)
            continue
        if current_id is not None and edit[0] != current_id[0]:
            seen.clear()
        if edit in seen:
            raise ValueError(f"{view.where}: views of edit {edit[1]!r} are not consecutive in their shard")
        seen.add(edit)
        if current:
            yield current
        current, current_id = [view], edit
    if current:
        yield current


def is_held_out(group_id: str, seed: int, fraction: float) -> bool:
    """Whether edit ``group_id`` belongs to the held-out set (a seeded hash, stable everywhere)."""
    return derive_seed(seed, "holdout", group_id) < fraction * 2**63


def training_pairs(views: list[View], seed: int, epoch: int) -> list[tuple[View, View]]:
    """(exemplar, query) per view as query, the exemplar another view drawn from (seed, epoch, edit)."""
    n = len(views)
    if n < 2:
        return []
    rng = rng_for(seed, "exemplars", epoch, views[0].record["group_id"])
    return [(views[(j + 1 + int(rng.integers(n - 1))) % n], views[j]) for j in range(n)]


def evaluation_pairs(views: list[View]) -> list[tuple[View, View]]:
    """(exemplar, query) per view as query, the exemplar the next view (cyclically)."""
    n = len(views)
    return [(views[(j + 1) % n], views[j]) for j in range(n)] if n >= 2 else []


def quad_arrays(exemplar: View, query: View, size: int, region_weight: float) -> dict[str, np.ndarray]:
    """One quadruple as arrays: ``exemplar`` (6, size, size) uint8 = Xs RGB then Xt RGB;
    ``query`` Xq and ``target`` Yq (3, size, size) uint8; ``weight`` (1, size, size) float32 =
    valid * (1 + (region_weight - 1) * query mask); ``ops`` / ``strengths`` (27,) float32
    from the exemplar's record (all views of an edit share it)."""
    e, q = exemplar.frames(size), query.frames(size)
    present, strength = op_targets(exemplar.record, exemplar.where)
    return {
        "exemplar": np.concatenate([e.before, e.after], axis=2).transpose(2, 0, 1),
        "query": q.before.transpose(2, 0, 1),
        "target": q.after.transpose(2, 0, 1),
        "weight": (q.valid * (1.0 + (region_weight - 1.0) * q.mask))[None],
        "ops": present,
        "strengths": strength,
    }


def collate(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack quadruple arrays into batch tensors (uint8 images stay uint8)."""
    return {key: torch.from_numpy(np.ascontiguousarray(np.stack([it[key] for it in items]))) for key in items[0]}


@dataclass(frozen=True)
class StreamPosition:
    """Where a training stream resumes: DataLoader worker ``i`` plays logical worker
    ``(i + offset) % n``; ``workers[l]`` = (epoch, next batch index) of logical worker ``l``
    (empty: all at (0, 0))."""

    offset: int = 0
    workers: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict:
        return {"offset": self.offset, "workers": [list(w) for w in self.workers]}

    @classmethod
    def from_dict(cls, data: dict) -> StreamPosition:
        return cls(int(data["offset"]), tuple((int(e), int(b)) for e, b in data["workers"]))


class PositionTracker:
    """Follows the batches the training loop consumed from a stream of ``streams`` workers."""

    def __init__(self, start: StreamPosition, streams: int) -> None:
        self.workers = list(start.workers) or [(0, 0)] * streams
        if len(self.workers) != streams:
            raise ValueError(f"position has {len(self.workers)} workers, the loader {streams}")
        self.next_worker = start.offset

    def consumed(self, batch: dict) -> None:
        worker = int(batch["worker"])
        self.workers[worker] = (int(batch["epoch"]), int(batch["batch"]) + 1)
        self.next_worker = (worker + 1) % len(self.workers)

    def position(self) -> StreamPosition:
        return StreamPosition(self.next_worker, tuple(self.workers))


def rotate_for_workers(shards: list, count: int, offset: int) -> list:
    """Reorder ``shards`` so that ``wds.split_by_worker`` hands DataLoader worker ``i`` the
    shards ``shards[(i + offset) % count :: count]``; None fills gaps between unequal slices."""
    if count == 1:
        return list(shards)
    slices = [shards[(i + offset) % count :: count] for i in range(count)]
    longest = max(len(s) for s in slices)
    return [s[k] if k < len(s) else None for k in range(longest) for s in slices]


class QuadStream(IterableDataset):
    """Endless training batches of one subset's shards (``urls``), excluding held-out edits,
    from ``start`` on. A batch is :func:`collate` output plus ``groups`` (group_id per
    quadruple), ``views`` ((exemplar view, query view) per quadruple) and the ``worker``,
    ``epoch``, ``batch`` ints of its position. A worker whose share of the shards holds no
    training quadruple stops."""

    def __init__(self, urls: list[str], subset: str, config: TrainConfig, start: StreamPosition) -> None:
        self.urls, self.subset, self.config, self.start = list(urls), subset, config, start

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        physical, count = (info.id, info.num_workers) if info is not None else (0, 1)
        logical = (physical + self.start.offset) % count
        epoch, skip = self.start.workers[logical] if self.start.workers else (0, 0)
        while True:
            found = [0]
            yield from self._epoch(epoch, count, logical, skip, found)
            if not found[0]:
                return
            epoch, skip = epoch + 1, 0

    def _epoch(self, epoch: int, count: int, logical: int, skip: int, found: list[int]) -> Iterator[dict]:
        cfg = self.config
        shards = rotate_for_workers(list(wds.split_by_node([{"url": u} for u in self.urls])), count, self.start.offset)
        mine = [s for s in wds.split_by_worker(shards) if s is not None]
        rank = wds.utils.pytorch_worker_info()[0]
        rng_for(cfg.seed, "shards", self.subset, epoch, rank, logical).shuffle(mine)
        shuffle = wds.shuffle(
            bufsize=cfg.shuffle_buffer,
            initial=cfg.shuffle_buffer,
            seed=derive_seed(cfg.seed, "shuffle", self.subset, epoch, rank, logical),
        )
        pairs = shuffle(self._pairs(wds.tarfile_samples(mine), epoch, found))
        pending = islice(pairs, skip * cfg.batch_size, None)
        index = skip
        while chunk := list(islice(pending, cfg.batch_size)):
            items = [quad_arrays(e, q, cfg.resolution, cfg.region_weight) for e, q in chunk]
            groups = [q.record["group_id"] for _, q in chunk]
            views = [(e.record["view"], q.record["view"]) for e, q in chunk]
            yield {**collate(items), "groups": groups, "views": views, "worker": logical, "epoch": epoch, "batch": index}
            index += 1

    def _pairs(self, samples: Iterable[dict], epoch: int, found: list[int]) -> Iterator[tuple[View, View]]:
        cfg = self.config
        single = 0
        for views in group_views(samples):
            if is_held_out(views[0].record["group_id"], cfg.seed, cfg.holdout_fraction):
                continue
            pairs = training_pairs(views, cfg.seed, epoch)
            single += not pairs
            found[0] += len(pairs)
            yield from pairs
        if single:
            log.warning("%s epoch %d: %d edit(s) with a single view form no quadruple", self.subset, epoch, single)


def training_loader(urls: list[str], subset: str, config: TrainConfig, start: StreamPosition) -> DataLoader:
    """A DataLoader over :class:`QuadStream` with ``config.num_workers`` workers (0: in-process).
    It draws its worker seeds from its own generator, never from the global torch RNG.

    Workers are forked (torch runs each on one thread). OpenCV's thread pool does not survive
    a fork: iterate with ``cv2.setNumThreads(1)`` in effect, as :func:`~pipeline.training.loop.train`
    does, or a worker may hang in OpenCV."""
    workers = config.num_workers
    return DataLoader(
        QuadStream(urls, subset, config, start),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        generator=torch.Generator().manual_seed(derive_seed(config.seed, "loader", subset)),
    )


def heldout_set(urls: list[str], config: TrainConfig) -> dict[str, torch.Tensor] | None:
    """Up to ``eval_quads`` held-out quadruples (:func:`evaluation_pairs`), read in index
    order in this process, as one collated batch; None if the shards hold none."""
    items = []
    for views in group_views(wds.tarfile_samples([{"url": u} for u in urls])):
        if not is_held_out(views[0].record["group_id"], config.seed, config.holdout_fraction):
            continue
        for exemplar, query in evaluation_pairs(views):
            items.append(quad_arrays(exemplar, query, config.resolution, config.region_weight))
            if len(items) == config.eval_quads:
                return collate(items)
    return collate(items) if items else None
