"""Moving-least-squares deformation (Schaefer, McPhail, Warren 2006), exact per point.

Points are float (x, y) pixel coordinates. The map f satisfies f(src_i) = dst_i
exactly at every control point; elsewhere it is the affine / similarity / rigid
transform that best fits the controls under weights w_i = 1 / |src_i - v|^(2 alpha).

Degenerate inputs have defined behaviour:
- no control points: identity;
- one control point (or all coincident): translation by dst - src;
- affine with fewer than 3 distinct points, or collinear points: similarity;
- repeated source points with the same target are merged; repeated source points
  with different targets raise ValueError (the map would be undefined there);
- an evaluation point exactly on a control point returns that control's target;
- control points outside the image are allowed (MLS is defined on the whole plane).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MlsKind = Literal["affine", "similarity", "rigid"]
KINDS: tuple[str, ...] = ("affine", "similarity", "rigid")

#: Squared distance below which an evaluation point counts as sitting on a control.
_ON_CONTROL_EPS2 = 1e-12
#: Evaluation points per block, to bound the (block, controls) temporaries.
_BLOCK = 65536


def prepare_controls(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate control points and merge exact duplicates.

    Returns float64 arrays (M, 2). Raises ValueError on shape mismatch, non-finite
    values, or one source point with two different targets.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape:
        raise ValueError(f"src and dst must both be (M, 2); got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("control points must be finite")
    if len(src) == 0:
        return src, dst
    _, first, inverse = np.unique(src, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(first) < len(src):
        conflict = np.any(dst != dst[first][inverse], axis=1)
        if conflict.any():
            i = int(np.flatnonzero(conflict)[0])
            raise ValueError(
                f"control point {src[i].tolist()} has conflicting targets "
                f"{dst[i].tolist()} and {dst[first][inverse[i]].tolist()}"
            )
        keep = np.sort(first)
        src, dst = src[keep], dst[keep]
    return src, dst


def mls_points(
    points: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    *,
    kind: MlsKind = "similarity",
    alpha: float = 1.0,
    reference: bool = False,
) -> np.ndarray:
    """Evaluate the MLS map defined by ``src -> dst`` at ``points`` (N, 2); returns (N, 2) float64.

    ``reference=True`` uses the textbook per-point formulation (centred controls per
    point, as in the paper): slower, independent of the fast moment form, kept as the
    exact reference for tests and benchmarks.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown MLS kind {kind!r}; expected one of {KINDS}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be (N, 2); got {pts.shape}")
    src, dst = prepare_controls(src, dst)
    if len(src) == 0:
        return pts.copy()
    if len(src) == 1:
        return pts + (dst[0] - src[0])
    if kind == "affine" and (len(src) < 3 or _collinear(src)):
        kind = "similarity"
    out = np.empty_like(pts)
    for start in range(0, len(pts), _BLOCK):
        block = pts[start : start + _BLOCK]
        solve = _reference_block if reference else _mls_block
        out[start : start + _BLOCK] = solve(block, src, dst, kind, alpha)
    return out


def _collinear(src: np.ndarray) -> bool:
    centred = src - src.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    return bool(s[1] <= 1e-9 * max(s[0], 1.0))


