"""The shard lifecycle on a real photo: commit and skip, faults contained, memory flat in pairs."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from manifests.detections import DETECTIONS_SCHEMA
from manifests.markers import read_marker
from manifests.parquet import encode_rows
from manifests.schema import detections_part_path
from manifests.storage import Store
from pipeline import fidelity, runner
from pipeline.config import MirrorsetConfig, with_overrides
from pipeline.plan import Run, ShardTask
from pipeline.runner import ShardStage, shard_is_done
from pipeline.sample_corpus import sample_paths

ASTRONAUT = next(p.path for p in sample_paths() if p.name == "astronaut")


@pytest.fixture()
def store(tmp_path: Path, detected: dict) -> Store:
    store = Store(str(tmp_path / "root"))
    _, detections, source_id = detected["astronaut"]
    store.write_bytes(detections_part_path(0), encode_rows([{"source_id": source_id, **detections.to_row()}], DETECTIONS_SCHEMA))
    return store


def _task(detected: dict, edits: int, views: int) -> ShardTask:
    source_id = detected["astronaut"][2]
    return ShardTask("simulated", 0, (Run(source_id, ASTRONAUT, 0, 0, 0, edits, views),))


def _stage(store: Store, views: int, **settings) -> ShardStage:
    config = with_overrides(MirrorsetConfig(), {"simulated.views": views, "simulated.edits_per_face": 40,
                                                "cluster.num_workers": 1, **settings})  # fmt: skip
    stage = ShardStage(store, config, "simulated")
    stage.setup()
    return stage


def _visible_files(store: Store) -> list[str]:
    return sorted(p.relative_to(store.root).as_posix() for p in Path(store.root).rglob("*") if p.is_file() and not p.name.startswith("."))


def test_a_worker_runs_one_blas_thread_however_many_the_process_had(store: Store) -> None:
    # Idle OpenBLAS threads spin on other cores; measured: a 1-worker professional build used
    # 1.6 cores of CPU time without the limit.
    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    with threadpool_limits(limits=4, user_api="blas"):
        assert max(blas_threads()) > 1  # numpy's OpenBLAS (another loaded one is single-threaded)
        stage = _stage(store, views=1)
        try:
            assert blas_threads() == {1}
        finally:
            stage.teardown()
        assert max(blas_threads()) > 1  # teardown leaves the process as it found it


def test_a_photo_s_targets_are_planned_once_per_worker(store: Store, detected: dict, monkeypatch) -> None:
    stage = _stage(store, views=1)
    planned, targets = [], stage._recipe.targets

    def counted(source_id, detections):
        planned.append(source_id)
        return targets(source_id, detections)

    monkeypatch.setattr(stage._recipe, "targets", counted)
    source_id = detected["astronaut"][2]
    runs = tuple(Run(source_id, ASTRONAUT, 0, 0, start, start + 1, 1) for start in range(3))
    try:
        first = stage.run_shard(ShardTask("simulated", 0, runs[:2]))
        second = stage.run_shard(ShardTask("simulated", 1, runs[2:]))
    finally:
        stage.teardown()
    assert (first.pairs, second.pairs) == (2, 1)
    assert planned == [source_id]  # three runs in two shards, one plan


def test_commit_then_skip(store: Store, detected: dict) -> None:
    stage = _stage(store, views=2)
    first = stage.run_shard(_task(detected, edits=2, views=2))
    assert (first.pairs, first.planned, first.skipped) == (4, 4, False)
    marker = read_marker(store, "simulated", 0)
    assert set(marker["files"]) == {"tar", "pairs", "pair_ops", "rejects"} and marker["counts"]["pairs"] == 4
    assert shard_is_done(store, "simulated", 0)
    again = stage.run_shard(_task(detected, edits=2, views=2))
    assert again.skipped and again.pairs == 4


def test_an_exception_in_one_edit_is_recorded_and_the_shard_goes_on(store: Store, detected: dict, monkeypatch) -> None:
    stage = _stage(store, views=2)
    recipe = stage._recipe
    make_edit = recipe.make_edit

    def flaky(photo, detections, target, edit_index, rng):
        if edit_index == 1:
            raise MemoryError("simulated allocation failure")
        return make_edit(photo, detections, target, edit_index, rng)

    monkeypatch.setattr(recipe, "make_edit", flaky)
    summary = stage.run_shard(_task(detected, edits=3, views=2))
    assert summary.pairs == 4 and summary.planned == 6
    rejects = pd.read_parquet(Path(store.root) / "manifests" / "rejects")
    assert list(rejects.reason) == ["internal_error"] * 3 and set(rejects.edit_index) == {1}
    assert list(rejects.attempt) == [0, 1, 2] and rejects.detail.str.contains("MemoryError").all()


def test_a_photo_that_changed_since_ingest_rejects_its_edits(store: Store, detected: dict, tmp_path: Path) -> None:
    other = tmp_path / "changed.png"
    other.write_bytes(Path(ASTRONAUT).read_bytes() + b"\0")
    task = ShardTask("simulated", 0, (Run(detected["astronaut"][2], str(other), 0, 0, 0, 2, 2),))
    summary = _stage(store, views=2).run_shard(task)
    assert summary.pairs == 0
    rejects = pd.read_parquet(Path(store.root) / "manifests" / "rejects")
    assert list(rejects.reason) == ["changed_since_ingest"] * 2


def test_a_failed_shard_leaves_no_visible_file_and_no_marker(store: Store, detected: dict, monkeypatch) -> None:
    calls = {"n": 0}
    render = runner.render_view

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return render(*args, **kwargs)

    monkeypatch.setattr(runner, "render_view", failing)
    before = _visible_files(store)
    with pytest.raises(OSError, match="disk full"):
        _stage(store, views=2).run_shard(_task(detected, edits=2, views=2))
    assert _visible_files(store) == before
    assert read_marker(store, "simulated", 0) is None


def test_memory_stays_flat_in_the_number_of_pairs(store: Store, detected: dict) -> None:
    """Views stream into the tar: 30 views of an edit peak no higher than 3 views do (within 25 %)."""
    peaks = {}
    for views in (3, 30):
        stage = _stage(store, views=views)
        tracemalloc.start()
        stage.run_shard(ShardTask("simulated", views, _task(detected, edits=1, views=views).runs))
        peaks[views] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[30] < 1.25 * peaks[3], peaks


def test_a_simulated_ladder_rung_failing_qa_is_not_redone_but_a_random_chain_is(store: Store, detected: dict,
                                                                                  monkeypatch) -> None:  # fmt: skip
    """A rung's op and strength are fixed (it would fail identically: one attempt); a random
    chain draws afresh on each of its max_attempts."""
    stage = _stage(store, views=2, **{"simulated.edits_per_face": 1, "simulated.ladders.strengths": [50],
                                      "qa.gates.min_identity_sim": 1.5})  # fmt: skip
    made = []
    make_edit = stage._recipe.make_edit
    monkeypatch.setattr(stage._recipe, "make_edit", lambda *a: made.append(a[3]) or make_edit(*a))
    summary = stage.run_shard(_task(detected, edits=2, views=2))
    assert (summary.pairs, summary.planned) == (0, 4) and made == [0, 0, 0, 1]
    rejects = pd.read_parquet(Path(store.root) / "manifests" / "rejects")
    assert list(zip(rejects.edit_index, rejects.attempt)) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert set(rejects.reason) == {"qa_identity"}


def _professional(store: Store, detected: dict, edits: int, views: int, **settings) -> tuple[ShardStage, ShardTask]:
    """A professional stage on astronaut's person 0 with eye_size at +-100 (two edits)."""
    config = with_overrides(MirrorsetConfig(), {
        "professional.min_pixels": 10_000, "professional.ops": ["eye_size"], "cluster.num_workers": 1,
        "professional.combos": [{"size": 1, "views": views, "max_edits": None}], **settings,
    })  # fmt: skip
    stage = ShardStage(store, config, "professional")
    stage.setup()
    run = Run(detected["astronaut"][2], ASTRONAUT, 0, 0, 0, edits, views)
    return stage, ShardTask("professional", 0, (run,))


