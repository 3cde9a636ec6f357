"""Body ops on a full-body street photo (ultralytics' bus.jpg): the edited person's silhouette
moves, the person next to them does not (within JPEG noise), nothing folds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.imageio import decode_image, encode_jpeg
from warps.catalog import CATALOG, OpCall
from warps.chain import plan_chain
from warps.region import change_region

BODY = sorted(name for name, spec in CATALOG.items() if spec.reads == "pose33")
#: hold[1] of the fixture: the man in the black coat beside the edited one, segmented.
NEIGHBOUR = 1


@pytest.fixture(scope="module")
def neighbour(bus_person) -> np.ndarray:
    image, lm = bus_person
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(lm.hold[NEIGHBOUR]).astype(np.int32)], 1)
    assert mask.sum() > 20_000  # a whole person, not a fragment
    return mask > 0


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", BODY)
def test_body_op_leaves_the_person_next_to_it_unchanged(name, strength, bus_person, neighbour):
    image, lm = bus_person
    plan = plan_chain(image.shape[:2], lm, [OpCall(name, strength)])
    after = plan.field.apply(image)
    changed = change_region(image, after, plan.field).mask > 0
    assert changed.sum() > 200 and plan.field.jacobian.fold_count == 0
    # Before any codec: the neighbour's pixels are exactly the original ones.
    np.testing.assert_array_equal(after[neighbour], image[neighbour])
    # Through JPEG q95: only codec noise, no more than a round trip of the unedited photo makes.
    before_jpeg = decode_image(encode_jpeg(image, 95)).astype(np.int16)
    after_jpeg = decode_image(encode_jpeg(after, 95)).astype(np.int16)
    noise = np.abs(before_jpeg - image)[neighbour]
    edit = np.abs(after_jpeg - before_jpeg)[neighbour]
    assert edit.mean() <= noise.mean() and edit.max() <= noise.max()


def test_leg_length_moves_the_feet_and_not_the_hips(bus_person):
    """On the pixels: the shoes go down by the planned amount, the belt line stays."""
    image, lm = bus_person
    plan = plan_chain(image.shape[:2], lm, [OpCall("leg_length", 100)])
    (record,) = plan.records
    after = plan.field.apply(image)
    grey_before, grey_after = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (image, after))
    hips = lm.pose[[23, 24]].mean(axis=0)
    ankles = lm.pose[[27, 28]].mean(axis=0)
    drop = CATALOG["leg_length"].signed_magnitude(record.applied_strength) * float(np.hypot(*(ankles - hips)))
    # The left ankle and heel (the right leg stands against the woman cut by the photo's
    # edge, held by her box, so it moves less), and the hips.
    for point, expected in [(lm.pose[j], drop) for j in (27, 29)] + [(hips, 0.0)]:
        x, y = (int(v) for v in np.round(point))
        patch = grey_before[y - 8 : y + 9, x - 8 : x + 9]
        column = grey_after[y - 8 - 30 : y + 9 + 30, x - 8 : x + 9]
        score = cv2.matchTemplate(column, patch, cv2.TM_SQDIFF_NORMED)[:, 0]
        assert abs(int(np.argmin(score)) - 30 - expected) <= 2.5, (point, expected)


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", ["square_shoulders", "shoulder_width"])
def test_shoulder_ops_leave_the_persons_own_face_unchanged(name, strength, astronaut):
    """The shoulders move under the chin; the face (the hull of its mesh) keeps its pixels."""
    image, lm = astronaut
    plan = plan_chain(image.shape[:2], lm, [OpCall(name, strength)])
    after = plan.field.apply(image)
    face = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(face, np.round(cv2.convexHull(lm.face[:, :2].astype(np.float32))).astype(np.int32), 1)
    changed = change_region(image, after, plan.field).mask > 0
    assert changed.sum() > 200 and plan.field.jacobian.fold_count == 0
    np.testing.assert_array_equal(after[face > 0], image[face > 0])
    moved = np.hypot(*(plan.field.forward_points(lm.face[:, :2]) - lm.face[:, :2]).T)
    assert moved.max() < 0.01
