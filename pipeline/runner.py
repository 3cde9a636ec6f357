"""The shard lifecycle, once for every backend and every subset.

:class:`ShardStage` runs one :class:`~pipeline.plan.ShardTask` on a worker:

1. skip it if its marker exists and every file matches the marker (a resumed build);
2. otherwise drop a stale marker, then stream the shard: for each run decode the photo
   (once per run), and for each edit slot make the edit (up to the recipe's attempts), draw
   its views and write every view into the tar *as it is encoded*, so a worker holds one
   edit at a time whatever the number of pairs;
3. commit the pairs part, the pair_ops part and the rejects part, then the marker, which
   records the size and sha256 of every file as written.

Nothing about one photo stops a shard: decode failures, a photo changed since ingest, a
timeout or an unexpected exception become reject rows for the edits they hit.
"""

from __future__ import annotations

import platform
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from detectors.records import PortraitDetections
from manifests.digests import array_digest
from manifests.markers import is_complete, read_marker, write_marker
from manifests.parquet import encode_rows
from manifests.schema import (
    PAIR_OPS_SCHEMA,
    PAIRS_SCHEMA,
    REJECTS_SCHEMA,
    detections_part_path,
    marker_path,
    pair_ops_part_path,
    pairs_part_path,
    rejects_part_path,
    shard_tar_path,
)
from manifests.shards import ShardTarWriter
from manifests.storage import Store
from pipeline.imageio import ImageRejected
from pipeline.ingest import SourceChanged, read_source
from pipeline.plan import Run, ShardTask
from pipeline.recipes import Edit, EditRejected, Recipe, Target, recipe_for
from pipeline.qa import PairMeasurer, plain_measures
from pipeline.regions import RegionMap, region_counts, region_index, region_map
from pipeline.render import PairContext, max_displacement, render_view, sample_views, warp_view, with_digests
from pipeline.seeding import derive_seed, split_of
from pipeline.stage import Resources
from pipeline.timeouts import WorkTimeout, time_limit

#: ``stage`` of the reject rows a shard writes.
SYNTHESIS_STAGE = "synthesis"
#: Photos whose targets a worker keeps (each a few hundred KB with the reference recipe).
TARGETS_KEPT = 16


@dataclass(frozen=True)
class ShardSummary:
    """Small result a shard task returns to the driver."""

    shard: str
    skipped: bool
    pairs: int
    planned: int
    rejects: int
    seconds: float


def code_versions() -> dict[str, str]:
    """Versions that can change the bytes of a pair."""
    import cv2
    import PIL
    import pyarrow
    import webdataset

    from manifests.schema import SCHEMA_VERSION
    from pipeline import __version__
    from pipeline.render import RECORD_VERSION

    return {
        "mirrorset": __version__,
        "schema": str(SCHEMA_VERSION),
        "record": str(RECORD_VERSION),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
        "pyarrow": pyarrow.__version__,
        "webdataset": webdataset.__version__,
        "python": platform.python_version(),
    }


def shard_is_done(store: Store, subset: str, index: int) -> bool:
    """The marker exists and every file it records matches in size."""
    return is_complete(store, subset, index)