def test_a_professional_edit_failing_qa_is_not_redone(store: Store, detected: dict, monkeypatch) -> None:
    """Its ops and strengths are fixed: one reject row (with the measurement), one make_edit."""
    stage, task = _professional(store, detected, edits=2, views=2, **{"qa.gates.min_identity_sim": 1.5})
    made = []
    make_edit = stage._recipe.make_edit
    monkeypatch.setattr(stage._recipe, "make_edit", lambda *a: made.append(a[3]) or make_edit(*a))
    summary = stage.run_shard(task)
    assert (summary.pairs, summary.planned) == (0, 4) and made == [0, 1]
    rejects = pd.read_parquet(Path(store.root) / "manifests" / "rejects")
    assert list(rejects.reason) == ["qa_identity"] * 2 and list(rejects.attempt) == [0, 0]
    assert all(0.9 < dict(m)["identity_sim"] <= 1.0 for m in rejects.measurements)


def test_a_professional_edit_that_crashes_is_recorded_once(store: Store, detected: dict, monkeypatch) -> None:
    """An unexpected error in a fixed edit would repeat identically: one internal_error row
    per edit, no second attempt, and the shard goes on."""
    stage, task = _professional(store, detected, edits=2, views=2)
    made = []

    def crashes(*args):
        made.append(args[3])
        raise ArithmeticError("forced")

    monkeypatch.setattr(stage._recipe, "make_edit", crashes)
    summary = stage.run_shard(task)
    assert (summary.pairs, summary.planned) == (0, 4) and made == [0, 1]
    rejects = pd.read_parquet(Path(store.root) / "manifests" / "rejects")
    assert list(rejects.reason) == ["internal_error"] * 2 and list(rejects.attempt) == [0, 0]
    assert set(rejects.detail) == {"ArithmeticError: forced"}


