"""Per-pair QA, pixels: change outside the mask against codec noise, and detail kept by the warp.

Pure functions of arrays. Images RGB uint8 (H, W, 3), masks uint8 (H, W) (> 0 inside),
coordinates pixel (x, y) with pixel centres at integers. A view is
``cv2.warpAffine(base, M, size)`` with ``M`` (2, 3) mapping base to view coordinates.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imageio import encode_jpeg

#: JPEG codes 8 x 8 blocks (4:4:4, one block per MCU) on a grid anchored at the image origin.
JPEG_BLOCK = 8
#: Smallest codec noise (mean absolute grey levels) a ratio is divided by: a flat patch
#: that JPEG reproduces exactly would otherwise give an infinite ratio.
NOISE_FLOOR = 0.1
#: detail_ratio counts pixels the field moves by more than this (px)...
MOVED_PX = 0.5
#: ...whose local map is this close to a rotation: both singular values of the backward
#: map's Jacobian within 1 +- MAX_STRETCH. Scaling changes Laplacian energy by geometry
#: alone (magnified content loses its finest frequencies under any resampler).
MAX_STRETCH = 0.05
#: Fewer counted pixels than this and detail_ratio is NaN (not measurable).
MIN_DETAIL_PIXELS = 64


def jpeg_round_trip(rgb: np.ndarray, quality: int = 95) -> np.ndarray:
    """``rgb`` encoded as the build does (``encode_jpeg``: q ``quality``, 4:4:4) and decoded."""
    bgr = cv2.imdecode(np.frombuffer(encode_jpeg(rgb, quality), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def block_aligned(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1) grown to the JPEG block grid of an image of ``size`` (w, h).

    Starts round down to a multiple of 8, ends up to one (or to the image edge). The
    decoded pixels of such a crop equal those of the whole image at the same place
    (tests/pipeline/test_fidelity.py checks it), so noise is measured on the crop alone.
    """
    w, h = size
    x0, y0, x1, y1 = box
    b = JPEG_BLOCK
    return (max(0, x0 // b * b), max(0, y0 // b * b), min(w, -(-x1 // b) * b), min(h, -(-y1 // b) * b))


def roi_in_view(roi: tuple[int, int, int, int], matrix: np.ndarray) -> np.ndarray:
    """(4, 2) float64 corners, in view coordinates, of the base-frame field ``roi``
    (x0, y0, x1, y1, ends exclusive) grown by one pixel: every view pixel whose bilinear
    sample touches a pixel the field changed lies inside this quadrilateral."""
    x0, y0, x1, y1 = roi
    corners = np.array([[x0 - 1, y0 - 1], [x1, y0 - 1], [x1, y1], [x0 - 1, y1]], np.float64)
    matrix = np.asarray(matrix, np.float64).reshape(2, 3)
    return corners @ matrix[:, :2].T + matrix[:, 2]


def outside_change(
    before: np.ndarray,
    after: np.ndarray,
    mask: np.ndarray,
    quad: np.ndarray,
    *,
    quality: int = 95,
    noise: float | None = None,
) -> float:
    """Mean |after - before| outside the mask, divided by the codec noise there.

    ``before``/``after`` (h, w, 3) uint8 and ``mask`` (h, w) uint8 are one pair (a view or
    the base frame); ``quad`` (4, 2) is where the edit can have changed pixels at all
    (:func:`roi_in_view` of the field's roi; outside it after == before by construction).
    Counted pixels R: inside ``quad``, outside ``mask``. ``noise``: the codec noise to
    divide by; default :func:`codec_noise` of this ``before`` over R. 1.0 means the mask
    leaves out change as large as the codec's own noise. NaN when R is empty.
    """
    found = _counted(mask, quad)
    if found is None:
        return float("nan")
    (x0, y0, x1, y1), sel = found
    crop = before[y0:y1, x0:x1]
    change = _mean_abs_diff(after[y0:y1, x0:x1], crop, sel)
    if noise is None:
        noise = _noise(crop, sel, quality)
    return float(change / max(noise, NOISE_FLOOR))


def codec_noise(before: np.ndarray, mask: np.ndarray, quad: np.ndarray, *, quality: int = 95) -> float:
    """Mean |decoded JPEG (``quality``, 4:4:4) of ``before`` - ``before``| over the pixels
    :func:`outside_change` counts, from a block-aligned crop (:func:`block_aligned`);
    floored at :data:`NOISE_FLOOR`. NaN when no pixel counts.

    The noise is a property of the content, so one base-frame value can serve all views
    of an edit (the views' own block grids differ; the mean over the region does not, to
    within a few per cent).
    """
    found = _counted(mask, quad)
    if found is None:
        return float("nan")
    (x0, y0, x1, y1), sel = found
    return max(_noise(before[y0:y1, x0:x1], sel, quality), NOISE_FLOOR)


def _counted(mask: np.ndarray, quad: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """(block-aligned box, bool pixels of it inside ``quad`` and outside ``mask``), or None."""
    h, w = mask.shape
    quad = np.asarray(quad, np.float64).reshape(4, 2)
    lo = np.floor(quad.min(axis=0)).astype(int)
    hi = np.ceil(quad.max(axis=0)).astype(int) + 1
    box = block_aligned((max(0, lo[0]), max(0, lo[1]), min(w, hi[0]), min(h, hi[1])), (w, h))
    x0, y0, x1, y1 = box
    if x0 >= x1 or y0 >= y1:
        return None
    counted = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = 4  # fillConvexPoly sub-pixel bits
    cv2.fillConvexPoly(counted, np.round((quad - (x0, y0)) * (1 << shift)).astype(np.int32), 1, cv2.LINE_8, shift)
    sel = (counted > 0) & (mask[y0:y1, x0:x1] == 0)
    return (box, sel) if sel.any() else None


def _noise(crop: np.ndarray, sel: np.ndarray, quality: int) -> float:
    crop = np.ascontiguousarray(crop)
    return _mean_abs_diff(jpeg_round_trip(crop, quality), crop, sel)


def _mean_abs_diff(a: np.ndarray, b: np.ndarray, sel: np.ndarray) -> float:
    """Mean |a - b| over the pixels ``sel`` (bool, non-empty) and all channels of two uint8
    images: the per-channel sums are exact integers, so this is numpy's
    ``np.abs(a[sel].astype(int) - b[sel]).mean()`` to the last bit, at a fifth of its cost."""
    selected = sel.view(np.uint8)
    channels = a.shape[2] if a.ndim == 3 else 1
    diff = cv2.absdiff(a, b)
    total = sum(cv2.sumElems(cv2.bitwise_and(diff, diff, mask=selected))[:channels])
    return float(total / (cv2.countNonZero(selected) * channels))
