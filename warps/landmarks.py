"""Landmarks of one person in one image frame: what the operation catalog reads.

Coordinates are pixel (x, y) float64 with pixel centres at integers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from manifests.digests import array_digest

FACE_POINTS = 478
POSE_POINTS = 33

#: A point map: (N, 2) float64 pixel (x, y) -> (N, 2) float64 pixel (x, y).
PointMap = Callable[[np.ndarray], np.ndarray]


def _as_points(name: str, value: object, count: int | None) -> np.ndarray | None:
    """Read-only float64 copy of (count, 2) points; ``count=None``: a polygon of >= 3."""
    if value is None:
        return None
    arr = np.array(value, dtype=np.float64)
    if count is None:
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 3:
            raise ValueError(f"Landmarks.{name}: expected a polygon (K >= 3, 2), got {arr.shape}")
    elif arr.shape != (count, 2):
        raise ValueError(f"Landmarks.{name}: expected shape ({count}, 2), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Landmarks.{name}: contains non-finite coordinates")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Landmarks:
    """Face mesh, pose, person box and silhouette of one person, and who else to leave alone.

    - ``face``: (478, 2) MediaPipe FaceMesh (refine_landmarks) points, or None.
    - ``pose``: (33, 2) MediaPipe Pose points, or None; ``pose_visibility`` (33,) in [0, 1]
      is required with it.
    - ``person_box``: (4,) x0, y0, x1, y1 with x0 < x1 and y0 < y1, or None.
    - ``outline``: (K, 2) polygon (K >= 3, either orientation) of this person's silhouette,
      e.g. the outer contour of their segmentation mask, or None. Body ops put their
      control points on it.
    - ``hold``: polygons (K_i >= 3, 2) of everything else an edit must leave exactly
      unchanged: other people's silhouettes, or their boxes as 4-point polygons.

    Arrays are copied to float64 and made read-only.
    """

    face: np.ndarray | None = None
    pose: np.ndarray | None = None
    pose_visibility: np.ndarray | None = None
    person_box: np.ndarray | None = None
    outline: np.ndarray | None = None
    hold: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "face", _as_points("face", self.face, FACE_POINTS))
        object.__setattr__(self, "pose", _as_points("pose", self.pose, POSE_POINTS))
        object.__setattr__(self, "outline", _as_points("outline", self.outline, None))
        hold = tuple(_as_points(f"hold[{i}]", polygon, None) for i, polygon in enumerate(self.hold))
        object.__setattr__(self, "hold", hold)
        if (self.pose is None) != (self.pose_visibility is None):
            raise ValueError("Landmarks.pose_visibility: must be given exactly when pose is")
        if self.pose_visibility is not None:
            vis = np.array(self.pose_visibility, dtype=np.float64)
            if vis.shape != (POSE_POINTS,):
                raise ValueError(
                    f"Landmarks.pose_visibility: expected shape ({POSE_POINTS},), got {vis.shape}"
                )
            if not np.all((vis >= 0) & (vis <= 1)):
                raise ValueError("Landmarks.pose_visibility: values must lie in [0, 1]")
            vis.flags.writeable = False
            object.__setattr__(self, "pose_visibility", vis)
        if self.person_box is not None:
            box = np.array(self.person_box, dtype=np.float64)
            if box.shape != (4,):
                raise ValueError(f"Landmarks.person_box: expected shape (4,), got {box.shape}")
            if not (np.all(np.isfinite(box)) and box[0] < box[2] and box[1] < box[3]):
                raise ValueError(f"Landmarks.person_box: need finite x0 < x1, y0 < y1, got {box}")
            box.flags.writeable = False
            object.__setattr__(self, "person_box", box)

    @functools.cached_property
    def digest(self) -> bytes:
        """16 bytes naming every array here (equal digests: equal landmarks), for caches."""
        return array_digest(self.face, self.pose, self.pose_visibility, self.person_box, self.outline, *self.hold)

    def mapped(self, fn: PointMap) -> Landmarks:
        """The same landmarks with every point passed through ``fn`` (polygons vertex by vertex).

        The person box becomes the bounding box of its four mapped corners; visibility is kept.
        """
        box = None
        if self.person_box is not None:
            x0, y0, x1, y1 = self.person_box
            corners = fn(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64))
            box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
        return Landmarks(
            face=None if self.face is None else fn(self.face.copy()),
            pose=None if self.pose is None else fn(self.pose.copy()),
            pose_visibility=self.pose_visibility,
            person_box=box,
            outline=None if self.outline is None else fn(self.outline.copy()),
            hold=tuple(fn(polygon.copy()) for polygon in self.hold),
        )

    @classmethod
    def from_dict(cls, data: dict) -> Landmarks:
        """Build from the fixture / CLI JSON layout: keys ``face``, ``pose``,
        ``pose_visibility``, ``person_box``, ``outline`` (each a nested list or null; missing
        means null) and ``hold`` (a list of polygons; missing means none)."""
        return cls(
            face=data.get("face"),
            pose=data.get("pose"),
            pose_visibility=data.get("pose_visibility"),
            person_box=data.get("person_box"),
            outline=data.get("outline"),
            hold=tuple(data.get("hold") or ()),
        )
