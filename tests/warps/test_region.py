"""Edit regions (warps.region) against what really changed, |after - before|, on real edits:
in the base frame, and in self-augmented views after a JPEG q95 4:4:4 round trip."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.imageio import decode_image, encode_jpeg
from warps.augment import SimulatedAugmentSpec, apply_image, apply_mask, sample_transform
from warps.catalog import OpCall
from warps.field import WarpField
from warps.region import change_region, changed_pixels, edit_region, view_mask

CHAINS = [
    [OpCall("eye_size", 100)],
    [OpCall("mouth_width", -100), OpCall("nose_length", 70)],
    [OpCall("lip_thickness", 100)],
]


def _coverage(changed: np.ndarray, mask: np.ndarray) -> float:
    return float((changed & (mask > 0)).sum() / max(changed.sum(), 1))


@pytest.fixture(scope="module")
def edits(sample_faces):
    """(face, field, before, after) of a few chains on three faces, in the base frame."""
    out = []
    for face, calls in zip(sample_faces[:3], CHAINS):
        _, field = face.plan(calls)
        out.append((face, field, face.base, field.apply(face.base)))
    return out


def test_base_region_holds_every_changed_pixel_and_every_moved_one(edits):
    for _, field, before, after in edits:
        region = change_region(before, after, field)
        changed = changed_pixels(before, after)
        assert changed.sum() > 100
        assert _coverage(changed, region.mask) == 1.0
        moved = field.displacement_magnitude() > 0.5
        assert np.all(region.mask[moved] == 255)
        # The displacement alone (the old region) misses changed pixels.
        assert _coverage(changed, edit_region(field).mask) < 0.99


def test_view_masks_cover_the_change_after_a_jpeg_round_trip(edits):
    spec = SimulatedAugmentSpec()
    rng = np.random.default_rng(5)
    for _, field, before, after in edits:
        region = change_region(before, after, field)
        h, w = before.shape[:2]
        x0, y0, x1, y1 = region.bbox
        for _ in range(4):
            view = sample_transform(rng, (w, h), spec, must_contain=(x0, y0, x1 - 1, y1 - 1))
            vb, va = apply_image(view, before), apply_image(view, after)
            warped = apply_mask(view, region.mask, binary=True)
            mask = view_mask(vb, va, warped)
            jb, ja = decode_image(encode_jpeg(vb, 95)), decode_image(encode_jpeg(va, 95))
            changed = changed_pixels(jb, ja)
            assert changed.sum() > 50
            assert _coverage(changed, mask) >= 0.99
            # Neither the warped base mask nor the unblocked view change suffices alone.
            assert _coverage(changed, warped) < 0.99
            assert _coverage(changed, view_mask(vb, va, warped, block=1)) < 0.99


def test_regions_of_an_identity_edit_are_empty():
    image = np.full((40, 30, 3), 90, np.uint8)
    region = change_region(image, image.copy(), WarpField.identity((40, 30)))
    assert region.is_empty and region.polygons == () and not region.mask.any()
    assert not view_mask(image, image, np.zeros((40, 30), np.uint8)).any()


def test_polygons_and_bbox_describe_the_mask(edits):
    _, field, before, after = edits[0]
    region = change_region(before, after, field)
    ys, xs = np.nonzero(region.mask)
    assert region.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    x0, y0, x1, y1 = region.bbox
    assert all(x0 <= x < x1 and y0 <= y < y1 for polygon in region.polygons for x, y in polygon)


def test_invalid_arguments_raise(edits):
    _, field, before, after = edits[0]
    with pytest.raises(ValueError, match="threshold_px"):
        edit_region(field, threshold_px=-1)
    with pytest.raises(ValueError, match="differ in shape"):
        changed_pixels(before, after[:-1])
    with pytest.raises(ValueError, match="block"):
        view_mask(before, after, np.zeros(before.shape[:2], np.uint8), block=0)
    with pytest.raises(ValueError, match="do not match field shape"):
        change_region(before[:-1], after[:-1], field)
