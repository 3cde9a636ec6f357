"""Locality: an op moves the feature groups it names (OpSpec.moves) and holds the others,
on every usable sample face at strength +100 and -100, planned as the build plans it
(1024^2 FFHQ crop frame, pasted into the base frame)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from warps.catalog import CATALOG, FEATURE_GROUPS, OpCall, ops_for_subset
from warps.measure import collateral

SIMULATED = [spec.name for spec in ops_for_subset("simulated")]
#: The bound: no held group moves more than this fraction of the op's largest control move.
BOUND = 0.10


def _largest_move(record) -> float:
    moving = slice(0, record.moving)
    return float(np.hypot(*(record.anchors_dst[moving] - record.anchors_src[moving]).T).max())


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", SIMULATED)
def test_carried_landmarks_of_held_groups_stay(name, strength, sample_faces):
    for face in sample_faces:
        plan, _ = face.plan([OpCall(name, strength)])
        (record,) = plan.records
        ratio, group = collateral(name, face.landmarks.face, plan.landmarks_after.face, _largest_move(record))
        assert ratio <= BOUND, (face.name, group, ratio)


def _held_pixels(face, name: str, shape: tuple[int, int], record) -> np.ndarray:
    """Crop-frame pixels of the groups ``name`` holds: a convex hull per group and side of
    the face, less a 3-px disc around every moving anchor (where features touch)."""
    mask = np.zeros(shape, np.uint8)
    points = face.landmarks.face
    middle = points[[168, 6, 1, 2, 0, 17, 152]].mean(axis=0)
    for group, indices in FEATURE_GROUPS.items():
        if group in CATALOG[name].moves:
            continue
        group_points = points[list(indices)]
        for side in (group_points[:, 0] < middle[0], group_points[:, 0] >= middle[0]):
            part = group_points[side] if group not in ("forehead", "chin", "nose_bridge", "nose_tip") else group_points
            if len(part) >= 3:
                cv2.fillConvexPoly(mask, cv2.convexHull(np.round(part).astype(np.int32)), 1)
    for x, y in np.round(np.vstack([record.anchors_src[: record.moving], record.anchors_dst[: record.moving]])):
        cv2.circle(mask, (int(x), int(y)), 3, 0, -1)
    return mask > 0


#: Faces whose features overlap in the image (a turned head: nose over the far eye, mouth
#: corner against the cheek), where holding one feature would tear its moving neighbour.
TURNED = {"t1.jpg#4"}


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", SIMULATED)
def test_pixels_of_held_groups_stay(name, strength, sample_faces):
    """Stronger than landmarks (anchors pin only the points they sit on): the field's
    displacement over whole held features, not just at their landmarks."""
    for face in sample_faces:
        if face.name in TURNED:
            continue
        plan, _ = face.plan([OpCall(name, strength)])
        (record,) = plan.records
        held = _held_pixels(face, name, plan.field.shape, record)
        moved = plan.field.displacement_magnitude()[held].max()
        assert moved <= BOUND * _largest_move(record), (face.name, moved, _largest_move(record))
