"""Warp fields: backward maps for ``cv2.remap``, solved on a coarse grid inside a box.

A :class:`WarpField` on an image of ``shape = (h, w)`` says, for each output pixel
(x, y) inside ``roi = (x0, y0, x1, y1)`` (ends exclusive), which source position it
samples: ``(map_x[y - y0, x - x0], map_y[y - y0, x - x0])``. Outside the roi the
field is the identity, so only the roi is ever solved, stored or resampled.
Pixel centres are at integer coordinates (OpenCV's convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

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

    def sample(self, points: np.ndarray) -> np.ndarray:
        """The backward map evaluated at (N, 2) output points (bilinear), float64."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.is_identity:
            return pts.copy()
        dx, dy = self.displacement()
        x0, y0 = self.roi[0], self.roi[1]
        local = pts - (x0, y0)
        return pts + np.stack([_bilinear(dx, local), _bilinear(dy, local)], axis=1)

    def forward_points(self, points: np.ndarray, *, tol: float = 1e-4, max_iter: int = 100) -> np.ndarray:
        """Where content at source ``points`` (N, 2) appears in the output.

        Inverts the backward map by fixed-point iteration y <- y - (B(y) - x), which
        converges while the displacement is a contraction (no folds). Raises
        RuntimeError if a point does not converge.
        """
        target = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        y = target.copy()
        if self.is_identity:
            return y
        for _ in range(max_iter):
            residual = self.sample(y) - target
            y -= residual
            if np.abs(residual).max(initial=0.0) < tol:
                return y
        raise RuntimeError(f"forward_points did not converge (residual {np.abs(residual).max():.3g} px)")

    def displacement_magnitude(self) -> np.ndarray:
        """(h, w) float32 length of the displacement; 0 outside the roi."""
        mag = np.zeros(self.shape, np.float32)
        if not self.is_identity:
            dx, dy = self.displacement()
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
        gx, gy = _pixel_grid(roi)
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
        composed = self.sample(other.sample(pts))
        h, w = roi[3] - roi[1], roi[2] - roi[0]
        return WarpField(
            self.shape,
            roi,
            composed[:, 0].reshape(h, w).astype(np.float32),
            composed[:, 1].reshape(h, w).astype(np.float32),
        )

    def attenuate(self, weight: np.ndarray) -> WarpField:
        """Scale the displacement by ``weight`` ((h, w) floats in [0, 1])."""
        weight = np.asarray(weight)
        if weight.shape != self.shape:
            raise ValueError(f"weight shape {weight.shape} does not match field shape {self.shape}")
        if self.is_identity:
            return self
        x0, y0, x1, y1 = self.roi
        wr = np.clip(weight[y0:y1, x0:x1].astype(np.float32), 0.0, 1.0)
        dx, dy = self.displacement()
        return WarpField.from_displacement(self.shape, self.roi, dx * wr, dy * wr)

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
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
        in_frame = pts @ lin.T + t[:, 2]
        dx, dy = self.displacement()
        local = in_frame - (x0, y0)
        d = np.stack([_bilinear(dx, local), _bilinear(dy, local)], axis=1)
        d_new = d @ np.linalg.inv(lin).T
        h, w = roi[3] - roi[1], roi[2] - roi[0]
        return WarpField.from_displacement(
            shape, roi, d_new[:, 0].reshape(h, w), d_new[:, 1].reshape(h, w)
        )


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
    """
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must be positive, got {shape}")
    step = DEFAULT_STEP if step is None else int(step)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    src, dst = prepare_controls(src, dst)
    if len(src) == 0 or np.array_equal(src, dst):
        return WarpField.identity((h, w))
    inner = _bbox(np.vstack([src, dst]))
    if roi is None:
        roi = _grow(inner, margin, (h, w))
    roi = _clip_roi(roi, (h, w))
    if roi[0] >= roi[2] or roi[1] >= roi[3]:
        return WarpField.identity((h, w))
    xs = _nodes(roi[0], roi[2], step)
    ys = _nodes(roi[1], roi[3], step)
    gx, gy = np.meshgrid(xs, ys)
    nodes = np.stack([gx.ravel(), gy.ravel()], axis=1)
    def exact(pts: np.ndarray) -> np.ndarray:
        return (mls_points(pts, dst, src, kind=kind, alpha=alpha) - pts) * _taper(pts, inner, roi)[:, None]

    disp = exact(nodes)
    dxg = disp[:, 0].reshape(len(ys), len(xs))
    dyg = disp[:, 1].reshape(len(ys), len(xs))
    dx = _upsample(dxg, xs - roi[0], ys - roi[1], roi)
    dy = _upsample(dyg, xs - roi[0], ys - roi[1], roi)
    if refine and step > 1:
        rx, ry = _refinement(exact, dst, roi, step, dxg, dyg, xs, ys)
        dx += rx
        dy += ry
    return WarpField.from_displacement((h, w), roi, dx, dy)


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
) -> WarpField:
    """Reference solver: the same field as :func:`solve_backward`, solved at every pixel."""
    h, w = int(shape[0]), int(shape[1])
    src, dst = prepare_controls(src, dst)
    if len(src) == 0 or np.array_equal(src, dst):
        return WarpField.identity((h, w))
    inner = _bbox(np.vstack([src, dst]))
    roi = _clip_roi(_grow(inner, margin, (h, w)) if roi is None else roi, (h, w))
    if roi[0] >= roi[2] or roi[1] >= roi[3]:
        return WarpField.identity((h, w))
    gx, gy = _pixel_grid(roi)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    mapped = mls_points(pts, dst, src, kind=kind, alpha=alpha, reference=True)
    disp = (mapped - pts) * _taper(pts, inner, roi)[:, None]
    rh, rw = gx.shape
    return WarpField.from_displacement((h, w), roi, disp[:, 0].reshape(rh, rw), disp[:, 1].reshape(rh, rw))


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


def _taper(pts: np.ndarray, inner: tuple[float, float, float, float], roi: Roi) -> np.ndarray:
    """1 inside ``inner``, falling smoothly to 0 at the roi's outer pixels."""
    x0, y0, x1, y1 = inner
    rx0, ry0, rx1, ry1 = roi[0], roi[1], roi[2] - 1, roi[3] - 1
    tx = np.minimum(_ramp(pts[:, 0], rx0, x0), _ramp(-pts[:, 0], -rx1, -x1))
    ty = np.minimum(_ramp(pts[:, 1], ry0, y0), _ramp(-pts[:, 1], -ry1, -y1))
    t = np.minimum(tx, ty)
    return t * t * (3 - 2 * t)


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


def _bilinear(arr: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``arr`` (h, w) at (N, 2) local (x, y); 0 outside the array."""
    h, w = arr.shape
    x, y = pts[:, 0], pts[:, 1]
    x0 = np.floor(x).astype(np.intp)
    y0 = np.floor(y).astype(np.intp)
    fx, fy = x - x0, y - y0
    out = np.zeros(len(pts), np.float64)
    for oy, wy in ((0, 1 - fy), (1, fy)):
        for ox, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + ox, y0 + oy
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            out[ok] += (wx * wy)[ok] * arr[yi[ok], xi[ok]]
    return out
