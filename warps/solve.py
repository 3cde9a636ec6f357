"""The grid MLS solver: control points -> a :class:`~warps.field.WarpField` inside a box.

The backward map is the MLS map dst -> src (so content at ``src`` appears at ``dst``),
solved on grid nodes at exact pixel positions and upsampled bilinearly, refined exactly
near the controls, and multiplied by a *weight* that brings the displacement to zero
at the box edge (so the field is continuous where it meets the identity outside).

The weight is either

- a **box taper** (default): 1 over the controls' bounding box, falling smoothly (C1)
  to 0 across a margin around it; or
- a **falloff** (:class:`Falloff`): 1 within ``inner`` px of the moving controls, falling
  smoothly to 0 at ``outer`` px. It bounds the op's reach by distance, so features away
  from the moving ones stay exactly still whatever the global MLS fit does there.

A :class:`~warps.hold.Hold` then zeroes the displacement over held regions (other
features, other people), pixel by pixel, with a smooth feather.

A box side on the image border is not tapered (the field reaches the edge), unless
``window`` says the image is a window onto a larger one (e.g. an aligned face crop that
will be reframed into the photo): then that side tapers to 0 at the border over at
least the margin, even when controls lie in or beyond the ramp (they are attenuated
there: a window cannot move what it cuts off without a seam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from scipy.spatial import cKDTree

from warps.field import Roi, WarpField, pixel_grid
from warps.hold import Hold
from warps.mls import MlsKind, mls_points, prepare_controls

#: Default grid step in pixels; see docs/warps.md for the error it gives.
DEFAULT_STEP = 8
#: Default margin around the control points, as a fraction of their extent.
DEFAULT_MARGIN = 0.25
#: Pixels closer than this to a control are solved exactly (blended out to twice it).
PIN_RADIUS_PX = 1.5

Weight = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Falloff:
    """Displacement weight by the distance d (px, output frame) from the moving controls'
    sources and targets: 1 for d <= ``inner``, a smoothstep down to 0 at ``outer``."""

    inner: float
    outer: float

    def __post_init__(self) -> None:
        if not 0 <= self.inner < self.outer:
            raise ValueError(f"falloff needs 0 <= inner < outer, got {self.inner}, {self.outer}")


@dataclass(frozen=True)
class _Support:
    """What both solvers share: merged controls, the box and the weight over it."""

    shape: tuple[int, int]
    src: np.ndarray
    dst: np.ndarray
    roi: Roi
    weight: Weight

    def share(self, hold: Hold | None) -> np.ndarray | None:
        """Per-pixel weight of ``hold`` over the roi (None: nothing held)."""
        if hold is None:
            return None
        moves = np.any(self.src != self.dst, axis=1)
        return hold.weight(self.roi, np.vstack([self.src[moves], self.dst[moves]]))

    def live(self, share: np.ndarray | None) -> Weight:
        """The weight times the hold's share at the nearest pixel: 0 where nothing moves."""
        if share is None:
            return self.weight
        x0, y0, x1, y1 = self.roi

        def weight(pts: np.ndarray) -> np.ndarray:
            ix = np.clip(np.round(pts[:, 0]).astype(np.intp) - x0, 0, x1 - x0 - 1)
            iy = np.clip(np.round(pts[:, 1]).astype(np.intp) - y0, 0, y1 - y0 - 1)
            return self.weight(pts) * (share[iy, ix] > 0)

        return weight

    def field(self, share: np.ndarray | None, dx: np.ndarray, dy: np.ndarray) -> WarpField:
        """The field of displacement (dx, dy) over the roi, times the hold's ``share``."""
        if share is not None:
            dx, dy = dx * share, dy * share
        return WarpField.from_displacement(self.shape, self.roi, dx, dy)


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
    falloff: Falloff | None = None,
    hold: Hold | None = None,
) -> WarpField:
    """The warp whose output shows the content at ``src`` (M, 2) moved to ``dst``.

    Grid nodes sit at exact pixel positions (roi origin + 0, step, 2 step, ..., and the
    last row/column). The default roi is the controls' bounding box grown by ``margin``
    times its extent plus two steps (box taper), or the moving controls' bounding box
    grown by ``falloff.outer`` (falloff). Controls that do not move still matter: they
    hold the image. With ``refine`` (default) the grid is corrected near the controls
    (:func:`_refinement`), which keeps the worst error well below a pixel at step 8.
    """
    h, w = _check_shape(shape)
    step = DEFAULT_STEP if step is None else int(step)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    support = _support((h, w), src, dst, roi, margin, step, window, falloff)
    if support is None:
        return WarpField.identity((h, w))
    src, dst, roi = support.src, support.dst, support.roi
    share = support.share(hold)
    weight = support.live(share)  # held pixels are zeroed at the end: skip solving them

    def exact(pts: np.ndarray) -> np.ndarray:
        out = np.zeros_like(pts)
        wt = weight(pts)
        live = wt > 0
        if live.any():
            out[live] = (mls_points(pts[live], dst, src, kind=kind, alpha=alpha) - pts[live]) * wt[live, None]
        return out

    xs = _nodes(roi[0], roi[2], step)
    ys = _nodes(roi[1], roi[3], step)
    gx, gy = np.meshgrid(xs, ys)
    disp = exact(np.stack([gx.ravel(), gy.ravel()], axis=1))
    dxg = disp[:, 0].reshape(len(ys), len(xs))
    dyg = disp[:, 1].reshape(len(ys), len(xs))
    dx = _upsample(dxg, xs - roi[0], ys - roi[1], roi)
    dy = _upsample(dyg, xs - roi[0], ys - roi[1], roi)
    free = dst[weight(dst) > 0]  # controls inside held regions need no refinement
    if refine and step > 1 and len(free):
        rx, ry = _refinement(exact, free, roi, step, dxg, dyg, xs, ys)
        dx += rx
        dy += ry
        _pin_near_controls(exact, free, roi, dx, dy)
    return support.field(share, dx, dy)


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
    falloff: Falloff | None = None,
    hold: Hold | None = None,
    reference: bool = False,
    step: int | None = None,
) -> WarpField:
    """The field :func:`solve_backward` approximates, solved at every pixel of the same
    box with the same weight. ``reference=True`` uses the textbook MLS formulation
    (:func:`warps.mls.mls_points`) instead of the fast moment form; ``step`` only sizes
    the default box, as it does for the grid solver."""
    h, w = _check_shape(shape)
    step = DEFAULT_STEP if step is None else int(step)
    support = _support((h, w), src, dst, roi, margin, step, window, falloff)
    if support is None:
        return WarpField.identity((h, w))
    gx, gy = pixel_grid(support.roi)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    share = support.share(hold)
    wt = support.live(share)(pts)
    disp = np.zeros_like(pts)
    live = wt > 0
    mapped = mls_points(pts[live], support.dst, support.src, kind=kind, alpha=alpha, reference=reference)
    disp[live] = (mapped - pts[live]) * wt[live, None]
    rh, rw = gx.shape
    return support.field(share, disp[:, 0].reshape(rh, rw), disp[:, 1].reshape(rh, rw))


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must be positive, got {shape}")
    return h, w


