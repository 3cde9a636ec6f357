"""Resampling (WarpField.apply, warps.field.Resampling): kept pixels are exact, no seam where
resampling starts, detail kept by the kernel (warps.measure.detail_ratio), on real photos."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from warps.catalog import OpCall
from warps.field import Resampling, WarpField
from warps.measure import DETAIL_MIN_PIXELS, detail_ratio

DEFAULT = Resampling()
PLAIN = Resampling(DEFAULT.kernel, 0.0, 0.0)  # every pixel of the box resampled


@pytest.fixture(scope="module")
def edits(sample_faces):
    """(before, field) of three ops on three real faces, in the base frame."""
    calls = [[OpCall("eye_size", 100)], [OpCall("mouth_width", 100)], [OpCall("nose_length", 100)]]
    return [(face.base, face.plan(c)[1]) for face, c in zip(sample_faces[:3], calls)]


def test_pixels_moved_less_than_the_threshold_keep_their_exact_values(edits):
    for before, field in edits:
        after = field.apply(before)
        magnitude = field.displacement_magnitude()
        kept = magnitude < DEFAULT.keep_below_px
        assert kept.sum() > 0.5 * kept.size
        np.testing.assert_array_equal(after[kept], before[kept])
        full = magnitude >= DEFAULT.blend_to_px
        np.testing.assert_array_equal(after[full], field.apply(before, PLAIN)[full])
        # Moved pixels are those of one Lanczos remap of the whole box (apply remaps band by band).
        x0, y0, x1, y1 = field.roi
        whole = cv2.remap(before, field.map_x, field.map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT_101)
        np.testing.assert_array_equal(after[y0:y1, x0:x1][full[y0:y1, x0:x1]], whole[full[y0:y1, x0:x1]])
        # A plain remap of the box changes kept pixels (the blur the threshold avoids).
        assert np.any(field.apply(before, PLAIN)[kept & (magnitude > 0)] != before[kept & (magnitude > 0)])


def _excess_jumps(before: np.ndarray, field: WarpField, resampling: Resampling) -> np.ndarray:
    """For neighbour pixels on either side of the kept region's edge: how much more the
    change (after - before) jumps between them than it does with a plain remap."""
    kept = field.displacement_magnitude() < resampling.keep_below_px
    jumps = []
    for r in (resampling, PLAIN):
        change = field.apply(before, r).astype(np.float32) - before
        per_axis = []
        for axis in (0, 1):
            k, c = np.swapaxes(kept, 0, axis), np.swapaxes(change, 0, axis)
            per_axis.append(np.abs(c[1:] - c[:-1]).max(axis=-1)[k[1:] != k[:-1]])
        jumps.append(np.concatenate(per_axis))
    return jumps[0] - jumps[1]


def test_no_seam_where_resampling_starts(edits):
    for before, field in edits:
        excess = _excess_jumps(before, field, DEFAULT)
        assert len(excess) > 100
        assert np.percentile(excess, 99) <= 3 and excess.max() <= 10, (np.percentile(excess, 99), excess.max())
    # A hard cut at half a pixel (copy below, resample above) leaves a visible edge.
    before, field = edits[0]
    hard = _excess_jumps(before, field, Resampling(DEFAULT.kernel, 0.5, 0.5))
    assert hard.max() > 20


@pytest.mark.parametrize("shift", [(0.5, 0.5), (0.3, -0.45), (1.7, 0.6)])
def test_lanczos_keeps_detail_that_bilinear_loses(shift, sample_faces):
    """A rigid sub-pixel translation of a real face: detail stays within 5 %."""
    before = sample_faces[1].base
    h, w = before.shape[:2]
    roi = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    size = (roi[3] - roi[1], roi[2] - roi[0])
    field = WarpField.from_displacement((h, w), roi, np.full(size, shift[0], np.float32), np.full(size, shift[1], np.float32))
    lanczos = detail_ratio(before, field.apply(before), field)
    assert lanczos.pixels == size[0] * size[1]
    assert abs(lanczos.ratio - 1) <= 0.05, lanczos
    assert detail_ratio(before, field.apply(before, Resampling("linear")), field).ratio < 0.9


def test_detail_of_a_few_pixels_is_not_measured_but_still_pooled(sample_faces):
    """A ratio over fewer than DETAIL_MIN_PIXELS moved rigid pixels is nan (a handful of edge
    pixels decide it); its energies are still reported for pooling."""
    before = sample_faces[1].base
    h, w = before.shape[:2]
    for side in (8, 15, 16, 40):
        roi = (w // 2, h // 2, w // 2 + side, h // 2 + side)
        field = WarpField.from_displacement((h, w), roi, np.full((side, side), 0.5, np.float32),
                                            np.full((side, side), 0.5, np.float32))  # fmt: skip
        measured = detail_ratio(before, field.apply(before), field)
        assert measured.pixels == side * side
        assert measured.after_energy > 0 and measured.before_energy > 0
        assert math.isnan(measured.ratio) == (side * side < DETAIL_MIN_PIXELS), (side, measured)


def _pooled(measures) -> float:
    return sum(m.after_energy for m in measures) / sum(m.before_energy for m in measures)


def test_detail_of_real_edits(sample_faces):
    """Where ops move content (near) rigidly, pooled over faces and ops, the default kernel
    keeps the detail within 5 %; bilinear resampling does not."""
    kept, bilinear = [], []
    for face in sample_faces[:3]:
        for call in (OpCall("eye_distance", 100), OpCall("mouth_vertical", -100)):
            _, field = face.plan([call])
            before = face.base
            kept.append(detail_ratio(before, field.apply(before), field, rigid_tolerance=0.05))
            bilinear.append(detail_ratio(before, field.apply(before, Resampling("linear")), field, rigid_tolerance=0.05))
    assert sum(m.pixels for m in kept) > 1000
    assert abs(_pooled(kept) - 1) <= 0.05, _pooled(kept)
    assert _pooled(bilinear) < 0.9


def test_apply_handles_grey_and_float_images_and_rejects_bad_settings(edits):
    before, field = edits[0]
    grey = before[..., 0].copy()
    np.testing.assert_array_equal(field.apply(grey), field.apply(before)[..., 0])
    as_float = field.apply(before.astype(np.float32))
    assert as_float.dtype == np.float32  # not rounded or clipped: Lanczos may overshoot [0, 255]
    assert np.abs(np.clip(as_float, 0, 255) - field.apply(before)).max() <= 1.0  # uint8 kernels are fixed-point
    with pytest.raises(ValueError, match="kernel"):
        Resampling("nearest")
    with pytest.raises(ValueError, match="keep_below_px"):
        Resampling("cubic", 0.5, 0.1)


@pytest.mark.parametrize("rows", [1, 2, 7])
def test_detail_and_jacobian_worked_out_in_bands_of_rows_equal_the_whole_roi(edits, monkeypatch, rows):
    """detail_ratio and the Jacobian range go through the roi a band of rows at a time (bounded
    memory at 8K); any band height gives the same numbers as the whole roi at once."""
    import warps.field as field_module
    import warps.measure as measure_module

    results = {}
    for band in (rows, 100_000):
        monkeypatch.setattr(measure_module, "DETAIL_ROWS", band)
        monkeypatch.setattr(field_module, "JACOBIAN_ROWS", band)
        results[band] = [
            (detail_ratio(before, field.apply(before), field, rigid_tolerance=0.3), WarpField.jacobian.func(field))
            for before, field in edits
        ]
    assert repr(results[rows]) == repr(results[100_000])  # repr: exact floats, and nan == nan
    assert sum(measure.pixels for measure, _ in results[rows]) > 1000
