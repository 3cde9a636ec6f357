"""Edit regions: where a warp moved pixels, as a mask, polygons and a box."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from warps.field import WarpField

#: approxPolyDP tolerance in pixels for the region polygons.
POLYGON_EPSILON_PX = 1.0

Polygon = tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class EditRegion:
    """The edited area of one image of shape (h, w).

    - ``mask``: (h, w) uint8, 255 where the displacement magnitude exceeds the threshold, else 0;
    - ``polygons``: outer contours of the mask, each a tuple of pixel (x, y), simplified;
    - ``bbox``: (x0, y0, x1, y1) ints of the mask, ends exclusive; (0, 0, 0, 0) when empty.
    """

    mask: np.ndarray
    polygons: tuple[Polygon, ...]
    bbox: tuple[int, int, int, int]

    @property
    def is_empty(self) -> bool:
        return self.bbox == (0, 0, 0, 0)


def edit_region(field: WarpField, *, threshold_px: float = 0.5) -> EditRegion:
    """Region of ``field``: pixels it moves by more than ``threshold_px``.

    Only the field's box is examined (the field is the identity outside it), so the
    cost follows the edit, not the frame.
    """
    if threshold_px < 0:
        raise ValueError(f"threshold_px must be >= 0, got {threshold_px}")
    mask = np.zeros(field.shape, np.uint8)
    if field.is_identity:
        return EditRegion(mask, (), (0, 0, 0, 0))
    x0, y0, x1, y1 = field.roi
    dx, dy = field.displacement()
    local = np.where(dx * dx + dy * dy > threshold_px * threshold_px, 255, 0).astype(np.uint8)
    mask[y0:y1, x0:x1] = local
    contours, _ = cv2.findContours(local, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
    polygons = tuple(
        tuple((int(x), int(y)) for x, y in cv2.approxPolyDP(c, POLYGON_EPSILON_PX, True)[:, 0])
        for c in contours
    )
    rows = np.flatnonzero(local.any(axis=1))
    cols = np.flatnonzero(local.any(axis=0))
    if len(rows) == 0:
        return EditRegion(mask, polygons, (0, 0, 0, 0))
    bbox = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)
    return EditRegion(mask, polygons, bbox)
