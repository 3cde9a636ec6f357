"""Per-pair QA on real photos: each measurement flags the fault it is meant to catch.

Edits and views are made by the build's own functions (pipeline.recipes); faults are
injected into the pair afterwards (a shifted view, a wrong matrix, a weaker edit than
planned, motion in a held feature, blur, change outside the mask), so no measurement is
checked against the code that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from detectors.gates import inter_ocular
from pipeline.alignment import align_face
from pipeline.config import MirrorsetConfig
from pipeline.fidelity import (
    GATE_CODES,
    QA_COLUMNS,
    EditQA,
    FidelityModels,
    QaGates,
    allowed_groups,
    failing_gates,
    measure_view,
    moving_landmarks,
    qa_percentiles,
    qa_row,
)
from pipeline.fidelity_geometry import align_err_px, collateral_ratio, follow_landmarks, motion_gain
from pipeline.fidelity_pixels import _mean_abs_diff, block_aligned, jpeg_round_trip, outside_change, roi_in_view
from pipeline.framing import photo_frame
from pipeline.recipes.common import paste
from pipeline.recipes.simulated import plan_in_crop
from warps.augment import SpatialTransform, apply_image, apply_mask, sample_transform
from warps.chain import OpCall
from warps.catalog import FEATURE_GROUPS
from warps.field import JacobianStats, WarpField
from warps.measure import DETAIL_MIN_PIXELS, detail_ratio
from warps.landmarks import Landmarks

CONFIG = MirrorsetConfig()


@dataclass(frozen=True, eq=False)
class Edit:
    """An edit made the way the simulated recipe makes it: ``after``, region ``mask``, ``field``."""

    after: np.ndarray
    mask: np.ndarray
    field: WarpField


class Scene:
    """One face of a real photo in the build's frames: base image, base landmarks, crop alignment."""

    def __init__(self, photo: np.ndarray, face: np.ndarray) -> None:
        self.base = photo_frame(photo, CONFIG.simulated.framing.photo_long_side)
        self.landmarks = self.base.from_photo(face)
        self.alignment = align_face(self.landmarks, CONFIG.simulated.crop_size)
        self.crop_landmarks = Landmarks(face=self.alignment.to_crop(self.landmarks))

    @property
    def image(self) -> np.ndarray:
        return self.base.image

    def edit(self, *calls: OpCall) -> Edit:
        _, field, _ = plan_in_crop(self.alignment, self.landmarks, list(calls), CONFIG.simulated.warp, self.image.shape[:2])
        pasted = paste(self.image, field, [], CONFIG.simulated.warp)
        return Edit(pasted.after, pasted.region, field)

    def views(self, edit: Edit, count: int) -> list[SpatialTransform]:
        size = (self.image.shape[1], self.image.shape[0])
        ys, xs = np.nonzero(edit.mask)
        box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
        return [sample_transform(np.random.Generator(np.random.PCG64(1000 + i)), size, CONFIG.simulated.augment,
                                 must_contain=box) for i in range(count)]  # fmt: skip


@pytest.fixture(scope="module")
def scene(astronaut: tuple[np.ndarray, Landmarks]) -> Scene:
    photo, landmarks = astronaut
    return Scene(photo, landmarks.face)


@pytest.fixture(scope="module")
def mouth_up(scene: Scene) -> Edit:
    return scene.edit(OpCall("mouth_vertical", 100))


