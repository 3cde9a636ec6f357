"""Planning a subset's shards: which edits of which photos each shard holds.

A shard holds a fixed number of samples: ``samples_per_shard`` (from ``output.shard_target_bytes``
and the recipe's nominal pair size), rounded down to a multiple of every view count in play, so
every full shard holds whole edits and the same number of samples. Edits of one
person come in *runs* of ``output.edits_per_run`` consecutive edits (one photo decode each);
runs of all persons are interleaved round-robin (run 0 of every person, then run 1, ...), so
a shard mixes many photos while the views of one edit stay consecutive. Edits with different
view counts (professional combo families) go to different shards, so every shard's sample
count is a whole number of edits.

Growth: every planning pass is a *generation* (``manifests/plan/subset=<s>/gen-<g>.parquet``)
covering only photos no earlier generation planned; its shards are numbered after the last
existing shard. Adding photos therefore appends shards and never rewrites existing ones.
Photos a recipe cannot edit get reject rows (``manifests/rejects/plan-<subset>-<g>.parquet``)
and count as planned. Only the last shard of each generation (per view count) may be short,
plus any edit slot whose attempts all fail.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from detectors.records import PortraitDetections
from manifests.parquet import encode_rows, read_part
from manifests.schema import DETECTIONS_DIR, PLAN_DIR, PLAN_SCHEMA, REJECTS_SCHEMA, plan_path, rejects_part_path
from manifests.storage import Store
from pipeline.detect_stage import part_index
from pipeline.recipes import Recipe

#: ``stage`` value of planning reject rows.
PLAN_STAGE = "plan"


@dataclass(frozen=True)
class Run:
    """Edits [edit_start, edit_stop) of person ``person_index`` of one photo, ``views`` views each."""

    source_id: str
    path: str
    detections_part: int
    person_index: int
    edit_start: int
    edit_stop: int
    views: int

    @property
    def samples(self) -> int:
        return (self.edit_stop - self.edit_start) * self.views


@dataclass(frozen=True)
class ShardTask:
    """Shard ``index`` of ``subset``: its runs in sample order (``planned`` samples)."""

    subset: str
    index: int
    runs: tuple[Run, ...]

    @property
    def planned(self) -> int:
        return sum(run.samples for run in self.runs)


def samples_per_shard(target_bytes: int, bytes_per_pixel: float, nominal_pixels: int) -> int:
    """Samples in a shard of about ``target_bytes`` (two images per sample)."""
    return max(1, int(target_bytes // (2 * bytes_per_pixel * nominal_pixels)))


def load_plan(store: Store, subset: str) -> tuple[list[ShardTask], set[str], int]:
    """Existing shards of ``subset`` (by index), the photos already planned, next generation."""
    runs: dict[int, list[Run]] = defaultdict(list)
    planned: set[str] = set()
    generation = 0
    for rel in store.list(f"{PLAN_DIR}/subset={subset}", ".parquet"):
        generation = max(generation, int(rel.rsplit("-", 1)[-1].removesuffix(".parquet")) + 1)
        for row in read_part(store, rel, PLAN_SCHEMA).to_pylist():
            runs[row["shard_index"]].append(Run(
                row["source_id"], row["path"], row["detections_part"], row["person_index"],
                row["edit_start"], row["edit_stop"], row["views"],
            ))  # fmt: skip
            planned.add(row["source_id"])
    for g in range(generation):
        rel = rejects_part_path(f"plan-{subset}", g)
        if store.exists(rel):
            planned.update(store.read_table(rel, columns=["source_id"]).column(0).to_pylist())
    tasks = [ShardTask(subset, index, tuple(runs[index])) for index in sorted(runs)]
    return tasks, planned, generation


def iter_detections(store: Store) -> Iterator[tuple[int, PortraitDetections, str]]:
    """(detections part, record, source_id) of every detected photo, part by part."""
    for rel in store.list(DETECTIONS_DIR, ".parquet"):
        index = part_index(rel)
        for row in store.read_table(rel).to_pylist():
            yield index, PortraitDetections.from_row(row), row["source_id"]


def plan_generation(
    store: Store,
    recipe: Recipe,
    paths: dict[str, str],
    *,
    samples_per_shard: int,
    edits_per_run: int,
) -> list[ShardTask]:
    """Plan every detected photo of ``paths`` (source id -> path) that no generation has
    planned yet; commit the new generation; return all shards of the subset (old and new)."""
    subset = recipe.subset
    existing, planned, generation = load_plan(store, subset)
    persons: list[list[Run]] = []
    rejects: list[dict] = []
    for part, detections, source_id in iter_detections(store):
        if source_id in planned or source_id not in paths:
            continue
        targets, skipped = recipe.targets(source_id, detections)
        path = paths[source_id]
        for skip in skipped:
            rejects.append(_reject(source_id, path, subset, skip.person_index, skip.reason, skip.detail))
        if not targets:
            if not skipped:
                rejects.append(_reject(source_id, path, subset, None, "no_target", "no person the recipe can edit"))
            continue
        for target in targets:
            persons.append(list(_runs(source_id, path, part, target, edits_per_run)))
    if not persons and not rejects:
        return existing
    next_index = max((t.index for t in existing), default=-1) + 1
    new = _pack(subset, _interleave(persons), samples_per_shard, next_index)
    plan_rows = [
        {"shard_index": task.index, "source_id": r.source_id, "path": r.path, "detections_part": r.detections_part,
         "person_index": r.person_index, "edit_start": r.edit_start, "edit_stop": r.edit_stop, "views": r.views}
        for task in new for r in task.runs
    ]  # fmt: skip
    store.write_bytes(rejects_part_path(f"plan-{subset}", generation), encode_rows(rejects, REJECTS_SCHEMA))
    store.write_bytes(plan_path(subset, generation), encode_rows(plan_rows, PLAN_SCHEMA))
    return existing + new


def _runs(source_id: str, path: str, part: int, target, edits_per_run: int) -> Iterator[Run]:
    start = 0
    for family in target.families:
        for first in range(start, start + family.count, edits_per_run):
            stop = min(first + edits_per_run, start + family.count)
            yield Run(source_id, path, part, target.person_index, first, stop, family.views)
        start += family.count


def _interleave(persons: list[list[Run]]) -> list[Run]:
    """Run 0 of every person (in photo id order), then run 1, ...."""
    order = sorted(persons, key=lambda runs: (runs[0].source_id, runs[0].person_index))
    out = []
    for depth in range(max((len(r) for r in order), default=0)):
        out.extend(runs[depth] for runs in order if depth < len(runs))
    return out


def _pack(subset: str, runs: list[Run], samples_per_shard: int, first_index: int) -> list[ShardTask]:
    """Cut the run stream into shards of whole edits, one stream per view count; every full
    shard holds the same number of samples (``samples_per_shard`` rounded down to a multiple of
    every view count present)."""
    by_views: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_views[run.views].append(run)
    step = math.lcm(*by_views) if by_views else 1
    samples_per_shard = max(step, samples_per_shard // step * step)
    tasks = []
    index = first_index
    for views in sorted(by_views):
        capacity = samples_per_shard // views  # edits per shard
        current: list[Run] = []
        filled = 0
        for run in by_views[views]:
            start = run.edit_start
            while start < run.edit_stop:
                take = min(run.edit_stop - start, capacity - filled)
                current.append(Run(run.source_id, run.path, run.detections_part, run.person_index, start, start + take, views))
                filled += take
                start += take
                if filled == capacity:
                    tasks.append(ShardTask(subset, index, tuple(current)))
                    index, current, filled = index + 1, [], 0
        if current:
            tasks.append(ShardTask(subset, index, tuple(current)))
            index += 1
    return tasks


def _reject(source_id: str, path: str, subset: str, person: int | None, reason: str, detail: str) -> dict:
    return {
        "source_id": source_id, "path": path, "stage": PLAN_STAGE, "reason": reason, "detail": detail,
        "subset": subset, "person_index": person, "edit_index": None, "view": None, "attempt": None,
        "measurements": None,
    }  # fmt: skip
