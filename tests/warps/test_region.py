"""Edit regions (warps.region) of real chains on the astronaut photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from warps.catalog import OpCall
from warps.chain import plan_chain
from warps.field import WarpField
from warps.region import edit_region


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


def test_region_is_computed_inside_the_field_box_only(eye_plan):
    x0, y0, x1, y1 = eye_plan.field.roi
    outside = np.ones((512, 512), bool)
    outside[y0:y1, x0:x1] = False
    assert not eye_plan.region.mask[outside].any()
    bx0, by0, bx1, by1 = eye_plan.region.bbox
    assert x0 <= bx0 < bx1 <= x1 and y0 <= by0 < by1 <= y1


def test_identity_region_is_empty():
    region = edit_region(WarpField.identity((64, 48)))
    assert region.is_empty and region.polygons == () and not region.mask.any()
    assert region.mask.shape == (64, 48)


def test_invalid_arguments_raise(eye_plan):
    with pytest.raises(ValueError, match="threshold_px"):
        edit_region(eye_plan.field, threshold_px=-1)
