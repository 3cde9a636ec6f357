"""Region parameter maps (after PerTouch): which semantic region an edit moved, and how much.

Regions are drawn from the person's landmarks in the base frame: face regions from the
478-point mesh (convex hulls of the catalog's landmark groups), body regions from the
33-point pose (discs and thick segments sized by the shoulder width). :data:`REGIONS` fixes
their ids (1-based; 0 = no region); a later region paints over an earlier one.

Per region, the edit's *signed displacement magnitude*: the mean displacement length over the
region's pixels, divided by a reference length (2 % of the face width for face regions, 5 % of
the shoulder width for body regions: about what a strength-100 op moves a feature on average)
and clipped to [-1, 1]; its sign is that of the region's mean
area change (Jacobian determinant - 1): positive where the edit enlarges, negative where it
shrinks (a pure translation counts as positive).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from warps import body as joints
from warps import catalog as c
from warps.field import WarpField

#: Region names; a region's id is its position + 1.
REGIONS = (
    "forehead", "right_cheek", "left_cheek", "jaw_chin", "nose", "right_brow", "left_brow", "right_eye", "left_eye",
    "lips", "waist", "legs", "arms", "shoulders",
)  # fmt: skip
FACE_REGIONS = {
    "forehead": c.FOREHEAD_TOP + c.FOREHEAD_MID + c.RIGHT_EYEBROW + c.LEFT_EYEBROW,
    "right_cheek": c.RIGHT_CHEEK + c.RIGHT_CHEEKBONE + (50, 101, 118, 117),
    "left_cheek": c.LEFT_CHEEK + c.LEFT_CHEEKBONE + (280, 330, 347, 346),
    "jaw_chin": c.RIGHT_JAW + c.LEFT_JAW + c.CHIN + (61, 291, 17),
    "nose": c.NOSE,
    "right_brow": c.RIGHT_EYEBROW,
    "left_brow": c.LEFT_EYEBROW,
    "right_eye": c.RIGHT_EYE + c.RIGHT_IRIS,
    "left_eye": c.LEFT_EYE + c.LEFT_IRIS,
    "lips": c.LIPS,
}
#: Reference length of the signed magnitude, as a fraction of the face / shoulder width.
FACE_REFERENCE, BODY_REFERENCE = 0.02, 0.05


@dataclass(frozen=True, eq=False)
class RegionMap:
    """``index`` (h, w) uint8 region ids; ``values``/``mean_disp_px``/``area_px`` per region id
    present (REGIONS order, absent regions left out)."""

    index: np.ndarray
    names: tuple[str, ...]
    values: tuple[float, ...]
    mean_disp_px: tuple[float, ...]

    def to_record(self) -> dict:
        return {
            "ids": [REGIONS.index(n) + 1 for n in self.names],
            "names": list(self.names),
            "values": [round(v, 6) for v in self.values],
            "mean_disp_px": [round(v, 4) for v in self.mean_disp_px],
        }


#: Pixels per np.bincount call in :func:`region_counts`.
_COUNT_CHUNK = 1 << 20


def region_index(shape: tuple[int, int], face: np.ndarray | None, pose: np.ndarray | None,
                 pose_visible: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """(h, w) uint8 region ids drawn from ``face`` (478, 2) and ``pose`` (33, 2) in that frame."""
    index = np.zeros(shape, np.uint8)
    if pose is not None:
        _draw_body(index, pose, pose_visible if pose_visible is not None else np.ones(len(pose)))
    if face is not None:
        for name, group in FACE_REGIONS.items():
            hull = cv2.convexHull(np.round(face[list(group)]).astype(np.int32))
            cv2.fillConvexPoly(index, hull, REGIONS.index(name) + 1)
    return index


def region_counts(index: np.ndarray) -> np.ndarray:
    """Pixels per region id of ``index`` (id 0, no region, first). Counted a million pixels at a
    time: ``np.bincount`` widens its input to int64, 340 MB for a whole 43 MP photo at once."""
    flat = index.reshape(-1)
    counts = np.zeros(len(REGIONS) + 1, np.int64)
    for start in range(0, flat.size, _COUNT_CHUNK):
        counts += np.bincount(flat[start : start + _COUNT_CHUNK], minlength=len(counts))
    return counts


def region_map(field: WarpField, index: np.ndarray, face: np.ndarray | None, pose: np.ndarray | None,
               counts: np.ndarray | None = None) -> RegionMap:  # fmt: skip
    """Signed, normalised displacement per region of ``index`` under ``field`` (module docstring).

    Cost follows the field's box: the field is the identity outside it, so only the box's
    pixels add displacement; region sizes are ``counts`` (:func:`region_counts` of ``index``,
    counted here when None; pass them when many edits share one index).
    """
    counts = region_counts(index) if counts is None else counts
    sums = np.zeros(len(counts))
    growth = np.zeros(len(counts))
    if not field.is_identity:
        x0, y0, x1, y1 = field.roi
        local = index[y0:y1, x0:x1].ravel()
        dx, dy = field.displacement()
        sums = np.bincount(local, weights=np.hypot(dx, dy).ravel(), minlength=len(counts))
        growth = np.bincount(local, weights=_area_change(field).ravel(), minlength=len(counts))
    face_ref = FACE_REFERENCE * _width(face, 234, 454) if face is not None else None
    body_ref = BODY_REFERENCE * _width(pose, joints.LEFT_SHOULDER, joints.RIGHT_SHOULDER) if pose is not None else None
    names, values, means = [], [], []
    for region_id in np.flatnonzero(counts[1:]) + 1:
        name = REGIONS[region_id - 1]
        reference = face_ref if name in FACE_REGIONS else body_ref
        if not reference:
            continue
        mean = float(sums[region_id] / counts[region_id])
        sign = -1.0 if growth[region_id] < 0 else 1.0
        names.append(name)
        values.append(float(np.clip(sign * mean / reference, -1.0, 1.0)))
        means.append(mean)
    return RegionMap(index, tuple(names), tuple(values), tuple(means))


def _area_change(field: WarpField) -> np.ndarray:
    """Area change of the edit over the field's box (float32, roi shape): 1 / det(backward
    Jacobian) - 1, > 0 where the edit enlarges."""
    if min(field.map_x.shape) < 2:
        return np.zeros(field.map_x.shape, np.float32)
    mxx, mxy = np.gradient(field.map_x, axis=1), np.gradient(field.map_x, axis=0)
    myx, myy = np.gradient(field.map_y, axis=1), np.gradient(field.map_y, axis=0)
    det = mxx * myy - mxy * myx
    return (1.0 / np.maximum(det, 1e-3) - 1.0).astype(np.float32)


def _width(points: np.ndarray, a: int, b: int) -> float:
    return float(np.hypot(*(points[a] - points[b])))


def _draw_body(index: np.ndarray, pose: np.ndarray, visible: np.ndarray) -> None:
    width = _width(pose, joints.LEFT_SHOULDER, joints.RIGHT_SHOULDER)
    if not width > 0:
        return
    thick = max(1, int(round(0.3 * width)))

    def seen(*joints: int) -> bool:
        return bool(all(visible[j] >= 0.5 for j in joints))

    def point(j: int) -> tuple[int, int]:
        return tuple(int(round(v)) for v in pose[j])

    hips = (joints.LEFT_HIP, joints.RIGHT_HIP)
    if seen(joints.LEFT_SHOULDER, joints.RIGHT_SHOULDER, *hips):
        quad = np.array([pose[joints.LEFT_SHOULDER] * 0.45 + pose[joints.LEFT_HIP] * 0.55,
                         pose[joints.RIGHT_SHOULDER] * 0.45 + pose[joints.RIGHT_HIP] * 0.55,
                         pose[joints.RIGHT_HIP], pose[joints.LEFT_HIP]])  # fmt: skip
        outward = (quad[0] - quad[1]) / max(np.hypot(*(quad[0] - quad[1])), 1e-6) * 0.15 * width
        quad = quad + np.array([outward, -outward, -outward, outward])
        cv2.fillConvexPoly(index, np.round(quad).astype(np.int32), REGIONS.index("waist") + 1)
    for side in ((joints.LEFT_HIP, joints.LEFT_KNEE, joints.LEFT_ANKLE), (joints.RIGHT_HIP, joints.RIGHT_KNEE, joints.RIGHT_ANKLE)):
        for a, b in zip(side, side[1:]):
            if seen(a, b):
                cv2.line(index, point(a), point(b), REGIONS.index("legs") + 1, thick)
    for side in ((joints.LEFT_SHOULDER, joints.LEFT_ELBOW, joints.LEFT_WRIST), (joints.RIGHT_SHOULDER, joints.RIGHT_ELBOW, joints.RIGHT_WRIST)):
        for a, b in zip(side, side[1:]):
            if seen(a, b):
                cv2.line(index, point(a), point(b), REGIONS.index("arms") + 1, max(1, int(round(0.22 * width))))
    for joint in (joints.LEFT_SHOULDER, joints.RIGHT_SHOULDER):
        if seen(joint):
            cv2.circle(index, point(joint), max(1, int(round(0.22 * width))), REGIONS.index("shoulders") + 1, -1)