def _support(
    shape: tuple[int, int],
    src: np.ndarray,
    dst: np.ndarray,
    roi: Roi | None,
    margin: float,
    step: int,
    window: bool,
    falloff: Falloff | None,
) -> _Support | None:
    """Controls, box and weight; None when the field is the identity."""
    src, dst = prepare_controls(src, dst)
    if len(src) == 0 or np.array_equal(src, dst):
        return None
    moves = np.any(src != dst, axis=1)
    if falloff is not None:
        reach = np.vstack([src[moves], dst[moves]])
        nominal = _grow(_bbox(reach), falloff.outer) if roi is None else roi
        ramp = falloff.outer - falloff.inner
        tree = cKDTree(reach)

        def within(pts: np.ndarray) -> np.ndarray:
            d, _ = tree.query(pts)
            return _smoothstep((falloff.outer - d) / ramp)
    else:
        inner = _bbox(np.vstack([src, dst]))
        pad = margin * max(inner[2] - inner[0], inner[3] - inner[1]) + 2 * step
        nominal = _grow(inner, pad) if roi is None else roi
        ramp = pad
        within = None
    clipped = _clip_roi(nominal, shape)
    if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
        return None
    sides = _side_ramps(nominal, clipped, shape, ramp, window, box_taper=falloff is None)

    def weight(pts: np.ndarray) -> np.ndarray:
        wt = np.ones(len(pts)) if within is None else within(pts)
        for axis, sign, edge, width in sides:
            wt *= _smoothstep(sign * (pts[:, axis] - edge) / width)
        return wt

    return _Support(shape, src, dst, clipped, weight)


