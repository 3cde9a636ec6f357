"""Edit regions (warps.region) of real chains on the astronaut photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from warps.catalog import OpCall
from warps.chain import plan_chain
from warps.field import WarpField
from warps.region import blend_mask, edit_region


@pytest.fixture(scope="module")
def eye_plan(astronaut):
    image, lm = astronaut
    return plan_chain(image.shape[:2], lm, [OpCall("eye_size", 100)])


def test_mask_marks_exactly_the_pixels_that_move(eye_plan):
    region = eye_plan.region
    magnitude = eye_plan.field.displacement_magnitude()
    assert region.mask.dtype == np.uint8 and set(np.unique(region.mask)) == {0, 255}
    np.testing.assert_array_equal(region.mask > 0, magnitude > 0.5)


def test_bbox_and_polygons_cover_the_mask_around_the_eyes(eye_plan, astronaut):
    _, lm = astronaut
    region = eye_plan.region
    ys, xs = np.nonzero(region.mask)
    assert region.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    x0, y0, x1, y1 = region.bbox
    eyes = lm.face[[33, 133, 263, 362]]
    assert x0 < eyes[:, 0].min() and eyes[:, 0].max() < x1 and y0 < eyes[:, 1].min() and eyes[:, 1].max() < y1
    assert (x1 - x0) * (y1 - y0) < 0.1 * 512 * 512  # an eye edit stays local
    drawn = np.zeros_like(region.mask)
    cv2.fillPoly(drawn, [np.array(p, np.int32) for p in region.polygons], 255)
    overlap = np.logical_and(drawn > 0, region.mask > 0).sum() / (region.mask > 0).sum()
    assert overlap > 0.9
    assert all(x0 <= x < x1 and y0 <= y < y1 for p in region.polygons for x, y in p)


def test_blend_mask_is_one_on_the_anchor_hull_and_fades_outside(eye_plan):
    region = eye_plan.region
    blend = region.blend
    assert blend.dtype == np.float32 and blend.shape == (512, 512)
    assert blend.min() >= 0.0 and blend.max() <= 1.0
    (record,) = eye_plan.records
    x, y = np.round(record.anchors_src).astype(int).T
    np.testing.assert_allclose(blend[y, x], 1.0, atol=1e-6)
    assert blend[0, 0] == 0.0 and blend[511, 511] == 0.0
    # Attenuating the field by the blend mask leaves the edit itself (the anchors) intact.
    attenuated = eye_plan.field.attenuate(blend)
    np.testing.assert_allclose(
        attenuated.forward_points(record.anchors_src), eye_plan.field.forward_points(record.anchors_src), atol=0.05
    )
    # The fall-off spans about one kernel (5% of 512 px -> 25 px) beyond the dilated hull.
    ring = (blend > 0.01) & (blend < 0.99)
    assert ring.any()


def test_identity_region_is_empty():
    region = edit_region(WarpField.identity((64, 48)), np.zeros((0, 2)))
    assert region.is_empty and region.polygons == () and not region.mask.any()
    assert region.blend.shape == (64, 48) and not region.blend.any()


def test_blend_kernel_follows_the_image_size(astronaut):
    _, lm = astronaut
    anchors = lm.face[[33, 133, 159, 145]]
    small = blend_mask((512, 512), anchors, 0.05)
    wide = blend_mask((512, 512), anchors, 0.2)
    assert (wide > 0).sum() > (small > 0).sum()


def test_invalid_arguments_raise(eye_plan):
    with pytest.raises(ValueError, match="threshold_px"):
        edit_region(eye_plan.field, np.zeros((0, 2)), threshold_px=-1)
    with pytest.raises(ValueError, match="blur_fraction"):
        edit_region(eye_plan.field, np.zeros((0, 2)), blur_fraction=0)
