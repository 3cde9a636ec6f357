"""Base frames: the image an edit is pasted into and its views are re-cropped from.

A :class:`BaseFrame` is an integer rectangle of the photo resized to ``image``'s size;
``matrix`` maps photo pixel coords to base-frame pixel coords exactly (pixel centres at
integers, the convention ``cv2.resize`` follows: x' = (x - x0 + 0.5) * sx - 0.5).
Downscaling uses INTER_AREA (no aliasing), upscaling INTER_LANCZOS4.

- :func:`photo_frame`: the whole photo, scaled (never up) to a long side.
- :func:`face_frame`: a square around one face, scaled so its inter-ocular distance
  (eye-centre distance, ``detectors.gates.inter_ocular``) has a requested size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from warps.augment import transform_points


class FramingRejected(ValueError):
    """No base frame can show this face as asked; ``code`` is the reject reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, eq=False)
class BaseFrame:
    """``image`` (h, w, 3) RGB uint8 shows photo pixels [x0, x1) x [y0, y1) (``rect``);
    ``matrix`` (2, 3) float64 maps photo pixel coords to ``image`` pixel coords."""

    image: np.ndarray
    rect: tuple[int, int, int, int]
    matrix: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of ``image``."""
        return self.image.shape[1], self.image.shape[0]

    @property
    def scale(self) -> float:
        """Base pixels per photo pixel (geometric mean of the two axes)."""
        return float(math.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def from_photo(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) photo pixel coords -> base-frame pixel coords."""
        return transform_points(self.matrix, points)

    def to_record(self) -> dict:
        return {"rect": list(self.rect), "size": list(self.size), "matrix": self.matrix.round(9).tolist()}


def crop_frame(photo: np.ndarray, rect: tuple[int, int, int, int], size: tuple[int, int]) -> BaseFrame:
    """Photo pixels ``rect`` = (x0, y0, x1, y1) (ends exclusive, inside the photo) resized to ``size`` (w, h)."""
    h, w = photo.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in rect)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"rect {rect} does not lie inside a {w}x{h} photo")
    out_w, out_h = (int(v) for v in size)
    if out_w < 1 or out_h < 1:
        raise ValueError(f"frame size must be positive, got {size}")
    crop = photo[y0:y1, x0:x1]
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    if (out_w, out_h) == (x1 - x0, y1 - y0):
        image = np.ascontiguousarray(crop)
    else:
        shrink = sx * sy < 1.0
        image = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    matrix = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]])
    return BaseFrame(image, (x0, y0, x1, y1), matrix)


def photo_frame(photo: np.ndarray, long_side: int) -> BaseFrame:
    """The whole photo, scaled (never up) so its long side is at most ``long_side``."""
    h, w = photo.shape[:2]
    factor = min(1.0, long_side / max(h, w))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return crop_frame(photo, (0, 0, w, h), size)


def face_frame(
    photo: np.ndarray,
    centre: tuple[float, float],
    iod_photo: float,
    iod_target: float,
    *,
    frame_size: int,
    iod_min: float,
    max_upscale: float,
) -> BaseFrame:
    """A square of ``frame_size`` output pixels centred on ``centre`` (photo coords), with the
    face's inter-ocular distance ``iod_photo`` shown at ``iod_target`` pixels.

    Where ``iod_target`` would need more than ``max_upscale`` times the photo's resolution,
    the scale stops there; if the face then shows smaller than ``iod_min``, raises
    :class:`FramingRejected` ``face_too_small_for_output``. The square is shifted to stay
    inside the photo and clipped where the photo is smaller, so no pixel is invented.
    """
    if not iod_photo > 0:
        raise FramingRejected("degenerate_face", f"inter-ocular distance {iod_photo} px")
    scale = min(iod_target / iod_photo, max_upscale)
    if iod_photo * scale < iod_min * (1 - 1e-9):
        raise FramingRejected(
            "face_too_small_for_output",
            f"inter-ocular {iod_photo:.1f} px reaches {iod_photo * scale:.1f} px at the {max_upscale}x upscale "
            f"limit, below the {iod_min:.0f} px minimum",
        )
    h, w = photo.shape[:2]
    side = frame_size / scale
    x0, x1 = _span(centre[0], side, w)
    y0, y1 = _span(centre[1], side, h)
    size = (max(1, min(frame_size, round((x1 - x0) * scale))), max(1, min(frame_size, round((y1 - y0) * scale))))
    return crop_frame(photo, (x0, y0, x1, y1), size)


def _span(centre: float, side: float, limit: int) -> tuple[int, int]:
    """Integer [lo, hi) of length ~``side`` around pixel ``centre``, moved inside [0, limit)."""
    length = min(limit, max(1, round(side)))
    lo = round(centre + 0.5 - length / 2)
    lo = min(max(lo, 0), limit - length)
    return lo, lo + length
