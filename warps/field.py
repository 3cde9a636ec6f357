"""Warp fields: backward maps for ``cv2.remap``, solved on a coarse grid inside a box.

A :class:`WarpField` on an image of ``shape = (h, w)`` says, for each output pixel
(x, y) inside ``roi = (x0, y0, x1, y1)`` (ends exclusive), which source position it
samples: ``(map_x[y - y0, x - x0], map_y[y - y0, x - x0])``. Outside the roi the
field is the identity, so only the roi is ever solved, stored or resampled.
Pixel centres are at integer coordinates (OpenCV's convention).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from warps.mls import MlsKind, mls_points, prepare_controls

Roi = tuple[int, int, int, int]

#: Default grid step in pixels; see docs/warps.md for the error it gives.
DEFAULT_STEP = 8
#: Default margin around the control points, as a fraction of their extent.
DEFAULT_MARGIN = 0.25


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
        gx, gy = _pixel_grid(roi)
        return WarpField(shape, roi, (gx + dx).astype(np.float32), (gy + dy).astype(np.float32))

    @property
    def is_identity(self) -> bool:
        return self.map_x.size == 0

    def displacement(self) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) float32 over the roi: map minus the identity."""
        gx, gy = _pixel_grid(self.roi)
        return self.map_x - gx, self.map_y - gy

    def apply(self, image: np.ndarray, *, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Resample ``image`` through the field; pixels outside the roi are copied exactly."""
        if image.shape[:2] != self.shape:
            raise ValueError(f"image shape {image.shape[:2]} does not match field shape {self.shape}")
        out = image.copy()
        if self.is_identity:
            return out
        x0, y0, x1, y1 = self.roi
        out[y0:y1, x0:x1] = cv2.remap(
            image, self.map_x, self.map_y, interpolation, borderMode=cv2.BORDER_REFLECT_101
        )
        return out

    @functools.cached_property
    def _cached_displacement(self) -> tuple[np.ndarray, np.ndarray]:
        return self.displacement()

    @functools.cached_property
    def _padded_displacement(self) -> np.ndarray:
        """(h + 2, w + 2, 2) float64 displacement of the roi with a zero border."""
        dx, dy = self._cached_displacement
        padded = np.zeros((dx.shape[0] + 2, dx.shape[1] + 2, 2))
        padded[1:-1, 1:-1, 0] = dx
        padded[1:-1, 1:-1, 1] = dy
        return padded

    def sample(self, points: np.ndarray) -> np.ndarray:
        """The backward map evaluated at (N, 2) output points (bilinear), float64."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.is_identity:
            return pts.copy()
        return pts + self._displacement_at(pts)[0]

    def _displacement_at(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear displacement (N, 2) at output points and its derivative (N, 2, 2)
        [component, d/dx or d/dy]; zero outside the roi (continuous at its edge)."""
        padded = self._padded_displacement
        h, w = padded.shape[0] - 2, padded.shape[1] - 2
        local = pts - (self.roi[0], self.roi[1])
        cell = np.floor(local)
        frac = local - cell
        ix = cell[:, 0].astype(np.intp) + 1
        iy = cell[:, 1].astype(np.intp) + 1
        inside = (ix >= 0) & (ix <= w) & (iy >= 0) & (iy <= h)
        ix, iy = np.where(inside, ix, 0), np.where(inside, iy, 0)
        v00, v10 = padded[iy, ix], padded[iy, ix + 1]
        v01, v11 = padded[iy + 1, ix], padded[iy + 1, ix + 1]
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

    def min_jacobian(self) -> float:
        """Minimum determinant of d(map)/d(x, y) by forward differences; 1.0 for the identity."""
        if self.is_identity or min(self.map_x.shape) < 2:
            return 1.0
        mx, my = self.map_x.astype(np.float64), self.map_y.astype(np.float64)
        mxx = np.diff(mx, axis=1)[:-1]
        mxy = np.diff(mx, axis=0)[:, :-1]
        myx = np.diff(my, axis=1)[:-1]
        myy = np.diff(my, axis=0)[:, :-1]
        return float((mxx * myy - mxy * myx).min())

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
        at_x, at_y = _pixel_grid(roi)
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
        gx, gy = _pixel_grid(roi)
        at_x = (lin[0, 0] * gx + lin[0, 1] * gy + t[0, 2]).astype(np.float32)
        at_y = (lin[1, 0] * gx + lin[1, 1] * gy + t[1, 2]).astype(np.float32)
        sampled = self._displacement_where(at_x, at_y)
        inv_lin = np.linalg.inv(lin)
        new_dx = inv_lin[0, 0] * sampled[0] + inv_lin[0, 1] * sampled[1]
        new_dy = inv_lin[1, 0] * sampled[0] + inv_lin[1, 1] * sampled[1]
        return WarpField.from_displacement(shape, roi, new_dx, new_dy)


def solve_backward(
    shape: tuple[int, int],
    src: np.ndarray,
    dst: np.ndarray,
    *,
    kind: MlsKind = "similarity",
    alpha: float = 1.0,
    step: int | None = None,
    roi: Roi | None = None,
    margin: float = DEFAULT_MARGIN,
    refine: bool = True,
    window: bool = False,
) -> WarpField:
    """The warp whose output shows the content at ``src`` (M, 2) moved to ``dst``.

    The backward map is the MLS map dst -> src, solved on grid nodes at exact pixel
    positions (roi origin + 0, step, 2 step, ..., and the last row/column) and
    upsampled bilinearly. The default roi is the bounding box of all control points
    grown by ``margin`` times their extent; the displacement is tapered to zero across
    that margin so the field is continuous at the roi edge (the controls themselves lie
    where the taper is 1). Controls that do not move still matter: they hold the image.
    With ``refine`` (default) the grid is corrected near the controls (see
    :func:`_refinement`), which keeps the worst error well below a pixel at step 8.
    A roi side on the image border is not tapered, unless ``window`` says the image is
    a window onto a larger one (e.g. an aligned face crop that will be reframed).
    """
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must be positive, got {shape}")
    step = DEFAULT_STEP if step is None else int(step)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    box = _solve_box((h, w), src, dst, roi, margin)
    if box is None:
        return WarpField.identity((h, w))
    src, dst, inner, roi = box
    xs = _nodes(roi[0], roi[2], step)
    ys = _nodes(roi[1], roi[3], step)
    gx, gy = np.meshgrid(xs, ys)
    nodes = np.stack([gx.ravel(), gy.ravel()], axis=1)
    def exact(pts: np.ndarray) -> np.ndarray:
        return (mls_points(pts, dst, src, kind=kind, alpha=alpha) - pts) * _taper(pts, inner, roi, (h, w), window)[:, None]

    disp = exact(nodes)
    dxg = disp[:, 0].reshape(len(ys), len(xs))
    dyg = disp[:, 1].reshape(len(ys), len(xs))
    dx = _upsample(dxg, xs - roi[0], ys - roi[1], roi)
    dy = _upsample(dyg, xs - roi[0], ys - roi[1], roi)
    if refine and step > 1:
        rx, ry = _refinement(exact, dst, roi, step, dxg, dyg, xs, ys)
        dx += rx
        dy += ry
        _pin_near_controls(exact, dst, roi, dx, dy)
    return WarpField.from_displacement((h, w), roi, dx, dy)


#: Pixels closer than this to a control are solved exactly (blended out to twice it).
PIN_RADIUS_PX = 1.5


def _pin_near_controls(exact, controls, roi, dx: np.ndarray, dy: np.ndarray) -> None:
    """Exact values at the pixels next to the controls, in place.

    Controls a pixel or less apart (iris on eyelid, lip lines) make MLS bend faster
    than any lattice resolves; the few pixels around them are solved exactly, with a
    smoothstep blend from ``PIN_RADIUS_PX`` out to twice that radius.
    """
    outer = 2 * PIN_RADIUS_PX
    reach = int(np.ceil(outer))
    offsets = np.stack(np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1)), -1).reshape(-1, 2)
    pixels = np.unique((np.round(controls).astype(np.int64)[:, None, :] + offsets[None]).reshape(-1, 2), axis=0)
    x0, y0, x1, y1 = roi
    pixels = pixels[(pixels[:, 0] >= x0) & (pixels[:, 0] < x1) & (pixels[:, 1] >= y0) & (pixels[:, 1] < y1)]
    if len(pixels) == 0:
        return
    pts = pixels.astype(np.float64)
    dist, _ = cKDTree(controls).query(pts)
    near = dist < outer
    pts, pixels, dist = pts[near], pixels[near], dist[near]
    t = np.clip((outer - dist) / (outer - PIN_RADIUS_PX), 0.0, 1.0)
    weight = (t * t * (3 - 2 * t)).astype(np.float32)
    values = exact(pts).astype(np.float32)
    iy, ix = pixels[:, 1] - y0, pixels[:, 0] - x0
    dx[iy, ix] += weight * (values[:, 0] - dx[iy, ix])
    dy[iy, ix] += weight * (values[:, 1] - dy[iy, ix])


def _refinement(exact, controls, roi, step, dxg, dyg, xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """Correction of the coarse grid near the controls, where MLS bends most.

    On a fine lattice (step // 4) within 2 steps of any control (in the output frame),
    the residual exact - coarse is computed and upsampled bilinearly, weighted by a
    taper that is 1 within one step of a control and 0 at two steps, so the
    corrected field stays continuous. Cost grows with the number of controls only.
    """
    fine = max(1, step // 4)
    radius = 2.0 * step
    fxs = _nodes(roi[0], roi[2], fine)
    fys = _nodes(roi[1], roi[3], fine)
    dist = _lattice_distance(controls, fxs, fys)
    near = dist < radius
    rx = np.zeros(dist.shape)
    ry = np.zeros(dist.shape)
    if near.any():
        iy, ix = np.nonzero(near)
        pts = np.stack([fxs[ix], fys[iy]], axis=1)
        local = pts - (roi[0], roi[1])
        coarse = np.stack(
            [_grid_bilinear(dxg, xs - roi[0], ys - roi[1], local), _grid_bilinear(dyg, xs - roi[0], ys - roi[1], local)],
            axis=1,
        )
        weight = np.clip((radius - dist[near]) / (radius - step), 0.0, 1.0)
        weight = weight * weight * (3 - 2 * weight)
        residual = (exact(pts) - coarse) * weight[:, None]
        rx[near], ry[near] = residual[:, 0], residual[:, 1]
    ox, oy = fxs - roi[0], fys - roi[1]
    return _upsample(rx, ox, oy, roi), _upsample(ry, ox, oy, roi)


def _lattice_distance(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Approximate distance (px) from each lattice node to the nearest point (ny, nx).

    Points are rasterised to their nearest node and cv2.distanceTransform measures in
    node units; the error (under one lattice spacing) only shifts the smooth taper.
    """
    seeds = np.full((len(ys), len(xs)), 255, np.uint8)
    ix = np.clip(np.searchsorted(xs, points[:, 0]), 0, len(xs) - 1)
    iy = np.clip(np.searchsorted(ys, points[:, 1]), 0, len(ys) - 1)
    inside = (points[:, 0] >= xs[0] - 0.5) & (points[:, 0] <= xs[-1] + 0.5)
    inside &= (points[:, 1] >= ys[0] - 0.5) & (points[:, 1] <= ys[-1] + 0.5)
    seeds[iy[inside], ix[inside]] = 0
    if not inside.any():
        return np.full(seeds.shape, np.inf)
    spacing = xs[1] - xs[0] if len(xs) > 1 else 1.0
    return cv2.distanceTransform(seeds, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64) * spacing


def _grid_bilinear(grid: np.ndarray, xs: np.ndarray, ys: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear value of node values ``grid`` (ny, nx) at points inside the node span."""
    ix = np.clip(np.searchsorted(xs, pts[:, 0], side="right") - 1, 0, max(len(xs) - 2, 0))
    iy = np.clip(np.searchsorted(ys, pts[:, 1], side="right") - 1, 0, max(len(ys) - 2, 0))
    if len(xs) == 1 or len(ys) == 1:
        return grid[iy, ix].astype(np.float64)
    fx = (pts[:, 0] - xs[ix]) / (xs[ix + 1] - xs[ix])
    fy = (pts[:, 1] - ys[iy]) / (ys[iy + 1] - ys[iy])
    top = grid[iy, ix] * (1 - fx) + grid[iy, ix + 1] * fx
    bottom = grid[iy + 1, ix] * (1 - fx) + grid[iy + 1, ix + 1] * fx
    return top * (1 - fy) + bottom * fy


def solve_backward_dense(
    shape: tuple[int, int],
    src: np.ndarray,
    dst: np.ndarray,
    *,
    kind: MlsKind = "similarity",
    alpha: float = 1.0,
    roi: Roi | None = None,
    margin: float = DEFAULT_MARGIN,
    window: bool = False,
) -> WarpField:
    """Reference solver: the same field as :func:`solve_backward`, solved at every pixel."""
    h, w = int(shape[0]), int(shape[1])
    box = _solve_box((h, w), src, dst, roi, margin)
    if box is None:
        return WarpField.identity((h, w))
    src, dst, inner, roi = box
    gx, gy = _pixel_grid(roi)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    mapped = mls_points(pts, dst, src, kind=kind, alpha=alpha, reference=True)
    disp = (mapped - pts) * _taper(pts, inner, roi, (h, w), window)[:, None]
    rh, rw = gx.shape
    return WarpField.from_displacement((h, w), roi, disp[:, 0].reshape(rh, rw), disp[:, 1].reshape(rh, rw))


def _solve_box(
    shape: tuple[int, int], src: np.ndarray, dst: np.ndarray, roi: Roi | None, margin: float
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float], Roi] | None:
    """(src, dst, controls' bounding box, roi) both solvers share; None when the field is the identity."""
    src, dst = prepare_controls(src, dst)
    if len(src) == 0 or np.array_equal(src, dst):
        return None
    inner = _bbox(np.vstack([src, dst]))
    roi = _clip_roi(_grow(inner, margin, shape) if roi is None else roi, shape)
    if roi[0] >= roi[2] or roi[1] >= roi[3]:
        return None
    return src, dst, inner, roi


def _nodes(lo: int, hi: int, step: int) -> np.ndarray:
    """Grid node coordinates lo, lo + step, ..., and hi - 1 (always included)."""
    nodes = np.arange(lo, hi, step, dtype=np.float64)
    if nodes[-1] != hi - 1:
        nodes = np.append(nodes, hi - 1)
    return nodes


def _upsample(grid: np.ndarray, xs: np.ndarray, ys: np.ndarray, roi: Roi) -> np.ndarray:
    """Bilinear interpolation of node values at every integer pixel of the roi (float32)."""
    w, h = roi[2] - roi[0], roi[3] - roi[1]
    ix, fx = _interval(xs, w)
    iy, fy = _interval(ys, h)
    g = grid.astype(np.float32)
    rows = g[:, ix] * (1 - fx) + g[:, ix + 1] * fx  # (ny, w)
    return rows[iy] * (1 - fy)[:, None] + rows[iy + 1] * fy[:, None]


def _interval(nodes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For pixels 0..n-1: index of the node interval and the fraction within it."""
    if len(nodes) == 1:
        return np.zeros(n, np.intp), np.zeros(n, np.float32)
    px = np.arange(n, dtype=np.float64)
    idx = np.clip(np.searchsorted(nodes, px, side="right") - 1, 0, len(nodes) - 2)
    frac = (px - nodes[idx]) / (nodes[idx + 1] - nodes[idx])
    return idx, frac.astype(np.float32)


def _taper(
    pts: np.ndarray, inner: tuple[float, float, float, float], roi: Roi, shape: tuple[int, int], window: bool
) -> np.ndarray:
    """1 inside ``inner``, falling smoothly (C1) to 0 at the roi's outer pixels.

    A roi side on the image border does not taper (nothing lies beyond it to stay
    continuous with, and tapering there would squeeze the warp against the edge),
    unless the image is a ``window`` onto a larger one.
    """
    h, w = (np.inf, np.inf) if window else shape
    x0, y0, x1, y1 = inner
    rx0, ry0, rx1, ry1 = roi[0], roi[1], roi[2] - 1, roi[3] - 1
    sides = (
        _ramp(pts[:, 0], rx0, x0) if roi[0] > 0 or window else None,
        _ramp(-pts[:, 0], -rx1, -x1) if roi[2] < w else None,
        _ramp(pts[:, 1], ry0, y0) if roi[1] > 0 or window else None,
        _ramp(-pts[:, 1], -ry1, -y1) if roi[3] < h else None,
    )
    # A product of smoothsteps is C1 everywhere; a min() would crease the field along
    # the box diagonals, which bilinear upsampling follows badly.
    taper = np.ones(len(pts))
    for t in sides:
        if t is not None:
            taper *= t * t * (3 - 2 * t)
    return taper


def _ramp(v: np.ndarray, zero_at: float, one_at: float) -> np.ndarray:
    if one_at <= zero_at:
        return np.ones_like(v)
    return np.clip((v - zero_at) / (one_at - zero_at), 0.0, 1.0)


def _bbox(points: np.ndarray) -> tuple[float, float, float, float]:
    return (
        float(points[:, 0].min()),
        float(points[:, 1].min()),
        float(points[:, 0].max()),
        float(points[:, 1].max()),
    )


def _grow(box: tuple[float, float, float, float], margin: float, shape: tuple[int, int]) -> Roi:
    x0, y0, x1, y1 = box
    pad = margin * max(x1 - x0, y1 - y0) + 2 * DEFAULT_STEP
    return (
        int(np.floor(x0 - pad)),
        int(np.floor(y0 - pad)),
        int(np.ceil(x1 + pad)) + 1,
        int(np.ceil(y1 + pad)) + 1,
    )


def _clip_roi(roi: Roi, shape: tuple[int, int]) -> Roi:
    h, w = shape
    x0, y0, x1, y1 = (int(v) for v in roi)
    return (max(x0, 0), max(y0, 0), min(x1, w), min(y1, h))


def _union(a: Roi, b: Roi) -> Roi:
    if a[0] >= a[2] or a[1] >= a[3]:
        return b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _pixel_grid(roi: Roi) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = roi
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)
    return np.meshgrid(xs, ys)