def test_a_failed_professional_view_draw_is_retried_on_the_same_edit(store: Store, detected: dict, monkeypatch) -> None:
    stage, task = _professional(store, detected, edits=1, views=2)
    made, draws = [], []
    make_edit = stage._recipe.make_edit
    monkeypatch.setattr(stage._recipe, "make_edit", lambda *a: made.append(a[3]) or make_edit(*a))
    sample_views = runner.sample_views

    def first_draw_fails(edit, seeds):
        draws.append(seeds)
        if len(draws) == 1:
            raise runner.EditRejected("no_admissible_view", "forced")
        return sample_views(edit, seeds)

    monkeypatch.setattr(runner, "sample_views", first_draw_fails)
    summary = stage.run_shard(task)
    assert summary.pairs == 2 and made == [0] and len(draws) == 2 and draws[0] != draws[1]
    rejects = pd.read_parquet(Path(store.root) / "manifests" / "rejects")
    assert list(rejects.reason) == ["no_admissible_view"] and list(rejects.attempt) == [0]


def test_an_edit_failing_a_cheap_gate_skips_the_face_models(store: Store, detected: dict, monkeypatch) -> None:
    """The Jacobian gate fails first: no landmark tracking, no embedding, and the reject row
    carries the measures taken (identity_sim absent)."""
    stage, task = _professional(store, detected, edits=2, views=2, **{"qa.gates.max_jacobian": 0.5})
    models = stage._measurer._models
    assert models.mesh is None  # the build loads no FaceMesh for QA
    calls = []
    monkeypatch.setattr(models.embedder, "embed", lambda *a: calls.append("embed"))
    monkeypatch.setattr(fidelity, "follow_landmarks", lambda *a: calls.append("follow"))
    summary = stage.run_shard(task)
    assert summary.pairs == 0 and calls == []
    rejects = pd.read_parquet(Path(store.root) / "manifests" / "rejects")
    assert list(rejects.reason) == ["qa_max_jacobian"] * 2
    for measured in rejects.measurements:
        assert dict(measured)["max_jacobian"] > 0.5 and "identity_sim" not in dict(measured)
