"""Warp fields: backward maps for ``cv2.remap``, solved on a coarse grid inside a box.

A :class:`WarpField` on an image of ``shape = (h, w)`` says, for each output pixel
(x, y) inside ``roi = (x0, y0, x1, y1)`` (ends exclusive), which source position it
samples: ``(map_x[y - y0, x - x0], map_y[y - y0, x - x0])``. Outside the roi the
field is the identity, so only the roi is ever solved, stored or resampled.
Pixel centres are at integer coordinates (OpenCV's convention).

The grid solver that makes fields from control points is :mod:`warps.solve`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Roi = tuple[int, int, int, int]
Kernel = Literal["lanczos4", "cubic", "linear"]
KERNELS: dict[str, int] = {"lanczos4": cv2.INTER_LANCZOS4, "cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR}
#: Rows of Jacobian determinants computed at once (float64 temporaries stay a few MB).
JACOBIAN_ROWS = 256
#: :meth:`WarpField.apply` resamples bands of this many rows, each only across its moving columns.
REMAP_BAND_ROWS = 32


@dataclass(frozen=True)
class Resampling:
    """How :meth:`WarpField.apply` resamples.

    - ``kernel``: interpolation of moved pixels (``cv2.remap``: Lanczos 8x8, bicubic or
      bilinear; docs/warps.md measures the detail each keeps);
    - pixels whose displacement is below ``keep_below_px`` keep their exact values; from
      ``blend_to_px`` on they are fully resampled; in between the output is the original
      plus ``s * (resampled - original)``, ``s`` a smoothstep of the displacement, so the
      image is continuous across both thresholds (no seam).
    """

    kernel: Kernel = "lanczos4"
    keep_below_px: float = 0.1
    blend_to_px: float = 0.3

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {self.kernel!r}")
        if not 0 <= self.keep_below_px <= self.blend_to_px:
            raise ValueError(
                f"need 0 <= keep_below_px <= blend_to_px, got {self.keep_below_px}, {self.blend_to_px}"
            )

    def weight(self, magnitude: np.ndarray) -> np.ndarray:
        """Share of the resampled value (float32 in [0, 1]) at displacement ``magnitude``."""
        if self.blend_to_px == self.keep_below_px:
            return (magnitude >= self.keep_below_px).astype(np.float32)
        t = np.clip((magnitude - self.keep_below_px) / (self.blend_to_px - self.keep_below_px), 0.0, 1.0)
        return (t * t * (3 - 2 * t)).astype(np.float32)


@dataclass(frozen=True)
class JacobianStats:
    """Determinant of the backward map's Jacobian d(source)/d(output) by forward differences
    over a field's box: ``fold_count`` cells with det <= 0 (the image folds over itself),
    the smallest (< 1: stretched, magnified) and the largest (> 1: pinched, compressed)."""

    fold_count: int
    min_jacobian: float
    max_jacobian: float


@dataclass(frozen=True, eq=False)
class WarpField:
    """A backward map, identity outside ``roi``; see the module docstring."""

    shape: tuple[int, int]
    roi: Roi
    map_x: np.ndarray
    map_y: np.ndarray

    def __post_init__(self) -> None:
        h, w = self.shape
        x0, y0, x1, y1 = self.roi
        if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
            raise ValueError(f"roi {self.roi} does not lie inside image of shape {self.shape}")
        want = (y1 - y0, x1 - x0)
        for name in ("map_x", "map_y"):
            arr = getattr(self, name)
            if arr.shape != want or arr.dtype != np.float32:
                raise ValueError(f"{name} must be float32 {want}; got {arr.dtype} {arr.shape}")

    @staticmethod
    def identity(shape: tuple[int, int]) -> WarpField:
        empty = np.zeros((0, 0), np.float32)
        return WarpField((int(shape[0]), int(shape[1])), (0, 0, 0, 0), empty, empty)

    @staticmethod
    def from_displacement(shape: tuple[int, int], roi: Roi, dx: np.ndarray, dy: np.ndarray) -> WarpField:
        """Field whose map is identity + (dx, dy) inside ``roi``."""
        x0, y0, x1, y1 = roi
        gx, gy = pixel_grid(roi)
        return WarpField(shape, roi, (gx + dx).astype(np.float32), (gy + dy).astype(np.float32))

    @property
    def is_identity(self) -> bool:
        return self.map_x.size == 0

    def displacement(self) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) float32 over the roi: map minus the identity."""
        gx, gy = pixel_grid(self.roi)
        return self.map_x - gx, self.map_y - gy

    def apply(self, image: np.ndarray, resampling: Resampling = Resampling()) -> np.ndarray:
        """Resample ``image`` (H, W) or (H, W, C), uint8 or float32, through the field.

        Pixels outside the roi, and inside it where the displacement is below
        ``resampling.keep_below_px``, are copied exactly; only the box of the others is
        remapped (BORDER_REFLECT_101), and blended in as :class:`Resampling` says.
        """
        if image.shape[:2] != self.shape:
            raise ValueError(f"image shape {image.shape[:2]} does not match field shape {self.shape}")
        out = image.copy()
        if self.is_identity:
            return out
        dx, dy = self._cached_displacement
        share = resampling.weight(np.hypot(dx, dy))
        rows = np.flatnonzero(share.any(axis=1))
        cols = np.flatnonzero(share.any(axis=0))
        if len(rows) == 0:
            return out
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        share = share[r0:r1, c0:c1]
        moved = self._remap_moving(image, share, (r0, c0), KERNELS[resampling.kernel])
        x0, y0 = self.roi[0] + c0, self.roi[1] + r0
        box = out[y0 : y0 + (r1 - r0), x0 : x0 + (c1 - c0)]
        # Share 1 (most moved pixels): the resampled value; share in (0, 1) (a thin band where
        # the displacement is between the two thresholds): the blend.
        full = share >= 1
        np.copyto(box, moved, where=full[:, :, None] if image.ndim == 3 else full)
        ys, xs = np.nonzero((share > 0) & ~full)
        weight = share[ys, xs] if image.ndim == 2 else share[ys, xs][:, None]
        original = box[ys, xs].astype(np.float32)
        blended = original + weight * (moved[ys, xs].astype(np.float32) - original)
        if np.issubdtype(image.dtype, np.integer):
            info = np.iinfo(image.dtype)
            blended = np.clip(np.rint(blended), info.min, info.max)
        box[ys, xs] = blended.astype(image.dtype)
        return out

    def _remap_moving(self, image: np.ndarray, share: np.ndarray, origin: tuple[int, int], kernel: int) -> np.ndarray:
        """``cv2.remap`` of ``image`` through the maps on the box of ``share`` (at roi offset
        ``origin`` (row, col)), computed only on the columns of each band of
        :data:`REMAP_BAND_ROWS` rows where ``share`` is non-zero: elsewhere the result is
        never read (left zero). remap computes each output pixel from its own map entry and
        the whole source image, so the values equal one remap of the box."""
        r0, c0 = origin
        moved = np.zeros(share.shape + image.shape[2:], image.dtype)
        for top in range(0, share.shape[0], REMAP_BAND_ROWS):
            band = share[top : top + REMAP_BAND_ROWS]
            cols = np.flatnonzero(band.any(axis=0))
            if len(cols) == 0:
                continue
            a, b = cols[0], cols[-1] + 1
            rows = slice(r0 + top, r0 + top + band.shape[0])
            moved[top : top + band.shape[0], a:b] = cv2.remap(
                image, self.map_x[rows, c0 + a : c0 + b], self.map_y[rows, c0 + a : c0 + b], kernel,
                borderMode=cv2.BORDER_REFLECT_101,
            )  # fmt: skip
        return moved

    @functools.cached_property
    def _cached_displacement(self) -> tuple[np.ndarray, np.ndarray]:
        return self.displacement()

    def _padded_at(self, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
        """(N, 2) float64 entries [iy, ix] of the roi's displacement with one zero cell added
        on every side, read from the maps point by point (nothing roi-sized is kept)."""
        h, w = self.map_x.shape
        r, c = iy - 1, ix - 1
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        r, c = np.where(inside, r, 0), np.where(inside, c, 0)
        dx = self.map_x[r, c] - (c + self.roi[0]).astype(np.float32)
        dy = self.map_y[r, c] - (r + self.roi[1]).astype(np.float32)
        return np.where(inside[:, None], np.stack([dx, dy], axis=1), 0).astype(np.float64)

    def sample(self, points: np.ndarray) -> np.ndarray:
        """The backward map evaluated at (N, 2) output points (bilinear), float64."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.is_identity:
            return pts.copy()
        return pts + self._displacement_at(pts)[0]

    def _displacement_at(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear displacement (N, 2) at output points and its derivative (N, 2, 2)
        [component, d/dx or d/dy]; zero outside the roi (continuous at its edge)."""
        h, w = self.map_x.shape
        local = pts - (self.roi[0], self.roi[1])
        cell = np.floor(local)
        frac = local - cell
        ix = cell[:, 0].astype(np.intp) + 1
        iy = cell[:, 1].astype(np.intp) + 1
        inside = (ix >= 0) & (ix <= w) & (iy >= 0) & (iy <= h)
        ix, iy = np.where(inside, ix, 0), np.where(inside, iy, 0)
        v00, v10 = self._padded_at(iy, ix), self._padded_at(iy, ix + 1)
        v01, v11 = self._padded_at(iy + 1, ix), self._padded_at(iy + 1, ix + 1)
        fx, fy = frac[:, :1], frac[:, 1:]
        top = v00 + fx * (v10 - v00)
        bottom = v01 + fx * (v11 - v01)
        value = top + fy * (bottom - top)
        d_dx = (1 - fy) * (v10 - v00) + fy * (v11 - v01)
        d_dy = (1 - fx) * (v01 - v00) + fx * (v11 - v10)
        grad = np.stack([d_dx, d_dy], axis=2)
        value[~inside] = 0.0
        grad[~inside] = 0.0
        return value, grad

    def forward_points(self, points: np.ndarray, *, tol: float = 1e-4, max_iter: int = 50) -> np.ndarray:
        """Where content at source ``points`` (N, 2) appears in the output.

        Solves B(y) = x for each point by damped Newton steps on the backward map B
        (Jacobian of its bilinear interpolant, step halved while the residual grows), which
        converges wherever B does not fold, including strong compressions where plain
        fixed-point iteration diverges. Raises RuntimeError if a point does not converge.
        """
        target = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        y = target.copy()
        if self.is_identity:
            return y
        residual = self.sample(y) - target
        active = np.flatnonzero(np.hypot(residual[:, 0], residual[:, 1]) >= tol)
        for _ in range(max_iter):
            if len(active) == 0:
                return y
            ya, ra = y[active], residual[active]
            error = np.hypot(ra[:, 0], ra[:, 1])
            step = self._newton_step(ya, ra)
            for _ in range(8):
                trial = ya - step
                trial_residual = self.sample(trial) - target[active]
                worse = np.hypot(trial_residual[:, 0], trial_residual[:, 1]) > error
                if not worse.any():
                    break
                step[worse] *= 0.5
            y[active], residual[active] = trial, trial_residual
            active = active[np.hypot(trial_residual[:, 0], trial_residual[:, 1]) >= tol]
        raise RuntimeError(
            f"forward_points did not converge for {len(active)} point(s) "
            f"(residual {np.abs(residual).max():.3g} px after {max_iter} steps)"
        )

    def _newton_step(self, y: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """J(y)^-1 residual per point, J the backward map's Jacobian; the plain residual
        where J is near singular."""
        _, grad = self._displacement_at(y)
        a, b = 1.0 + grad[:, 0, 0], grad[:, 0, 1]
        c, d = grad[:, 1, 0], 1.0 + grad[:, 1, 1]
        det = a * d - b * c
        ok = np.abs(det) > 1e-6
        safe = np.where(ok, det, 1.0)
        step = np.stack(
            [(d * residual[:, 0] - b * residual[:, 1]) / safe, (a * residual[:, 1] - c * residual[:, 0]) / safe],
            axis=1,
        )
        step[~ok] = residual[~ok]
        return step

    def displacement_magnitude(self) -> np.ndarray:
        """(h, w) float32 length of the displacement; 0 outside the roi."""
        mag = np.zeros(self.shape, np.float32)
        if not self.is_identity:
            dx, dy = self._cached_displacement
            x0, y0, x1, y1 = self.roi
            mag[y0:y1, x0:x1] = np.hypot(dx, dy)
        return mag

    @functools.cached_property
    def jacobian(self) -> JacobianStats:
        """Fold count and extreme Jacobian determinants; (0, 1, 1) for the identity."""
        if self.is_identity or min(self.map_x.shape) < 2:
            return JacobianStats(0, 1.0, 1.0)
        folds, lowest, highest = 0, np.inf, -np.inf
        rows = self.map_x.shape[0] - 1
        for top in range(0, rows, JACOBIAN_ROWS):  # float64 work a band of rows at a time
            band = slice(top, min(rows, top + JACOBIAN_ROWS) + 1)
            mx, my = self.map_x[band].astype(np.float64), self.map_y[band].astype(np.float64)
            mxx = np.diff(mx, axis=1)[:-1]
            mxy = np.diff(mx, axis=0)[:, :-1]
            myx = np.diff(my, axis=1)[:-1]
            myy = np.diff(my, axis=0)[:, :-1]
            det = mxx * myy - mxy * myx
            folds += int((det <= 0).sum())
            lowest, highest = min(lowest, float(det.min())), max(highest, float(det.max()))
        return JacobianStats(folds, lowest, highest)

    def min_jacobian(self) -> float:
        """``jacobian.min_jacobian``: > 0 means no fold."""
        return self.jacobian.min_jacobian

    def then(self, other: WarpField) -> WarpField:
        """The field equal to applying ``self`` and then ``other`` (one resampling)."""
        if self.shape != other.shape:
            raise ValueError(f"cannot compose fields of shapes {self.shape} and {other.shape}")
        if other.is_identity:
            return self
        if self.is_identity:
            return other
        roi = _union(self.roi, other.roi)
        # other's backward map over the union box (pixel-aligned: no interpolation)...
        at_x, at_y = pixel_grid(roi)
        ox0, oy0, ox1, oy1 = other.roi
        sl = (slice(oy0 - roi[1], oy1 - roi[1]), slice(ox0 - roi[0], ox1 - roi[0]))
        at_x[sl], at_y[sl] = other.map_x, other.map_y
        # ...then self's displacement where it points.
        dx, dy = self._displacement_where(at_x, at_y)
        return WarpField(self.shape, roi, at_x + dx, at_y + dy)

    def _displacement_where(self, at_x: np.ndarray, at_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This field's displacement (bilinear, zero outside the roi) at float32 positions.

        cv2.remap quantises positions to 1/32 px, which moves the displacement by at
        most 1/64 px times its gradient: far below the grid solve's own error.
        """
        dx, dy = self._cached_displacement
        local_x = at_x - np.float32(self.roi[0])
        local_y = at_y - np.float32(self.roi[1])
        return tuple(
            cv2.remap(d, local_x, local_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
            for d in (dx, dy)
        )

    def reframe(self, transform: np.ndarray, shape: tuple[int, int]) -> WarpField:
        """This deformation expressed in another frame of size ``shape``.

        ``transform`` (2x3) maps the new frame's pixel coordinates to this field's
        frame. The result B' satisfies B'(x) = T^-1(B(T(x))).
        """
        t = np.asarray(transform, dtype=np.float64).reshape(2, 3)
        lin = t[:, :2]
        if abs(np.linalg.det(lin)) < 1e-12:
            raise ValueError("reframe transform is singular")
        shape = (int(shape[0]), int(shape[1]))
        if self.is_identity:
            return WarpField.identity(shape)
        inv = cv2.invertAffineTransform(t)
        x0, y0, x1, y1 = self.roi
        corners = np.array([[x0 - 1, y0 - 1], [x1, y0 - 1], [x0 - 1, y1], [x1, y1]], np.float64)
        mapped = corners @ inv[:, :2].T + inv[:, 2]
        lo = np.floor(mapped.min(axis=0)).astype(int)
        hi = np.ceil(mapped.max(axis=0)).astype(int) + 1
        roi = (
            max(int(lo[0]), 0),
            max(int(lo[1]), 0),
            min(int(hi[0]), shape[1]),
            min(int(hi[1]), shape[0]),
        )
        if roi[0] >= roi[2] or roi[1] >= roi[3]:
            return WarpField.identity(shape)
        gx, gy = pixel_grid(roi)
        at_x = (lin[0, 0] * gx + lin[0, 1] * gy + t[0, 2]).astype(np.float32)
        at_y = (lin[1, 0] * gx + lin[1, 1] * gy + t[1, 2]).astype(np.float32)
        sampled = self._displacement_where(at_x, at_y)
        inv_lin = np.linalg.inv(lin)
        new_dx = inv_lin[0, 0] * sampled[0] + inv_lin[0, 1] * sampled[1]
        new_dy = inv_lin[1, 0] * sampled[0] + inv_lin[1, 1] * sampled[1]
        return WarpField.from_displacement(shape, roi, new_dx, new_dy)


def _union(a: Roi, b: Roi) -> Roi:
    if a[0] >= a[2] or a[1] >= a[3]:
        return b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def pixel_grid(roi: Roi) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = roi
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)
    return np.meshgrid(xs, ys)