@pytest.fixture(scope="module")
def models() -> FidelityModels:
    with FidelityModels() as loaded:
        yield loaded


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.float64([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _remapped(image: np.ndarray, field: WarpField, interpolation: int) -> np.ndarray:
    out = image.copy()
    x0, y0, x1, y1 = field.roi
    out[y0:y1, x0:x1] = cv2.remap(image, field.map_x, field.map_y, interpolation, borderMode=cv2.BORDER_REFLECT_101)
    return out


# --- align_err_px ----------------------------------------------------------------------------
def test_align_err_is_small_for_true_views_and_flags_a_shift_or_a_wrong_matrix(scene: Scene, mouth_up: Edit) -> None:
    def err(t: SpatialTransform, view_before: np.ndarray, view_after: np.ndarray, matrix: np.ndarray) -> float:
        return align_err_px(scene.image, mouth_up.after, view_before, view_after, matrix, mouth_up.mask)

    for t in scene.views(mouth_up, 4):
        before, after = apply_image(t, scene.image), apply_image(t, mouth_up.after)
        # A true view is compared with its base carried by the same matrix: only the rounding
        # of the box offset is left (the target is p99 <= 0.5 px).
        assert err(t, before, after, t.matrix) < 0.05
        assert 0.2 < err(t, before, _shifted(after, 0.3, 0.0), t.matrix) < 0.6  # after 0.3 px off
        assert 0.8 < err(t, before, _shifted(after, 1.0, 0.0), t.matrix) < 1.5  # after 1 px off
        assert 0.8 < err(t, _shifted(before, 0.0, -1.0), after, t.matrix) < 1.5  # before 1 px off
        wrong = t.matrix.copy()
        wrong[:, 2] += (0.7, 0.7)  # the record's matrix is not the applied one (1 px)
        assert 0.8 < err(t, before, after, wrong) < 2.5  # p99 of the flow: the tail can read up to twice the shift


def test_align_err_reads_true_views_of_smooth_high_resolution_photos_as_aligned(bus_person) -> None:
    """bus.jpg upscaled 4x (smooth, like the 8K professional photos) with a body-sized edit region:
    true views that shrink, turn and cut the region read ~0; the old base-frame comparison read
    0.6-11 px here and rejected such views. A 1 px (view) shift of ``after`` still shows."""
    image, _ = bus_person
    big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    region = np.zeros(big.shape[:2], np.uint8)
    region[1400:3400, 200:1400] = 1
    after = big.copy()
    after[1400:3400, 200:1400] = cv2.GaussianBlur(big[1400:3400, 200:1400], (0, 0), 2)
    for angle, scale in ((0, 1.0), (15, 1.0), (10, 0.5), (20, 0.35)):
        matrix = cv2.getRotationMatrix2D((800, 2400), angle, scale)
        matrix[:, 2] += (-300, -1500)  # the region leaves the view on two sides
        view_before, view_after = (cv2.warpAffine(x, matrix, (1600, 1400), flags=cv2.INTER_LINEAR,
                                                  borderMode=cv2.BORDER_REFLECT_101) for x in (big, after))  # as views are drawn
        assert align_err_px(big, after, view_before, view_after, matrix, region) < 0.1, (angle, scale)
        shifted = align_err_px(big, after, view_before, _shifted(view_after, 1.0, 0.0), matrix, region)
        assert 0.8 / scale < shifted < 2.5 / scale, (angle, scale, shifted)  # 1 view px = 1 / scale base px; p99 tail
        # The build says where the region can be (the field's box): the same value, searching only there.
        within = align_err_px(big, after, view_before, _shifted(view_after, 1.0, 0.0), matrix, region,
                              within=(150, 1300, 1500, 3500))  # fmt: skip
        assert within == shifted, (angle, scale)


# --- field summary ---------------------------------------------------------------------------
def test_field_jacobian_counts_folds_and_reports_the_stretch(mouth_up: Edit) -> None:
    field = mouth_up.field
    plain = field.jacobian
    assert plain.fold_count == 0
    assert plain.min_jacobian == pytest.approx(field.min_jacobian())
    assert 0.2 < plain.min_jacobian < 0.95 and 1.05 < plain.max_jacobian < 5
    dx, dy = field.displacement()
    folded = WarpField.from_displacement(field.shape, field.roi, 6 * dx, 6 * dy).jacobian
    assert folded.fold_count > 100 and folded.min_jacobian < 0 < folded.max_jacobian
    assert WarpField.identity(field.shape).jacobian == JacobianStats(0, 1.0, 1.0)


# --- detail_ratio ----------------------------------------------------------------------------
def test_detail_ratio_separates_sharp_from_bilinear_from_blurred(scene: Scene) -> None:
    field = scene.edit(OpCall("eye_distance", 100)).field
    lanczos = _remapped(scene.image, field, cv2.INTER_LANCZOS4)
    bilinear = _remapped(scene.image, field, cv2.INTER_LINEAR)
    blurred = lanczos.copy()
    x0, y0, x1, y1 = field.roi
    blurred[y0:y1, x0:x1] = cv2.GaussianBlur(lanczos[y0:y1, x0:x1], (0, 0), 1.0)
    # A wider rigid band than the build's, so that this one edit has enough measured pixels.
    measured = [detail_ratio(scene.image, img, field, rigid_tolerance=0.1) for img in (lanczos, bilinear, blurred)]
    assert min(m.pixels for m in measured) >= DETAIL_MIN_PIXELS
    sharp, soft, blur = (m.ratio for m in measured)
    assert 0.95 < sharp < 1.1
    assert soft < sharp - 0.1
    assert blur < 0.6
    assert math.isnan(detail_ratio(scene.image, scene.image, WarpField.identity(field.shape)).ratio)


# --- outside_change --------------------------------------------------------------------------
def test_jpeg_crop_on_the_block_grid_decodes_exactly_like_the_whole_image(scene: Scene, mouth_up: Edit) -> None:
    view = apply_image(scene.views(mouth_up, 1)[0], scene.image)
    h, w = view.shape[:2]
    whole = jpeg_round_trip(view)
    x0, y0, x1, y1 = block_aligned((37, 51, w - 5, h - 3), (w, h))
    assert (x0, y0, x1, y1) == (32, 48, w, h)
    np.testing.assert_array_equal(jpeg_round_trip(np.ascontiguousarray(view[y0:y1, x0:x1])), whole[y0:y1, x0:x1])
    inner = block_aligned((100, 100, 200, 203), (w, h))
    ix0, iy0, ix1, iy1 = inner
    np.testing.assert_array_equal(jpeg_round_trip(np.ascontiguousarray(view[iy0:iy1, ix0:ix1])), whole[iy0:iy1, ix0:ix1])
    off = np.ascontiguousarray(view[iy0 + 3 : iy1, ix0 + 3 : ix1])  # off the grid: not the same pixels
    assert not np.array_equal(jpeg_round_trip(off), whole[iy0 + 3 : iy1, ix0 + 3 : ix1])


def test_outside_change_rises_when_the_mask_misses_change(scene: Scene, mouth_up: Edit) -> None:
    t = scene.views(mouth_up, 1)[0]
    before, after = apply_image(t, scene.image), apply_image(t, mouth_up.after)
    mask = apply_mask(t, mouth_up.mask, binary=True)
    quad = roi_in_view(mouth_up.field.roi, t.matrix)
    honest = outside_change(before, after, mask, quad)
    assert 0 < honest < 1.5
    shrunk = cv2.erode(mask, np.ones((15, 15), np.uint8))  # a mask that misses the rim of the change
    assert outside_change(before, after, shrunk, quad) > honest + 0.5
    tinted = after.astype(np.int16)
    tinted[mask == 0] += 3  # change outside the mask, 3 grey levels
    assert outside_change(before, np.clip(tinted, 0, 255).astype(np.uint8), mask, quad) > honest + 1.5
    assert math.isnan(outside_change(before, after, np.full_like(mask, 255), quad))


def test_mean_change_is_numpys_to_the_last_bit(scene: Scene, mouth_up: Edit) -> None:
    """The OpenCV sums behind outside_change and the codec noise give numpy's mean exactly,
    on strided crops of a real edit and selections of every density."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 200, 2))
        y, x = (int(v) for v in rng.integers(0, 200, 2))
        a, b = mouth_up.after[y : y + h, x : x + w], scene.image[y + 1 : y + 1 + h, x : x + w]
        sel = rng.random(a.shape[:2]) < rng.random()
        sel[0, 0] = True
        assert _mean_abs_diff(a, b, sel) == float(np.abs(a[sel].astype(np.int16) - b[sel]).mean())


# --- motion measures -------------------------------------------------------------------------
def test_motion_gain_and_collateral_ratio_follow_their_definitions(scene: Scene) -> None:
    lms = scene.landmarks
    planned = np.zeros_like(lms)
    lips = FEATURE_GROUPS["upper_lip"] + FEATURE_GROUPS["lower_lip"]
    planned[list(lips)] = (0.0, -8.0)
    assert motion_gain(planned, 0.5 * planned) == pytest.approx(0.5)
    assert motion_gain(planned, -planned) == pytest.approx(-1.0)
    assert math.isnan(motion_gain(0.1 * planned, 0.1 * planned))  # below 1 px: not measurable
    moved = lms + planned
    moved[list(FEATURE_GROUPS["nose_tip"])] += (0.0, -2.0)
    assert collateral_ratio(lms, moved, FEATURE_GROUPS, {"upper_lip", "lower_lip"}) == pytest.approx(0.25)
    assert collateral_ratio(lms, moved, FEATURE_GROUPS, {"upper_lip", "lower_lip", "nose_tip"}) == 0.0
    with pytest.raises(ValueError, match="not in groups"):
        collateral_ratio(lms, moved, FEATURE_GROUPS, {"mouth"})


def test_allowed_groups_are_the_catalogs_moves() -> None:
    assert allowed_groups(["mouth_vertical"]) == {"upper_lip", "lower_lip", "mouth_corners"}
    assert allowed_groups(["eye_size"]) == {"left_eye", "right_eye", "left_iris", "right_iris"}
    assert allowed_groups(["nasal_alae", "mouth_width"]) == {"nose_alae", "upper_lip", "lower_lip", "mouth_corners"}
    nose = {i for g in allowed_groups(["nose_length"]) for i in FEATURE_GROUPS[g]}
    assert set(moving_landmarks(["nose_length"]).tolist()) <= nose
    with pytest.raises(ValueError, match="pose"):
        moving_landmarks(["waist_slimming"])


def test_realized_ratio_drops_when_the_edit_is_weaker_than_planned(models, scene: Scene, mouth_up: Edit) -> None:
    reference = models.face_reference(scene.image, scene.landmarks)
    honest = models.measure_edit(reference, scene.image, mouth_up.after, mouth_up.field, mouth_up.mask, ["mouth_vertical"])
    weak = scene.edit(OpCall("mouth_vertical", 50))  # what was applied...
    secret = models.measure_edit(reference, scene.image, weak.after, mouth_up.field, mouth_up.mask, ["mouth_vertical"])  # ...vs planned
    readers = ("realized_ratio", "realized_ratio_mesh", "realized_ratio_flow")
    assert all(0.8 < getattr(honest, reader) < 1.15 for reader in readers), honest
    assert all(0.3 < getattr(secret, reader) < 0.7 for reader in readers), secret
    assert honest.fold_count == 0 and 0.9 < honest.identity_sim <= 1.0
    row = qa_row(honest, measure_view(scene.image, mouth_up.after, mouth_up.mask, mouth_up.field.roi, scene.image,
                                      mouth_up.after, mouth_up.mask, np.float64([[1, 0, 0], [0, 1, 0]])))  # fmt: skip
    # detail_ratio needs DETAIL_MIN_PIXELS rigidly moved pixels, which one mouth op does not have.
    assert all(np.isfinite(v) for k, v in row.items() if k != "detail_ratio")


def test_collateral_catches_motion_injected_into_a_held_group(models, scene: Scene) -> None:
    reference = models.face_reference(scene.image, scene.landmarks)
    eyes = scene.edit(OpCall("eye_size", 100))
    nose = scene.edit(OpCall("nose_length", 100))
    plain = models.measure_edit(reference, scene.image, eyes.after, eyes.field, eyes.mask, ["eye_size"])
    # The nose is moved too, but the pair still claims only eye_size.
    both = eyes.field.then(nose.field)
    injected = models.measure_edit(reference, scene.image, both.apply(scene.image), both, eyes.mask, ["eye_size"])
    # On carried landmarks (the contract column). FaceMesh re-detection cannot carry this check:
    # its face prior moves held features by 20-60 % of the target motion (docs/warps.md).
    assert injected.collateral_ratio > plain.collateral_ratio + 0.5
    body = models.measure_edit(reference, scene.image, eyes.after, eyes.field, eyes.mask, ["waist_slimming"])
    assert math.isnan(body.realized_ratio) and math.isnan(body.collateral_ratio)  # no face op: not measured
    assert body.identity_sim == pytest.approx(plain.identity_sim)
    assert body.detail_ratio == pytest.approx(plain.detail_ratio, nan_ok=True)


# --- gates and statistics -------------------------------------------------------------------
def test_each_gate_fails_on_its_own_column_and_unmeasured_values_pass() -> None:
    good = {"align_err_px": 0.1, "realized_ratio": 1.0, "collateral_ratio": 0.05, "fold_count": 0,
            "min_jacobian": 0.6, "max_jacobian": 1.5, "outside_change": 0.8, "detail_ratio": 0.97,
            "identity_sim": 0.97}  # fmt: skip
    gates = QaGates(min_jacobian=0.3, max_jacobian=3.0, realized_ratio_range=(0.8, 1.2))
    assert failing_gates(good, gates, max_abs_strength=100) == []
    bad = {"align_err_px": 0.7, "fold_count": 2, "min_jacobian": 0.1, "max_jacobian": 4.0, "collateral_ratio": 0.5,
           "realized_ratio": 0.4, "outside_change": 2.0, "detail_ratio": 0.7, "identity_sim": 0.85}  # fmt: skip
    for column, value in bad.items():
        codes = failing_gates({**good, column: value}, gates, max_abs_strength=100)
        assert len(codes) == 1 and codes[0] in GATE_CODES, (column, codes)
    assert failing_gates({**good, **bad}, gates, max_abs_strength=100) == list(GATE_CODES)
    assert failing_gates({**good, "realized_ratio": 0.4}, gates, max_abs_strength=30) == []
    assert failing_gates({**good, "identity_sim": float("nan"), "detail_ratio": None}, gates, max_abs_strength=100) == []
    with pytest.raises(ValueError):
        QaGates(realized_ratio_range=(1.2, 0.8))


def test_qa_percentiles_from_arrow_and_pandas_agree_and_count_missing() -> None:
    values = [float(v) for v in range(1, 101)]
    table = pa.table({
        "align_err_px": values + [None],
        "fold_count": pa.array([0] * 100 + [None], pa.int32()),
        "detail_ratio": values[:50] + [float("nan")] * 51,
        "pair_id": [str(i) for i in range(101)],
    })  # fmt: skip
    stats = qa_percentiles(table)
    assert set(stats) == {"align_err_px", "fold_count", "detail_ratio"}
    a = stats["align_err_px"]
    assert (a["count"], a["missing"], a["p1"], a["p50"], a["p99"], a["mean"]) == (100, 1, 1.99, 50.5, 99.01, 50.5)
    assert stats["fold_count"]["p99"] == 0.0 and stats["fold_count"]["missing"] == 1
    assert stats["detail_ratio"]["count"] == 50 and stats["detail_ratio"]["p50"] == 25.5
    assert qa_percentiles(table.to_pandas()) == stats
    empty = qa_percentiles(pa.table({"identity_sim": pa.array([None], pa.float64())}))
    assert empty["identity_sim"]["p50"] is None and empty["identity_sim"]["missing"] == 1
    assert set(QA_COLUMNS) >= set(stats)


def test_qa_row_has_exactly_the_contract_columns(scene: Scene, mouth_up: Edit) -> None:
    t = scene.views(mouth_up, 1)[0]
    view = measure_view(scene.image, mouth_up.after, mouth_up.mask, mouth_up.field.roi, apply_image(t, scene.image),
                        apply_image(t, mouth_up.after), apply_mask(t, mouth_up.mask, binary=True), t.matrix)  # fmt: skip
    edit = EditQA(1.0, 0.1, 0, 0.5, 1.5, 0.95, 0.97, 0.2, 0.9, 0.9, 1.0)
    row = qa_row(edit, view)
    assert tuple(row) == QA_COLUMNS
    assert row["align_err_px"] < 0.25 and 0 < row["outside_change"] < 1.5 and row["identity_sim"] == 0.97
    assert pd.DataFrame([row]).dtypes["fold_count"] == np.int64


def test_follow_landmarks_re_finds_landmarks_a_known_warp_moved(scene: Scene) -> None:
    """A known similarity (turn 3 degrees, scale 1.03, shift by a fraction of a pixel) of a real
    face: every landmark is re-found where the transform put it, from the images alone."""
    matrix = cv2.getRotationMatrix2D((300.0, 250.0), 3.0, 1.03)
    matrix[:, 2] += (2.4, -1.3)
    moved = cv2.warpAffine(scene.image, matrix, scene.image.shape[1::-1], flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    points = scene.landmarks[moving_landmarks(["eye_size", "nose_length", "mouth_width", "lip_thickness"])]
    expected = points @ matrix[:, :2].T + matrix[:, 2]
    found = follow_landmarks(scene.image, moved, points, inter_ocular(scene.landmarks))
    error = np.hypot(*(found - expected).T)
    assert np.isfinite(found).all() and np.median(error) < 0.15 and error.max() < 1.0, (np.median(error), error.max())
    # No motion, no motion read; a tracker that drifts on its own would show it here.
    still = follow_landmarks(scene.image, scene.image.copy(), points, inter_ocular(scene.landmarks))
    assert np.abs(still - points).max() < 0.05
    # Points off the image are not found (NaN rows, left out of motion_gain), and a bad scale is refused.
    off = follow_landmarks(scene.image, moved, points + (5000.0, 0.0), inter_ocular(scene.landmarks))
    assert np.isnan(off).all() and math.isnan(motion_gain(points, off))
    with pytest.raises(ValueError, match="iod"):
        follow_landmarks(scene.image, moved, points, 0.0)


@pytest.mark.parametrize("op", ["eye_size", "nose_length", "nasal_alae", "mouth_width"])
def test_realized_ratio_reads_local_ops_at_full_strength(models, scene: Scene, op: str) -> None:
    """The landmarks an op moves are re-found near where the field took them (gain near 1), on
    ops where FaceMesh's face-shape prior reads much less (docs/fidelity.md)."""
    reference = models.face_reference(scene.image, scene.landmarks)
    edit = scene.edit(OpCall(op, 100))
    qa = models.measure_edit(reference, scene.image, edit.after, edit.field, edit.mask, [op])
    # This face is small (42 px between the eyes): the magnified eye_size reads lowest, 0.79
    # (FaceMesh 0.39); nose_length, nasal_alae and mouth_width 0.92-0.95 (FaceMesh 0.08-0.72).
    assert 0.75 < qa.realized_ratio < 1.15, (qa.realized_ratio, qa.realized_ratio_mesh)


def test_the_builds_models_load_no_face_mesh(scene: Scene, mouth_up: Edit) -> None:
    with FidelityModels(diagnostics=False) as lean:
        assert lean.mesh is None and [m.name for m in lean.models] == [m.name for m in lean.embedder.models]
        reference = lean.face_reference(scene.image, scene.landmarks)
        qa = lean.measure_edit(reference, scene.image, mouth_up.after, mouth_up.field, mouth_up.mask,
                               ["mouth_vertical"], diagnostics=False)  # fmt: skip
        assert 0.8 < qa.realized_ratio < 1.15 and math.isnan(qa.realized_ratio_mesh)
        with pytest.raises(ValueError, match="diagnostics need FaceMesh"):
            lean.measure_edit(reference, scene.image, mouth_up.after, mouth_up.field, mouth_up.mask, ["mouth_vertical"])