def _side_ramps(
    nominal: Roi, clipped: Roi, shape: tuple[int, int], ramp: float, window: bool, box_taper: bool
) -> list[tuple[int, float, float, float]]:
    """(axis, sign, zero_at, width) for each tapered box side.

    The taper is 0 at the outermost pixel of the side and 1 at ``ramp`` px inside. Box
    taper: every side (for the default box the ramp then ends at the controls' bounding
    box). Falloff: only sides the image border clipped (the falloff is already 0 at the
    others). A side on the image border tapers only for a ``window``.
    """
    h, w = shape
    x0, y0, x1, y1 = clipped
    edges = ((0, 1.0, x0, nominal[0] < 0 or (box_taper and x0 > 0), x0 == 0),
             (0, -1.0, x1 - 1, nominal[2] > w or (box_taper and x1 < w), x1 == w),
             (1, 1.0, y0, nominal[1] < 0 or (box_taper and y0 > 0), y0 == 0),
             (1, -1.0, y1 - 1, nominal[3] > h or (box_taper and y1 < h), y1 == h))  # fmt: skip
    sides = []
    for axis, sign, edge, tapered, on_border in edges:
        if not tapered or (on_border and not window):
            continue
        sides.append((axis, sign, float(edge), max(float(ramp), 1.0)))
    return sides


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


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
    weight = _smoothstep((outer - dist) / (outer - PIN_RADIUS_PX)).astype(np.float32)
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
        weight = _smoothstep((radius - dist[near]) / (radius - step))
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
    # a * (1 - f) + b * f, in place: the same float32 roundings without roi-sized temporaries.
    rows = g[:, ix]  # (ny, w)
    rows *= 1 - fx
    right = g[:, ix + 1]
    right *= fx
    rows += right
    out = rows[iy]
    out *= (1 - fy)[:, None]
    below = rows[iy + 1]
    below *= fy[:, None]
    out += below
    return out


def _interval(nodes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For pixels 0..n-1: index of the node interval and the fraction within it."""
    if len(nodes) == 1:
        return np.zeros(n, np.intp), np.zeros(n, np.float32)
    px = np.arange(n, dtype=np.float64)
    idx = np.clip(np.searchsorted(nodes, px, side="right") - 1, 0, len(nodes) - 2)
    frac = (px - nodes[idx]) / (nodes[idx + 1] - nodes[idx])
    return idx, frac.astype(np.float32)


def _bbox(points: np.ndarray) -> tuple[float, float, float, float]:
    return (
        float(points[:, 0].min()),
        float(points[:, 1].min()),
        float(points[:, 0].max()),
        float(points[:, 1].max()),
    )


def _grow(box: tuple[float, float, float, float], pad: float) -> Roi:
    x0, y0, x1, y1 = box
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