def _mls_block(v: np.ndarray, p: np.ndarray, q: np.ndarray, kind: str, alpha: float) -> np.ndarray:
    """MLS at points ``v`` via weighted moments of the controls (one matrix product).

    With W = sum w, p* = sum w p / W (likewise q*), every MLS sum over centred
    controls expands into raw moments, e.g. sum w p^.q^ = sum w p.q - W p*.q*.
    Coordinates are centred on the controls' mean first for conditioning.
    """
    origin = p.mean(axis=0)
    targets = q
    v, p, q = v - origin, p - origin, q - origin
    d2 = (v[:, 0, None] - p[None, :, 0]) ** 2 + (v[:, 1, None] - p[None, :, 1]) ** 2  # (N, M)
    on_control = d2 < _ON_CONTROL_EPS2
    w = np.maximum(d2, _ON_CONTROL_EPS2)
    w = 1.0 / (w if alpha == 1.0 else w**alpha)
    px, py, qx, qy = p[:, 0], p[:, 1], q[:, 0], q[:, 1]
    if kind == "affine":
        feats = [px, py, qx, qy, px * px, px * py, py * py, px * qx, px * qy, py * qx, py * qy]
    else:
        feats = [px, py, qx, qy, px * px + py * py, px * qx + py * qy, px * qy - py * qx]
    m = w @ np.stack([np.ones_like(px)] + feats, axis=1)  # (N, 1 + F)
    wsum = m[:, 0]
    ps = m[:, 1:3] / wsum[:, None]
    qs = m[:, 3:5] / wsum[:, None]
    vp = v - ps
    if kind == "affine":
        a = np.empty((len(v), 2, 2))
        b = np.empty((len(v), 2, 2))
        a[:, 0, 0] = m[:, 5] - wsum * ps[:, 0] * ps[:, 0]
        a[:, 0, 1] = a[:, 1, 0] = m[:, 6] - wsum * ps[:, 0] * ps[:, 1]
        a[:, 1, 1] = m[:, 7] - wsum * ps[:, 1] * ps[:, 1]
        b[:, 0, 0] = m[:, 8] - wsum * ps[:, 0] * qs[:, 0]
        b[:, 0, 1] = m[:, 9] - wsum * ps[:, 0] * qs[:, 1]
        b[:, 1, 0] = m[:, 10] - wsum * ps[:, 1] * qs[:, 0]
        b[:, 1, 1] = m[:, 11] - wsum * ps[:, 1] * qs[:, 1]
        # Rows on a control are overwritten below; keep their (cancelled) system regular.
        a[on_control.any(axis=1)] = np.eye(2)
        out = np.einsum("ni,nij->nj", vp, np.linalg.solve(a, b)) + qs
    else:
        # Complex form: a = sum w conj(p^) q^ / sum w |p^|^2; rigid normalises |a| = 1.
        mu = m[:, 5] - wsum * (ps * ps).sum(axis=1)
        re = m[:, 6] - wsum * (ps * qs).sum(axis=1)
        im = m[:, 7] - wsum * (ps[:, 0] * qs[:, 1] - ps[:, 1] * qs[:, 0])
        if kind == "rigid":
            mu = np.hypot(re, im)
        mu = np.where(mu > 0, mu, 1.0)
        re, im = re / mu, im / mu
        out = np.stack([re * vp[:, 0] - im * vp[:, 1], im * vp[:, 0] + re * vp[:, 1]], axis=1) + qs
    out += origin
    if on_control.any():
        rows, cols = np.nonzero(on_control)
        out[rows] = targets[cols]
    return out


def _reference_block(v: np.ndarray, p: np.ndarray, q: np.ndarray, kind: str, alpha: float) -> np.ndarray:
    """Textbook MLS (Schaefer et al. 2006, eqs. 5, 7, 8) with explicit centred controls."""
    d2 = ((v[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)  # (N, M)
    on_control = d2 < _ON_CONTROL_EPS2
    w = 1.0 / np.maximum(d2, _ON_CONTROL_EPS2) ** alpha
    wsum = w.sum(axis=1, keepdims=True)
    p_star = (w @ p) / wsum
    q_star = (w @ q) / wsum
    p_hat = p[None, :, :] - p_star[:, None, :]  # (N, M, 2)
    q_hat = q[None, :, :] - q_star[:, None, :]
    vp = v - p_star
    if kind == "affine":
        wp = w[:, :, None] * p_hat
        a = np.einsum("nmi,nmj->nij", wp, p_hat)
        b = np.einsum("nmi,nmj->nij", wp, q_hat)
        out = np.einsum("ni,nij->nj", vp, np.linalg.solve(a, b)) + q_star
    else:
        # A_i = w_i [p^_i; -p^_i_perp] [vp; -vp_perp]^T, f = sum q^_i A_i / mu + q*.
        perp = lambda a: np.stack([-a[..., 1], a[..., 0]], axis=-1)  # noqa: E731
        along = (q_hat * p_hat).sum(-1)[..., None] * vp[:, None, :]
        across = (q_hat * -perp(p_hat)).sum(-1)[..., None] * (-perp(vp))[:, None, :]
        f_vec = (w[:, :, None] * (along + across)).sum(axis=1)
        if kind == "similarity":
            mu = (w * (p_hat**2).sum(-1)).sum(axis=1)
            out = f_vec / np.where(mu > 0, mu, 1.0)[:, None] + q_star
        else:
            norm = np.linalg.norm(f_vec, axis=1)
            scale = np.linalg.norm(vp, axis=1) / np.where(norm > 0, norm, 1.0)
            out = f_vec * scale[:, None] + q_star
    if on_control.any():
        rows, cols = np.nonzero(on_control)
        out[rows] = q[cols]
    return out
