"""Planning: fixed sample counts of whole edits, photos mixed in every shard, growth by appending."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from manifests.detections import DETECTIONS_SCHEMA
from manifests.parquet import encode_rows
from manifests.schema import detections_part_path
from manifests.storage import Store
from pipeline.plan import Run, _interleave, _pack, load_plan, plan_generation, samples_per_shard
from pipeline.recipes import EditFamily, Target, TargetReject


class CountingRecipe:
    """Plans ``edits`` edits (views 2, then views 4 for the second half) per detected face."""

    subset = "simulated"
    nominal_pixels = 1000

    def __init__(self, edits: int) -> None:
        self.edits = edits

    def targets(self, source_id: str, detections):
        if not detections.faces:
            return [], [TargetReject(None, "no_face", "none")]
        half = self.edits // 2
        families = (EditFamily(2, half), EditFamily(4, self.edits - half))
        return [Target(f.person_index, i, families) for i, f in enumerate(detections.faces)], []


def _runs(photos: int, runs_per_photo: int, edits_per_run: int = 3, views: int = 2) -> list[list[Run]]:
    return [
        [Run(f"{p:016x}", f"/p/{p}", 0, 0, r * edits_per_run, (r + 1) * edits_per_run, views) for r in range(runs_per_photo)]
        for p in range(photos)
    ]


def test_interleaving_mixes_photos_and_keeps_each_persons_order() -> None:
    order = _interleave(_runs(photos=5, runs_per_photo=3))
    assert [r.source_id for r in order[:5]] == [f"{p:016x}" for p in range(5)]
    for photo in range(5):
        mine = [r.edit_start for r in order if r.source_id == f"{photo:016x}"]
        assert mine == sorted(mine)


def test_every_shard_but_the_last_holds_exactly_the_target_count() -> None:
    runs = _interleave(_runs(photos=7, runs_per_photo=4)) + _interleave(_runs(photos=3, runs_per_photo=2, views=4))
    shards = _pack("simulated", runs, samples_per_shard=10, first_index=5)
    assert [s.index for s in shards] == list(range(5, 5 + len(shards)))
    by_views: dict[int, list[int]] = {}
    for shard in shards:
        (views,) = {r.views for r in shard.runs}  # one view count per shard
        by_views.setdefault(views, []).append(shard.planned)
    # 10 samples rounded down to a multiple of 2 and 4: every full shard holds 8 samples.
    assert by_views[2][:-1] == [8] * (len(by_views[2]) - 1) and 0 < by_views[2][-1] <= 8
    assert by_views[4][:-1] == [8] * (len(by_views[4]) - 1)
    assert sum(by_views[2]) == 7 * 4 * 3 * 2 and sum(by_views[4]) == 3 * 2 * 3 * 4
    edits = Counter((r.source_id, r.views, e) for s in shards for r in s.runs for e in range(r.edit_start, r.edit_stop))
    assert set(edits.values()) == {1}  # every edit exactly once, never split across shards


def test_distinct_photos_per_shard_follow_the_run_length() -> None:
    runs = _interleave(_runs(photos=40, runs_per_photo=10, edits_per_run=2, views=8))
    shards = _pack("simulated", runs, samples_per_shard=320, first_index=0)  # 40 edits per shard
    assert all(len({r.source_id for r in s.runs}) == 20 for s in shards)


def test_shard_size_follows_the_byte_target() -> None:
    assert samples_per_shard(1_000_000_000, 0.45, 2_200_000) == 505
    assert samples_per_shard(1_000, 0.45, 2_200_000) == 1


def _store_with_detections(tmp_path: Path, detected: dict, names: list[str], part: int) -> Store:
    store = Store(str(tmp_path / "root"))
    rows = [{"source_id": detected[n][2], **detected[n][1].to_row()} for n in names]
    store.write_bytes(detections_part_path(part), encode_rows(rows, DETECTIONS_SCHEMA))
    return store


def test_growth_appends_a_generation_and_never_replans(tmp_path: Path, detected: dict) -> None:
    store = _store_with_detections(tmp_path, detected, ["astronaut"], 0)
    paths = {detected[n][2]: n for n in detected}
    recipe = CountingRecipe(edits=6)
    first = plan_generation(store, recipe, paths, samples_per_shard=4, edits_per_run=2)
    assert [t.index for t in first] == [0, 1, 2, 3, 4] and load_plan(store, "simulated")[2] == 1
    assert plan_generation(store, recipe, paths, samples_per_shard=4, edits_per_run=2) == first
    _store_with_detections(tmp_path, detected, ["zidane", "bus"], 1)
    grown = plan_generation(store, recipe, paths, samples_per_shard=4, edits_per_run=2)
    assert grown[: len(first)] == first
    assert [t.index for t in grown[len(first):]] == list(range(5, len(grown)))
    assert {r.source_id for t in grown[len(first):] for r in t.runs} == {detected["zidane"][2], detected["bus"][2]}
    tasks, planned, generation = load_plan(store, "simulated")
    assert tasks == grown and generation == 2 and planned == set(paths)


@pytest.mark.parametrize("edits_per_run", [1, 4])
def test_runs_cover_every_edit_of_every_family(tmp_path: Path, detected: dict, edits_per_run: int) -> None:
    store = _store_with_detections(tmp_path, detected, ["astronaut", "zidane"], 0)
    tasks = plan_generation(store, CountingRecipe(edits=7), {detected[n][2]: n for n in detected},
                            samples_per_shard=12, edits_per_run=edits_per_run)  # fmt: skip
    views = {}
    for task in tasks:
        for run in task.runs:
            assert run.edit_stop - run.edit_start <= edits_per_run
            for edit in range(run.edit_start, run.edit_stop):
                assert (run.source_id, run.person_index, edit) not in views
                views[(run.source_id, run.person_index, edit)] = run.views
    persons = {(s, p) for s, p, _ in views}
    for person in persons:
        assert [views[(*person, e)] for e in range(7)] == [2, 2, 2, 4, 4, 4, 4]
