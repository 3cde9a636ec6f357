"""Coordinate frames: downscaled copies, crops (plain and square, zero-padded), boxes, ROIs.

All coordinates use pixel centres at integers. A frame whose pixels are ``s`` times
the full image's maps a point by ``u_full = (u + 0.5) / s - 0.5``, which keeps the
image edges (-0.5 and w - 0.5) in place; boxes (outer edges) map by the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def check_rgb(rgb: object) -> np.ndarray:
    """Return ``rgb`` if it is an RGB uint8 (H, W, 3) array, else raise ValueError."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"expected an RGB uint8 numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, got {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected shape (H, W, 3), got {rgb.shape}")
    return rgb


def downscale(rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Copy of ``rgb`` with long side <= ``long_side`` (INTER_AREA) and its per-axis scales (sx, sy).

    Images already small enough are returned as they are with scales (1.0, 1.0).
    """
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb, (1.0, 1.0)
    factor = long_side / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return small, (size[0] / w, size[1] / h)


def to_full(points: np.ndarray, scales: tuple[float, float]) -> np.ndarray:
    """Map (..., 2+) points (x, y first) from a frame scaled by (sx, sy) to full resolution."""
    out = np.array(points, dtype=np.float64)
    out[..., 0] = (out[..., 0] + 0.5) / scales[0] - 0.5
    out[..., 1] = (out[..., 1] + 0.5) / scales[1] - 0.5
    return out


@dataclass(frozen=True)
class Crop:
    """Pixels of the window [x0, x1) x [y0, y1) of the full image, resized to ``pixels``' size."""

    x0: int
    y0: int
    x1: int
    y1: int
    pixels: np.ndarray

    def from_normalized(self, points: np.ndarray) -> np.ndarray:
        """Map MediaPipe normalized (x, y, z, ...) in [0, 1] of this crop to full-image pixels.

        x, y: the crop's extent maps to its outer pixel edges; z scales with the crop width.
        Columns after the third (visibility) are copied.
        """
        out = np.array(points, dtype=np.float64)
        width, height = self.x1 - self.x0, self.y1 - self.y0
        out[:, 0] = self.x0 + out[:, 0] * width - 0.5
        out[:, 1] = self.y0 + out[:, 1] * height - 0.5
        out[:, 2] = out[:, 2] * width
        return out

    def matrix_to(self, scales: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
        """2x3 affine taking this crop's pixel coordinates to the full image scaled by ``scales``
        (sx, sy), pixel centres at integers (a frame of the image's ``downscale`` copy)."""
        ch, cw = self.pixels.shape[:2]
        ax, ay = cw / (self.x1 - self.x0), ch / (self.y1 - self.y0)  # crop pixels per full pixel
        sx, sy = scales
        return np.array([[sx / ax, 0.0, (self.x0 + 0.5 / ax) * sx - 0.5],
                         [0.0, sy / ay, (self.y0 + 0.5 / ay) * sy - 0.5]])


def cut(rgb: np.ndarray, window: tuple[float, float, float, float], long_side: int) -> Crop | None:
    """Cut ``window`` (x0, y0, x1, y1 outer edges, any floats) clipped to the image; None if empty.

    The crop is resized (INTER_AREA) so that its long side is at most ``long_side``.
    """
    h, w = rgb.shape[:2]
    x0 = max(0, int(np.floor(window[0] + 0.5)))
    y0 = max(0, int(np.floor(window[1] + 0.5)))
    x1 = min(w, int(np.ceil(window[2] + 0.5)))
    y1 = min(h, int(np.ceil(window[3] + 0.5)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    pixels = rgb[y0:y1, x0:x1]
    factor = long_side / max(x1 - x0, y1 - y0)
    if factor < 1.0:
        size = (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return Crop(x0, y0, x1, y1, np.ascontiguousarray(pixels))


def expand(box: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Box (x0, y0, x1, y1) grown by ``margin`` times its width / height on every side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def box_area(box: np.ndarray) -> float:
    return max(0.0, float(box[2] - box[0])) * max(0.0, float(box[3] - box[1]))


def box_intersection(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    iy = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    return ix * iy


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (0 when both are empty)."""
    inter = box_intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def inside_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of box ``a``'s area that lies inside box ``b`` (0 for an empty ``a``)."""
    area = box_area(a)
    return float(box_intersection(a, b) / area) if area > 0 else 0.0


@dataclass(frozen=True)
class Roi:
    """A square region in full-resolution pixels: centre (cx, cy), side, rotation (radians).

    ``rotation`` is MediaPipe's: the angle by which the region is turned (clockwise on screen,
    y down) so that its content is upright.
    """

    cx: float
    cy: float
    side: float
    rotation: float


def square_crop(rgb: np.ndarray, cx: float, cy: float, side: float, max_px: int) -> Crop:
    """The square window of ``side`` px centred on (cx, cy), zero outside the photo, resized
    (INTER_AREA) to at most ``max_px`` a side. Integer window edges; never empty."""
    h, w = rgb.shape[:2]
    size = max(2, int(np.ceil(side)))
    x0 = int(np.floor(cx + 0.5 - size / 2))
    y0 = int(np.floor(cy + 0.5 - size / 2))
    inside = rgb[max(0, y0):max(0, min(h, y0 + size)), max(0, x0):max(0, min(w, x0 + size))]
    out_size = min(size, max_px)
    factor = out_size / size
    pixels = np.zeros((out_size, out_size, 3), np.uint8)
    if inside.size:
        # Resize the part inside the photo, then place it exactly where it belongs in the window.
        if factor < 1.0:
            inner = cv2.resize(inside, (max(1, round(inside.shape[1] * factor)), max(1, round(inside.shape[0] * factor))),
                               interpolation=cv2.INTER_AREA)
        else:
            inner = np.ascontiguousarray(inside)
        sx, sy = inner.shape[1] / inside.shape[1], inner.shape[0] / inside.shape[0]
        left, top = max(0, x0) - x0, max(0, y0) - y0
        matrix = np.array([[factor / sx, 0.0, left * factor + 0.5 * factor / sx - 0.5],
                           [0.0, factor / sy, top * factor + 0.5 * factor / sy - 0.5]])
        cv2.warpAffine(inner, matrix, (out_size, out_size), dst=pixels, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_TRANSPARENT)
    return Crop(x0, y0, x0 + size, y0 + size, pixels)


