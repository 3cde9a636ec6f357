"""Decode one view (before, after, mask) and letterbox it onto a square training canvas.

A view of size (w, h) is scaled by ``s = size / max(w, h)`` to ``(round(w s), round(h s))``
(INTER_AREA when shrinking, INTER_LINEAR when enlarging) and pasted at the canvas centre
(integer offset, zeros around). Before, after and mask of one view share that geometry,
so they stay aligned; two views of an edit get their own scale and offset, exactly as a
user's exemplar and query photos would. The mask becomes the fraction of each canvas pixel
inside the edit region, in [0, 1]; ``valid`` is 1 where the view lies, 0 on the padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Where a ``width`` x ``height`` view lands on the ``size`` x ``size`` canvas: it is
    resized to ``fitted`` (w, h) and its top-left pixel goes to canvas ``offset`` (x, y)."""

    width: int
    height: int
    size: int

    def __post_init__(self) -> None:
        if min(self.width, self.height, self.size) < 1:
            raise ValueError(f"sizes must be positive, got {self.width}x{self.height} onto {self.size}")

    @property
    def fitted(self) -> tuple[int, int]:
        scale = self.size / max(self.width, self.height)
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))

    @property
    def offset(self) -> tuple[int, int]:
        w, h = self.fitted
        return (self.size - w) // 2, (self.size - h) // 2

    def place(self, image: np.ndarray) -> np.ndarray:
        """``image`` (height, width[, C]) resized and pasted onto a zero canvas of its dtype."""
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, expected {self.width}x{self.height}")
        w, h = self.fitted
        shrink = w < self.width or h < self.height
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        canvas = np.zeros((self.size, self.size) + image.shape[2:], dtype=image.dtype)
        x0, y0 = self.offset
        canvas[y0 : y0 + h, x0 : x0 + w] = resized.reshape((h, w) + image.shape[2:])
        return canvas

    def valid(self) -> np.ndarray:
        """(size, size) float32: 1 on the pasted view, 0 on the padding."""
        canvas = np.zeros((self.size, self.size), dtype=np.float32)
        (x0, y0), (w, h) = self.offset, self.fitted
        canvas[y0 : y0 + h, x0 : x0 + w] = 1.0
        return canvas


@dataclass(frozen=True)
class ViewFrames:
    """One view on the canvas: ``before`` / ``after`` (size, size, 3) uint8 RGB,
    ``mask`` and ``valid`` (size, size) float32 in [0, 1]."""

    before: np.ndarray
    after: np.ndarray
    mask: np.ndarray
    valid: np.ndarray


def decode_rgb(data: bytes, what: str) -> np.ndarray:
    """Encoded JPEG / PNG / WebP bytes to (H, W, 3) uint8 RGB; ValueError naming ``what``."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{what}: cannot decode the image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_mask(data: bytes, what: str) -> np.ndarray:
    """A single-channel uint8 PNG mask (0 outside, 255 inside) to (H, W) uint8."""
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None or mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"{what}: the mask is not a single-channel 8-bit image")
    return mask


def view_frames(before: bytes, after: bytes, mask: bytes, size: int, what: str) -> ViewFrames:
    """Decode and letterbox one view; its three images must have one size."""
    before_rgb, after_rgb, mask_u8 = decode_rgb(before, what), decode_rgb(after, what), decode_mask(mask, what)
    h, w = before_rgb.shape[:2]
    if after_rgb.shape[:2] != (h, w) or mask_u8.shape != (h, w):
        raise ValueError(
            f"{what}: before {w}x{h}, after {after_rgb.shape[1]}x{after_rgb.shape[0]} and "
            f"mask {mask_u8.shape[1]}x{mask_u8.shape[0]} differ in size"
        )
    box = Letterbox(w, h, size)
    return ViewFrames(
        before=box.place(before_rgb),
        after=box.place(after_rgb),
        mask=box.place(mask_u8.astype(np.float32) / 255.0),
        valid=box.valid(),
    )
