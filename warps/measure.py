"""Measurements of what an edit did: collateral motion of the features it should hold,
and the fine detail it kept. Pure functions for tests, benchmarks and per-pair QA.

Points are pixel (x, y) float arrays in one frame; images RGB uint8 (H, W, 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from warps.catalog import CATALOG
from warps.face_groups import FEATURE_GROUPS
from warps.field import WarpField

#: Default half-width of the "near rigid" band of :func:`detail_ratio`: both singular
#: values of the local Jacobian within 1 +- this.
RIGID_TOLERANCE = 0.03
#: Scale (px) of the detail :func:`detail_ratio` measures: the Laplacian of the image
#: blurred by a Gaussian of this sigma. Energy at the Nyquist frequency cannot survive
#: any sub-pixel shift (at half a pixel every symmetric interpolator returns 0 for it),
#: so a 3x3 Laplacian of the raw pixels measures the shift's phase, not the kernel.
DETAIL_SIGMA = 1.0
#: Fewest measured pixels for which :func:`detail_ratio` reports a ratio (a 16 x 16 patch).
#: Laplacian energy is dominated by a few edge pixels, so a ratio over a handful of them is
#: noise: on small faces of 8 MP photos, two-op edits with 1-55 rigid moved pixels read
#: 0.34-1.25 and were gated, the same edits' larger siblings (128-325 pixels) 0.95-1.02.
DETAIL_MIN_PIXELS = 256
#: Rows of the roi :func:`detail_ratio` works out at once.
DETAIL_ROWS = 256


def group_motion(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """Largest displacement (px) of each FEATURE_GROUPS group between two (478, 2) meshes."""
    if before.shape != after.shape or before.shape[1:] != (2,):
        raise ValueError(f"need two (N, 2) point sets of one shape, got {before.shape} and {after.shape}")
    moved = np.hypot(*(after - before).T)
    return {name: float(moved[list(indices)].max()) for name, indices in FEATURE_GROUPS.items()}


def collateral(op: str, before: np.ndarray, after: np.ndarray, largest_move: float) -> tuple[float, str]:
    """(ratio, group): the largest motion of a group ``op`` does not move (CATALOG's
    ``moves``), divided by ``largest_move`` (the op's largest planned control move, px)."""
    if not largest_move > 0:
        raise ValueError(f"largest_move must be > 0, got {largest_move}")
    motion = group_motion(before, after)
    held = [name for name in FEATURE_GROUPS if name not in CATALOG[op].moves]
    worst = max(held, key=lambda name: motion[name])
    return motion[worst] / largest_move, worst


@dataclass(frozen=True)
class DetailRatio:
    """Laplacian energy of ``after`` over the measured pixels (``after_energy``) divided by
    that of ``before`` at the source positions they show (``before_energy``); ``pixels`` is
    how many were measured (0: ratio is nan). Pool several by summing the energies."""

    ratio: float
    pixels: int
    after_energy: float = 0.0
    before_energy: float = 0.0


def detail_ratio(
    before: np.ndarray,
    after: np.ndarray,
    field: WarpField,
    *,
    threshold_px: float = 0.5,
    rigid_tolerance: float = RIGID_TOLERANCE,
    sigma: float = DETAIL_SIGMA,
    min_pixels: int = DETAIL_MIN_PIXELS,
) -> DetailRatio:
    """How much fine detail the resampling kept where the edit moved content rigidly.

    Measured pixels: inside ``field``'s box, moved by more than ``threshold_px``, where
    both singular values of the backward map's Jacobian lie within 1 +- ``rigid_tolerance``
    (locally a rigid motion, so the op itself neither magnifies nor compresses: any lost
    energy is resampling blur). Energy: squared 3x3 Laplacian of the grey image blurred
    by a Gaussian of ``sigma`` px (0: none); before's is taken at the source pixel nearest
    to where each measured pixel samples, times det(J)^2 of the backward map there (the
    energy change an ideal resampler makes at the remaining local scale, s^-4 = det^2).
    With fewer than ``min_pixels`` measured pixels the ratio is nan (not measured); the
    energies are still given, for pooling.
    """
    if before.shape != after.shape or before.shape[:2] != field.shape:
        raise ValueError(f"images {before.shape}, {after.shape} do not match field shape {field.shape}")
    if field.is_identity:
        return DetailRatio(float("nan"), 0)
    x0, y0, x1, y1 = field.roi
    measured, measured_det = _rigid_moved(field, threshold_px, rigid_tolerance)
    count = int(np.count_nonzero(measured))
    if count == 0:
        return DetailRatio(float("nan"), 0)
    # Energies only over the box holding the roi and every source position (plus the blur's
    # reach), so the cost follows the edit, not the photo.
    h, w = field.shape
    pad = int(np.ceil(4 * sigma)) + 2
    source_x, source_y = field.map_x[measured], field.map_y[measured]
    bx0 = max(0, min(x0, int(np.floor(source_x.min()))) - pad)
    by0 = max(0, min(y0, int(np.floor(source_y.min()))) - pad)
    bx1 = min(w, max(x1, int(np.ceil(source_x.max())) + 1) + pad)
    by1 = min(h, max(y1, int(np.ceil(source_y.max())) + 1) + pad)
    energy_after = _laplacian_energy(after[by0:by1, bx0:bx1], sigma)[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0][measured]
    sources = cv2.remap(
        _laplacian_energy(before[by0:by1, bx0:bx1], sigma), field.map_x - np.float32(bx0),
        field.map_y - np.float32(by0), cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101,
    )[measured]  # fmt: skip
    # Within the band a local scale s still changes Laplacian energy by s^-4 = det^2 (det of the
    # backward map): expected of any ideal resampler, so it is taken out of the comparison.
    sources = sources.astype(np.float64) * (measured_det.astype(np.float64) ** 2)
    after_sum, before_sum = float(energy_after.sum(dtype=np.float64)), float(sources.sum())
    ratio = after_sum / max(before_sum, 1e-12) if count >= min_pixels else float("nan")
    return DetailRatio(ratio, count, after_sum, before_sum)


def _rigid_moved(field: WarpField, threshold_px: float, rigid_tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """(roi pixels moved by more than ``threshold_px`` whose backward map is locally within
    ``rigid_tolerance`` of a rotation, bool (h, w); det(J) there in row-major order, float32).

    Worked out a band of rows at a time (each band read with one row of context on either
    side, so ``np.gradient`` gives exactly the whole roi's values): the float32 temporaries
    stay a few MB however large the roi.
    """
    x0, y0, x1, y1 = field.roi
    xs = np.arange(x0, x1, dtype=np.float32)
    measured = np.zeros((y1 - y0, x1 - x0), bool)
    dets = []
    for top in range(0, y1 - y0, DETAIL_ROWS):
        bottom = min(y1 - y0, top + DETAIL_ROWS)
        lo, hi = max(0, top - 1), min(y1 - y0, bottom + 1)
        keep = slice(top - lo, bottom - lo)
        map_x, map_y = field.map_x[lo:hi], field.map_y[lo:hi]
        # float32 throughout: the tolerance band (5 %) is far above its rounding, at half the cost.
        gxx, gxy = (g[keep] for g in np.gradient(map_x, axis=(1, 0)))
        gyx, gyy = (g[keep] for g in np.gradient(map_y, axis=(1, 0)))
        # Singular values of [[gxx, gxy], [gyx, gyy]] from the invariants of J^T J.
        frob = gxx**2 + gxy**2 + gyx**2 + gyy**2
        det = gxx * gyy - gxy * gyx
        spread = np.sqrt(np.maximum(frob**2 - 4 * det**2, 0.0))
        s_max = np.sqrt((frob + spread) / 2)
        s_min = np.sqrt(np.maximum((frob - spread) / 2, 0.0))
        rigid = (np.abs(s_max - 1) <= rigid_tolerance) & (np.abs(s_min - 1) <= rigid_tolerance)
        dx = map_x[keep] - xs
        dy = map_y[keep] - np.arange(y0 + top, y0 + bottom, dtype=np.float32)[:, None]
        band = rigid & (np.hypot(dx, dy) > threshold_px)
        measured[top:bottom] = band
        dets.append(det[band])
    return measured, np.concatenate(dets)


def _laplacian_energy(image: np.ndarray, sigma: float) -> np.ndarray:
    image = np.ascontiguousarray(image)
    grey = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image).astype(np.float32)
    if sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    return cv2.Laplacian(grey, cv2.CV_32F) ** 2
