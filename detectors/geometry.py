"""Coordinate frames: the downscaled detection copy and crops cut for face mesh / pose.

All coordinates use pixel centres at integers. A frame whose pixels are ``s`` times
the full image's maps a point by ``u_full = (u + 0.5) / s - 0.5``, which keeps the
image edges (-0.5 and w - 0.5) in place; boxes (outer edges) map by the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# COCO keypoint indices used to place the head window.
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, LEFT_SHOULDER, RIGHT_SHOULDER = range(7)
KEYPOINT_MIN_CONF = 0.5
# Head window side as a multiple of the estimated face width.
HEAD_WINDOW_FACE_WIDTHS = 2.4


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


def head_window(box: np.ndarray, keypoints: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Square window around a person's head, from YOLO's box (4,) and COCO keypoints (17, 3).

    With at least two confident face keypoints (nose, eyes, ears) the window is centred on
    them and its side is ``HEAD_WINDOW_FACE_WIDTHS`` face widths (estimated from the ear span,
    the eye span and the shoulder span); otherwise it is the top square of the box. The
    side is then grown by ``margin`` on each side.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    visible = keypoints[:, 2] >= KEYPOINT_MIN_CONF
    face_ids = [i for i in (NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR) if visible[i]]
    if len(face_ids) >= 2:
        def span(a: int, b: int) -> float:
            return float(np.hypot(*(keypoints[a, :2] - keypoints[b, :2]))) if visible[a] and visible[b] else 0.0

        points = keypoints[face_ids, :2]
        spread = float(np.max(np.ptp(points, axis=0)))
        face_width = max(span(LEFT_EAR, RIGHT_EAR), 2.2 * span(LEFT_EYE, RIGHT_EYE),
                         0.45 * span(LEFT_SHOULDER, RIGHT_SHOULDER), 1.5 * spread)
        side = HEAD_WINDOW_FACE_WIDTHS * face_width
        cx, cy = (float(v) for v in points.mean(axis=0))
    else:
        side = min(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, y0 + side / 2
    half = side * (0.5 + margin)
    return (cx - half, cy - half, cx + half, cy + half)
