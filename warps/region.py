"""Edit regions: where an edit changed the image, as a mask, polygons and a box.

The region of an edit is every pixel whose value changed plus every pixel the field
moves by more than a threshold (a moved flat area is edited even where no value
changes). Three pure functions:

- :func:`edit_region` (field only): the displacement part, for planning before any
  pixel exists (``ChainPlan.region``);
- :func:`change_region` (base frame): changed pixels of (before, after) plus the
  displacement part;
- :func:`view_mask` (one self-augmented view): the view's own changed pixels, grown to
  the codec's blocks, plus the base mask warped into the view.

Images are RGB uint8 (H, W, 3) (or (H, W)); masks uint8 0/255.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from warps.field import WarpField

#: approxPolyDP tolerance in pixels for the region polygons.
POLYGON_EPSILON_PX = 1.0
#: Side of a JPEG block (8x8 DCT; with 4:4:4 chroma one MCU): the codec spreads a
#: changed pixel's error over its block and never beyond it.
JPEG_BLOCK = 8

Polygon = tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class EditRegion:
    """The edited area of one image of shape (h, w).

    - ``mask``: (h, w) uint8, 255 inside the region, else 0;
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
    """Pixels ``field`` moves by more than ``threshold_px`` (only its box is examined)."""
    box = _field_box(field)
    return _region_in_box(field.shape, box, _moved(field, threshold_px))


def change_region(
    before: np.ndarray, after: np.ndarray, field: WarpField, *, tolerance: int = 0, threshold_px: float = 0.5
) -> EditRegion:
    """Region of an edit in the frame it was made in: pixels where any channel of
    ``after`` differs from ``before`` by more than ``tolerance``, plus pixels ``field``
    moves by more than ``threshold_px``."""
    if before.shape[:2] != field.shape:
        raise ValueError(f"images of shape {before.shape[:2]} do not match field shape {field.shape}")
    # Outside its box a field copies pixels, so only the box can differ.
    x0, y0, x1, y1 = box = _field_box(field)
    changed = changed_pixels(before[y0:y1, x0:x1], after[y0:y1, x0:x1], tolerance)
    return _region_in_box(field.shape, box, changed | _moved(field, threshold_px))


def view_mask(
    before: np.ndarray, after: np.ndarray, base_mask: np.ndarray, *, tolerance: int = 0, block: int = JPEG_BLOCK
) -> np.ndarray:
    """Mask (h, w) uint8 0/255 of one view: its changed pixels (as in :func:`change_region`)
    grown to every ``block`` x ``block`` tile (aligned at the view's origin, as a JPEG
    encoder's blocks are) that holds one, plus ``base_mask`` (the base-frame region
    warped into the view with the view's transform). ``block=1`` for lossless formats."""
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    changed = changed_pixels(before, after, tolerance)
    if base_mask.shape != changed.shape:
        raise ValueError(f"base mask of shape {base_mask.shape} does not match the view {changed.shape}")
    if block > 1:
        h, w = changed.shape
        hb, wb = -(-h // block), -(-w // block)
        tiles = np.zeros((hb * block, wb * block), bool)
        tiles[:h, :w] = changed
        tiles = tiles.reshape(hb, block, wb, block).any(axis=(1, 3))
        changed = np.repeat(np.repeat(tiles, block, axis=0), block, axis=1)[:h, :w]
    return np.where(changed | (base_mask > 0), 255, 0).astype(np.uint8)


def changed_pixels(before: np.ndarray, after: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """(h, w) bool: any channel of ``after`` differs from ``before`` by more than ``tolerance``."""
    if before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} differ in shape")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    diff = cv2.absdiff(before, after)
    if diff.ndim == 3:
        diff = np.maximum.reduce([diff[..., c] for c in range(diff.shape[2])])
    return diff > tolerance


def region_of_mask(mask: np.ndarray) -> EditRegion:
    """EditRegion (mask 0/255, polygons, bbox) of a boolean or 0/255 (h, w) mask."""
    return _region_in_box(mask.shape, (0, 0, mask.shape[1], mask.shape[0]), mask > 0)


def _region_in_box(shape: tuple[int, int], box: tuple[int, int, int, int], inside: np.ndarray) -> EditRegion:
    """EditRegion of an (h, w) image whose region lies in ``box``; ``inside`` (box-sized
    bool) marks it there. Only the box is scanned, so the cost follows the edit."""
    binary = np.zeros(shape, np.uint8)
    local = np.where(inside, 255, 0).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(local)
    if w == 0:
        return EditRegion(binary, (), (0, 0, 0, 0))
    bx0, by0 = box[0], box[1]
    binary[by0 : by0 + local.shape[0], bx0 : bx0 + local.shape[1]] = local
    contours, _ = cv2.findContours(
        np.ascontiguousarray(local[y : y + h, x : x + w]), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
        offset=(bx0 + x, by0 + y),
    )  # fmt: skip
    polygons = tuple(
        tuple((int(px), int(py)) for px, py in cv2.approxPolyDP(c, POLYGON_EPSILON_PX, True)[:, 0]) for c in contours
    )
    return EditRegion(binary, polygons, (bx0 + x, by0 + y, bx0 + x + w, by0 + y + h))


def _field_box(field: WarpField) -> tuple[int, int, int, int]:
    """The field's box (x0, y0, x1, y1); the whole frame for the identity."""
    return field.roi if not field.is_identity else (0, 0, field.shape[1], field.shape[0])


def _moved(field: WarpField, threshold_px: float) -> np.ndarray:
    """Box-sized bool (the :func:`_field_box`): displacement longer than ``threshold_px``."""
    if threshold_px < 0:
        raise ValueError(f"threshold_px must be >= 0, got {threshold_px}")
    if field.is_identity:
        return np.zeros(field.shape, bool)
    dx, dy = field.displacement()
    return np.hypot(dx, dy) > threshold_px
