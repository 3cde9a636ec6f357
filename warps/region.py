"""Edit regions: where a warp moved pixels, as a mask, polygons, a box and a blend mask."""

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
    - ``bbox``: (x0, y0, x1, y1) ints of the mask, ends exclusive; (0, 0, 0, 0) when empty;
    - ``blend``: (h, w) float32 in [0, 1]: 1 on the convex hull of the anchors, falling
      off smoothly outside it (for attenuating the field at the edit's border).
    """

    mask: np.ndarray
    polygons: tuple[Polygon, ...]
    bbox: tuple[int, int, int, int]
    blend: np.ndarray

    @property
    def is_empty(self) -> bool:
        return self.bbox == (0, 0, 0, 0)


def edit_region(
    field: WarpField, anchors: np.ndarray, *, threshold_px: float = 0.5, blur_fraction: float = 0.05
) -> EditRegion:
    """Region of ``field``; ``anchors`` (M, 2) are all control points of the chain.

    The blend mask is the filled convex hull of ``anchors``, dilated by half the blur
    kernel and Gaussian-blurred with a kernel of ``blur_fraction`` of the longer image
    side (odd, >= 3), so it is 1 (to float precision) on the hull itself.
    """
    if threshold_px < 0:
        raise ValueError(f"threshold_px must be >= 0, got {threshold_px}")
    if not 0 < blur_fraction < 1:
        raise ValueError(f"blur_fraction must lie in (0, 1), got {blur_fraction}")
    h, w = field.shape
    mask = np.where(field.displacement_magnitude() > threshold_px, 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = tuple(
        tuple((int(x), int(y)) for x, y in cv2.approxPolyDP(c, POLYGON_EPSILON_PX, True)[:, 0])
        for c in contours
    )
    ys, xs = np.nonzero(mask)
    bbox = (0, 0, 0, 0)
    if len(xs):
        bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return EditRegion(mask, polygons, bbox, blend_mask((h, w), anchors, blur_fraction))


def blend_mask(shape: tuple[int, int], anchors: np.ndarray, blur_fraction: float) -> np.ndarray:
    """(h, w) float32: the anchors' convex hull, dilated and blurred (see :func:`edit_region`)."""
    h, w = shape
    canvas = np.zeros((h, w), np.uint8)
    pts = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return canvas.astype(np.float32)
    ksize = max(3, int(round(blur_fraction * max(h, w))) | 1)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(canvas, hull, 255)
    radius = ksize // 2
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    canvas = cv2.dilate(canvas, kernel)
    blurred = cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (ksize, ksize), 0)
    return np.clip(blurred, 0.0, 1.0)