class ShardStage:
    """Stage running the shard lifecycle (module docstring) for one subset's recipe."""

    name = "shards"

    def __init__(self, store: Store, config: Any, subset: str, resources: Resources = Resources()) -> None:
        self.store = store
        self.config = config
        self.subset = subset
        self.resources = resources
        self._recipe: Recipe | None = None
        self._measurer: PairMeasurer | None = None
        self._versions: dict[str, str] = {}
        self._targets: OrderedDict[tuple[str, int], list[Target]] = OrderedDict()
        self._blas_limit: threadpool_limits | None = None

    def setup(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # one core per worker; also keeps results independent of core count
        self._recipe = recipe_for(self.subset, self.config)
        self._versions = code_versions()
        if self.config.qa.enabled:
            self._measurer = PairMeasurer(self.config.qa, self.config.output.jpeg_quality)
            self._measurer.load()
        # Last, once every native library is loaded: numpy's and scipy's OpenBLAS start a thread
        # per core, and those spin (sched_yield) on other cores after each call, so a worker
        # would take about 1.6 cores, crowding the workers beside it. Undone by teardown.
        self._blas_limit = threadpool_limits(limits=1, user_api="blas")

    def process_batch(self, items: list[ShardTask]) -> list[ShardSummary]:
        return [self.run_shard(task) for task in items]

    def teardown(self) -> None:
        if self._measurer is not None:
            self._measurer.close()
            self._measurer = None
        self._targets.clear()
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()
            self._blas_limit = None

    def run_shard(self, task: ShardTask) -> ShardSummary:
        from manifests.schema import shard_name

        name = shard_name(task.subset, task.index)
        if shard_is_done(self.store, task.subset, task.index):
            marker = read_marker(self.store, task.subset, task.index) or {}
            counts = marker.get("counts", {})
            return ShardSummary(name, True, counts.get("pairs", 0), counts.get("planned", 0), counts.get("rejects", 0), 0.0)
        if self._recipe is None:
            raise RuntimeError("ShardStage.run_shard called before setup()")
        start = time.perf_counter()
        self.store.delete(marker_path(task.subset, task.index))  # a marker never outlives a rewrite
        writer = _ShardWriter(self.store, self.config, self._recipe, name, self._versions, self._measurer, self._targets)
        with self.store.writer(shard_tar_path(task.subset, task.index)) as stream, ShardTarWriter(stream) as tar:
            for run in task.runs:
                writer.write_run(tar, run)
        files = {"tar": _written(shard_tar_path(task.subset, task.index), stream)}
        files["pairs"] = self.store.write_bytes(pairs_part_path(task.subset, task.index), encode_rows(writer.rows, PAIRS_SCHEMA))
        files["pair_ops"] = self.store.write_bytes(
            pair_ops_part_path(task.subset, task.index), encode_rows(writer.op_rows, PAIR_OPS_SCHEMA)
        )
        files["rejects"] = self.store.write_bytes(
            rejects_part_path(task.subset, task.index), encode_rows(writer.rejects, REJECTS_SCHEMA)
        )
        seconds = time.perf_counter() - start
        counts = {"pairs": len(writer.rows), "planned": task.planned, "rejects": len(writer.rejects)}
        write_marker(self.store, task.subset, task.index, files, counts)  # deterministic: no timings
        return ShardSummary(name, False, len(writer.rows), task.planned, len(writer.rejects), seconds)


def _written(rel: str, stream: Any):
    from manifests.storage import Written

    return Written(rel, stream.size, stream.sha256)


class _ShardWriter:
    """Accumulates one shard's rows while its samples stream into the tar."""

    def __init__(self, store: Store, config: Any, recipe: Recipe, shard: str, versions: dict[str, str],
                 measurer: PairMeasurer | None, targets: OrderedDict[tuple[str, int], list[Target]]) -> None:  # fmt: skip
        self.store = store
        self.targets = targets
        self.measurer = measurer
        self.config = config
        self.recipe = recipe
        self.shard = shard
        self.versions = versions
        self.rows: list[dict[str, Any]] = []
        self.op_rows: list[dict[str, Any]] = []
        self.rejects: list[dict[str, Any]] = []
        self._photo: tuple[str, np.ndarray] | None = None
        self._detections: dict[int, dict[str, PortraitDetections]] = {}
        self._region_counts: tuple[bytes, np.ndarray] | None = None

    def write_run(self, tar: ShardTarWriter, run: Run) -> None:
        subset = self.recipe.subset
        try:
            detections = self._detections_of(run)
            photo = self._photo_of(run)
            target = self._target(run, detections)
        except Exception as exc:  # one photo never stops a shard: recorded for every edit of the run
            code = _reason(exc)
            for edit_index in range(run.edit_start, run.edit_stop):
                self._reject(run, edit_index, None, None, code, f"{type(exc).__name__}: {exc}")
            return
        context_base = dict(
            subset=subset, source_id=run.source_id, path=run.path, photo_size=(photo.shape[1], photo.shape[0]),
            person_index=run.person_index, face_index=target.face_index, shard=self.shard,
            split=split_of(self.config.seed, run.source_id, self.config.splits.val, self.config.splits.test),
            global_seed=self.config.seed, image_format=self.config.output.image_format,
            jpeg_quality=self.config.output.jpeg_quality,
            detector_models=tuple({"name": m.name, "sha256": m.sha256} for m in detections.models),
            versions=self.versions,
            identity_model=None if self.measurer is None else self.measurer.identity_model,
        )  # fmt: skip
        for edit_index in range(run.edit_start, run.edit_stop):
            made = self._make_edit(run, photo, detections, target, edit_index)
            if made is None:
                continue
            edit, views, view_seeds, attempt, edit_seed, measures = made
            regions = self._regions_of(edit)
            context = PairContext(**context_base, edit_index=edit_index, attempt=attempt, edit_seed=edit_seed)
            for view, (transform, view_seed) in enumerate(zip(views, view_seeds)):
                shown = measures["max_disp_base_px"] * transform.scale
                if shown < self.recipe.min_disp_px:
                    self._reject(run, edit_index, view, attempt, "edit_too_small",
                                 f"largest displacement {shown:.2f} px in the view < min_disp_px {self.recipe.min_disp_px}")  # fmt: skip
                    continue
                pixels = warp_view(edit, transform, regions, lossy=context.image_format == "jpeg")
                view_measures = measures
                if self.measurer is not None:
                    view_measures, failed = self.measurer.view(edit, pixels, measures)
                    if failed:
                        self._reject(run, edit_index, view, attempt, failed[0], "failed QA gate(s) " + ", ".join(failed),
                                     plain_measures(view_measures))  # fmt: skip
                        continue
                pair = render_view(edit, pixels, regions, view, view_seed, context, view_measures)
                self.rows.append(with_digests(pair.row, tar.write(pair.sample)))
                self.op_rows.extend(pair.op_rows)

    def _regions_of(self, edit: Edit) -> RegionMap:
        """The edit's region map. Region sizes are counted once per frame and landmarks and
        kept for the next edit: every edit of a professional person shares the whole-photo
        frame, and counting an 8 MP index costs about 25 ms where drawing it costs 2."""
        landmarks = (edit.face, edit.pose, edit.pose_visible)
        index = region_index(edit.before.shape[:2], *landmarks)
        key = array_digest(edit.before.shape, *landmarks)
        if self._region_counts is None or self._region_counts[0] != key:
            self._region_counts = (key, region_counts(index))
        return region_map(edit.field, index, edit.face, edit.pose, self._region_counts[1])

    def _make_edit(self, run: Run, photo: np.ndarray, detections: PortraitDetections, target: Target, edit_index: int):
        """(edit, views, view seeds, attempt, edit seed, per-edit measures) of the first attempt
        that succeeds (made, QA-gated, views drawn), or None."""
        subset = self.recipe.subset
        views = target.views_of(edit_index)
        draws = self.recipe.draws(target, edit_index)
        fixed: tuple[Edit, dict[str, Any]] | None = None  # a made edit that ignores the draw, kept across attempts
        for attempt in range(self.recipe.max_attempts):
            edit_seed = derive_seed(self.config.seed, "edit", subset, run.source_id, run.person_index, edit_index, attempt)
            view_seeds = [
                derive_seed(self.config.seed, "view", subset, run.source_id, run.person_index, edit_index, attempt, v)
                for v in range(views)
            ]
            try:
                with time_limit(self.config.cluster.photo_timeout_s):
                    if fixed is None:
                        rng = np.random.Generator(np.random.PCG64(edit_seed))
                        edit, measures = self._measured_edit(run, photo, detections, target, edit_index, rng)
                        if not draws:
                            fixed = (edit, measures)
                    else:
                        edit, measures = fixed
                    transforms = sample_views(edit, view_seeds)
                return edit, transforms, view_seeds, attempt, edit_seed, measures
            except EditRejected as exc:
                self._reject(run, edit_index, None, attempt, exc.code, exc.detail, exc.measurements)
                if fixed is None and not draws:
                    return None  # the edit itself failed: it ignores the draw, so it would fail again
            except WorkTimeout as exc:
                self._reject(run, edit_index, None, attempt, "timeout", str(exc))
            except (Exception, MemoryError) as exc:  # one edit never stops a shard: recorded, then the next attempt
                self._reject(run, edit_index, None, attempt, "internal_error", f"{type(exc).__name__}: {exc}")
                if fixed is None and not draws:
                    return None  # a fixed edit would fail the same way again
        return None

    def _measured_edit(self, run: Run, photo: np.ndarray, detections: PortraitDetections, target: Target,
                       edit_index: int, rng: np.random.Generator) -> tuple[Edit, dict[str, Any]]:  # fmt: skip
        """The recipe's edit and its per-edit measures (QA, or the fold check without QA)."""
        edit: Edit = self.recipe.make_edit(photo, detections, target, edit_index, rng)
        measures: dict[str, Any] = {"max_disp_base_px": max_displacement(edit)}
        if self.measurer is not None:
            frame = (run.source_id, run.person_index, edit.frame.rect, edit.frame.size)
            measures.update(self.measurer.edit(frame, edit))
        else:
            jacobian = edit.field.min_jacobian()
            measures.update(fold_count=int(jacobian <= 0), min_jacobian=jacobian)
        return edit, measures

    def _detections_of(self, run: Run) -> PortraitDetections:
        part = self._detections.get(run.detections_part)
        if part is None:
            table = self.store.read_table(detections_part_path(run.detections_part))
            part = {row["source_id"]: PortraitDetections.from_row(row) for row in table.to_pylist()}
            self._detections = {run.detections_part: part}  # one part at a time
        if run.source_id not in part:
            raise ValueError(f"detections part {run.detections_part} has no row for {run.source_id}")
        return part[run.source_id]

    def _photo_of(self, run: Run) -> np.ndarray:
        if self._photo is None or self._photo[0] != run.source_id:
            self._photo = None  # release the previous photo before decoding the next
            image = read_source(run.path, limits=self.config.ingest.limits, expected_id=run.source_id)
            self._photo = (run.source_id, image)
        return self._photo[1]

    def _target(self, run: Run, detections: PortraitDetections) -> Target:
        """The run's person's target. A photo's targets (a pure function of its id, detections
        and the config) are planned once per worker and kept for its next runs, up to
        TARGETS_KEPT photos: a professional photo's take 120 ms (every body op tried on every
        person), and its runs come back in many shards."""
        key = (run.source_id, run.detections_part)
        targets = self.targets.get(key)
        if targets is None:
            targets = self.targets[key] = self.recipe.targets(run.source_id, detections)[0]
            if len(self.targets) > TARGETS_KEPT:
                self.targets.popitem(last=False)
        else:
            self.targets.move_to_end(key)
        for target in targets:
            if target.person_index == run.person_index:
                return target
        raise ValueError(f"{run.source_id}: the recipe no longer plans person {run.person_index}")

    def _reject(self, run: Run, edit_index: int, view: int | None, attempt: int | None, reason: str, detail: str,
                measurements: dict[str, float] | None = None) -> None:  # fmt: skip
        self.rejects.append({
            "source_id": run.source_id, "path": run.path, "stage": SYNTHESIS_STAGE, "reason": reason, "detail": detail,
            "subset": self.recipe.subset, "person_index": run.person_index, "edit_index": edit_index, "view": view,
            "attempt": attempt, "measurements": measurements,
        })  # fmt: skip


def _reason(exc: Exception) -> str:
    if isinstance(exc, (ImageRejected, EditRejected)):
        return exc.code
    if isinstance(exc, SourceChanged):
        return "changed_since_ingest"
    return "internal_error"
