"""Held regions: areas an op's field must leave exactly still (other features, other people).

MLS anchors only pin the points they sit on; pixels between held anchors still move.
A :class:`Hold` turns polygons into a weight that multiplies the field's displacement
per pixel: 0 inside the polygons grown by ``margin``, rising smoothly (C1) to 1 at
``feather`` px beyond, so held pixels keep their exact values and the field stays
continuous. Around the op's moving controls (within ``clearance`` px) the hold is
lifted, so a moving feature that overlaps a held one (e.g. on a turned face) still moves.
Coordinates are pixel (x, y) floats with pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from warps.field import Roi

#: Fixed-point bits for sub-pixel polygon rasterisation (cv2.fillPoly ``shift``).
_SHIFT = 4


@dataclass(frozen=True, eq=False)
class Hold:
    """``polygons``: (K, 2) float arrays (K >= 1; one or two points make a disc of
    radius ``margin``); ``margin``, ``feather``, ``clearance`` in px (see module)."""

    polygons: tuple[np.ndarray, ...]
    margin: float
    feather: float
    clearance: float = 0.0

    def __post_init__(self) -> None:
        if self.margin < 0 or self.feather <= 0 or self.clearance < 0:
            raise ValueError(
                f"hold needs margin >= 0, feather > 0, clearance >= 0; got {self.margin}, "
                f"{self.feather}, {self.clearance}"
            )
        polygons = tuple(np.asarray(p, np.float64).reshape(-1, 2) for p in self.polygons)
        if any(len(p) == 0 or not np.isfinite(p).all() for p in polygons):
            raise ValueError("hold polygons must be non-empty and finite")
        object.__setattr__(self, "polygons", polygons)

    def weight(self, roi: Roi, free: np.ndarray) -> np.ndarray:
        """(h, w) float32 over ``roi``: the share of the displacement each pixel keeps.

        ``free`` (N, 2) are the moving controls (sources and targets) around which the
        hold is lifted.
        """
        x0, y0, x1, y1 = roi
        held = np.zeros((y1 - y0, x1 - x0), np.uint8)
        scale = 1 << _SHIFT
        for polygon in self.polygons:
            local = np.round((polygon - (x0, y0)) * scale).astype(np.int32)
            if len(local) >= 3:
                cv2.fillPoly(held, [local], 1, lineType=cv2.LINE_8, shift=_SHIFT)
            else:
                for x, y in local:
                    cv2.circle(held, (int(x), int(y)), 0, 1, -1, shift=_SHIFT)
        if self.clearance > 0 and len(free):
            for x, y in np.round((np.asarray(free) - (x0, y0)) * scale).astype(np.int64):
                cv2.circle(held, (int(x), int(y)), int(round(self.clearance * scale)), 0, -1, shift=_SHIFT)
        if not held.any():
            return np.ones(held.shape, np.float32)
        distance = cv2.distanceTransform(1 - held, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        t = np.clip((distance - self.margin) / self.feather, 0.0, 1.0)
        return (t * t * (3 - 2 * t)).astype(np.float32)
