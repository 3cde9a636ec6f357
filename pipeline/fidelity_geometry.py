"""Per-pair QA, geometry: the applied field's folds and stretch, how well a view maps back
onto its base frame, and how landmark motion compares with the plan.

Pure functions of arrays. Coordinates are pixel (x, y) float64 with pixel centres at
integers; images RGB uint8 (H, W, 3); masks uint8 (H, W), > 0 inside. The *base frame* is
the photo frame the edit was pasted in (``pipeline.recipes``); a *view* is
``cv2.warpAffine(base_image, M, size, BORDER_REFLECT_101)`` with ``M`` (2, 3) mapping base
pixel coordinates to view pixel coordinates (``SpatialTransform.matrix``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from warps.field import WarpField

#: Pixels added around the edit region's box before the flow is estimated (context for DIS).
ALIGN_PAD_PX = 16
#: Percentile of the per-pixel misalignment reported as ``align_err_px``.
ALIGN_PERCENTILE = 99.0
#: The flow runs on 2 x 2 area means of the box (a quarter of the pixels); its vectors
#: are scaled back to base pixels. Sub-pixel flow keeps the error of true views near 0.1 px.
ALIGN_DOWNSAMPLE = 2


def align_err_px(
    base_before: np.ndarray,
    base_after: np.ndarray,
    view_before: np.ndarray,
    view_after: np.ndarray,
    matrix: np.ndarray,
    region: np.ndarray,
    *,
    within: tuple[int, int, int, int] | None = None,
    flow: cv2.DISOpticalFlow | None = None,
) -> float:
    """p99 misalignment (px, base frame) of one view against its base frame, over the edit region.

    ``base_*`` (h, w, 3) and ``view_*`` (vh, vw, 3) uint8; ``matrix`` (2, 3) maps base to view
    pixel coordinates (the one recorded for the view); ``region`` (h, w) uint8 is the edit
    mask in the base frame. Each base image is carried into the view by the *recorded*
    ``matrix`` exactly as views are drawn (bilinear, ``BORDER_REFLECT_101``) on the view's
    part that shows the region's box grown by :data:`ALIGN_PAD_PX`, and DIS optical flow
    (grey, sub-pixel) measures how far the view's own pixels lie from that reference; each
    flow vector is mapped back to base pixels through the inverse of the matrix's linear
    part. Per pixel the larger of the two lengths (before, after) counts, so a view whose
    ``after`` (or ``before``) was shifted, or whose recorded matrix is not the one applied,
    shows the error, while a true view compares two images with the same resampling
    history (their difference is the rounding of the box offset, about 0.01 px). The flow
    runs at 1 / :data:`ALIGN_DOWNSAMPLE` resolution (area means of both images alike).
    Scored: view pixels whose base position lies in ``region``. NaN when there are none.
    ``within`` (x0, y0, x1, y1): a box outside which ``region`` is zero (an edit's field box),
    so only it is searched for the region. ``flow``: a reusable DIS instance (default: a new
    ``PRESET_ULTRAFAST`` one).
    """
    matrix = np.asarray(matrix, np.float64).reshape(2, 3)
    box = _padded_box(region, ALIGN_PAD_PX, within)
    if box is None:
        return float("nan")
    vh, vw = view_after.shape[:2]
    bx0, by0, bx1, by1 = box
    corners = np.array([[bx0, by0], [bx1 - 1, by0], [bx0, by1 - 1], [bx1 - 1, by1 - 1]], np.float64)
    corners = corners @ matrix[:, :2].T + matrix[:, 2]
    view_box = (max(0, int(np.floor(corners[:, 0].min()))), max(0, int(np.floor(corners[:, 1].min()))),
                min(vw, int(np.ceil(corners[:, 0].max())) + 1), min(vh, int(np.ceil(corners[:, 1].max())) + 1))  # fmt: skip
    if view_box[2] - view_box[0] < ALIGN_DOWNSAMPLE or view_box[3] - view_box[1] < ALIGN_DOWNSAMPLE:
        return float("nan")
    x0, y0, x1, y1 = _even_box(view_box, (vh, vw), ALIGN_DOWNSAMPLE)
    local = matrix.copy()
    local[:, 2] -= (x0, y0)  # base coords -> view-box coords
    size = (x1 - x0, y1 - y0)
    inside = cv2.warpAffine(np.ascontiguousarray(region, np.uint8), local, size, flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    small = (size[0] // ALIGN_DOWNSAMPLE, size[1] // ALIGN_DOWNSAMPLE)
    inside = cv2.resize((inside > 0).astype(np.uint8), small, interpolation=cv2.INTER_AREA) > 0
    if not inside.any():
        return float("nan")
    back = ALIGN_DOWNSAMPLE * np.linalg.inv(matrix[:, :2])  # small-view flow -> base pixels
    dis = flow or cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    worst = np.zeros(int(np.count_nonzero(inside)), np.float64)
    for base, view in ((base_before, view_before), (base_after, view_after)):
        reference = cv2.warpAffine(base, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        uv = dis.calc(_grey_small(reference, small), _grey_small(view[y0:y1, x0:x1], small), None)[inside]
        moved = uv.astype(np.float64) @ back.T
        np.maximum(worst, moved[:, 0] ** 2 + moved[:, 1] ** 2, out=worst)
    return float(np.sqrt(np.percentile(worst, ALIGN_PERCENTILE)))


def motion_gain(planned: np.ndarray, realized: np.ndarray, *, min_planned_px: float = 1.0) -> float:
    """Least-squares gain g of ``realized ~ g * planned`` over (N, 2) motion vectors.

    g = sum(planned . realized) / sum(|planned|^2): 1 when the measured motion equals the
    plan, 0.5 when it is half as large, negative when it goes the other way. Rows whose
    realized motion is not finite (not measured) are left out. NaN when no planned motion
    reaches ``min_planned_px`` (too small to measure).
    """
    planned = np.asarray(planned, np.float64).reshape(-1, 2)
    realized = np.asarray(realized, np.float64).reshape(-1, 2)
    if planned.shape != realized.shape:
        raise ValueError(f"planned {planned.shape} and realized {realized.shape} differ")
    measured = np.isfinite(realized).all(axis=1)
    planned, realized = planned[measured], realized[measured]
    if len(planned) == 0 or np.hypot(planned[:, 0], planned[:, 1]).max() < min_planned_px:
        return float("nan")
    return float((planned * realized).sum() / (planned * planned).sum())


def collateral_ratio(
    before: np.ndarray,
    after: np.ndarray,
    groups: Mapping[str, tuple[int, ...] | np.ndarray],
    allowed: set[str] | frozenset[str],
    *,
    target: tuple[int, ...] | np.ndarray = (),
) -> float:
    """Largest motion of a held landmark / largest motion of a target landmark.

    ``before``/``after`` (N, 2) are the same landmarks in one frame; ``groups`` maps a
    group name to landmark indices; ``allowed`` names the groups the op may move.
    Target landmarks: the ``allowed`` groups plus the explicit ``target`` indices (the
    op's moving anchors); held landmarks: every other grouped landmark not in the target.
    NaN when nothing is held or no target landmark moves.
    """
    unknown = set(allowed) - set(groups)
    if unknown:
        raise ValueError(f"allowed groups {sorted(unknown)} are not in groups {sorted(groups)}")
    motion = np.hypot(*(np.asarray(after, np.float64) - np.asarray(before, np.float64)).T)
    target_idx = set(int(i) for i in target)
    for name in allowed:
        target_idx.update(int(i) for i in groups[name])
    held_idx = {int(i) for name, idx in groups.items() if name not in allowed for i in idx} - target_idx
    if not held_idx or not target_idx:
        return float("nan")
    largest = float(motion[sorted(target_idx)].max())
    if not largest > 0:
        return float("nan")
    return float(motion[sorted(held_idx)].max()) / largest


#: Context (px) around the tracked points for :func:`track_points`.
TRACK_PAD_PX = 32
#: :func:`follow_landmarks` tracks larger faces scaled down to this size (px between the eye
#: centres; smaller faces at their own size: upsampling leaves too little texture per window) ...
FOLLOW_IOD_PX = 120.0
#: ... with a Lucas-Kanade window of this side (px at that scale) over this many pyramid levels;
#: a point tracked back from ``after`` must land within FOLLOW_RETURN_PX of where it started.
FOLLOW_WINDOW_PX = 5
FOLLOW_LEVELS = 4
FOLLOW_RETURN_PX = 1.0


def follow_landmarks(before: np.ndarray, after: np.ndarray, points: np.ndarray, iod: float) -> np.ndarray:
    """Where the landmarks at ``points`` (N, 2) of ``before`` (h, w, 3) are in ``after``, re-found
    by their appearance: pyramidal Lucas-Kanade tracking (grey) of each point from ``before`` to
    ``after``, both scaled down alike when the face's inter-ocular distance ``iod`` exceeds
    :data:`FOLLOW_IOD_PX`. Image evidence only (no field, no face-shape prior); a small window
    follows each landmark's own neighbourhood rather than the motion around it. A point counts
    only if tracking it back from ``after`` returns it to within :data:`FOLLOW_RETURN_PX` of its
    start (forward-backward check). (N, 2) float64 in the same frame; NaN rows for points lost.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if not iod > 0:
        raise ValueError(f"iod must be > 0, got {iod}")
    scale = min(1.0, FOLLOW_IOD_PX / iod)
    h, w = before.shape[:2]
    pad = TRACK_PAD_PX / scale
    x0, y0 = max(0, int(np.floor(pts[:, 0].min() - pad))), max(0, int(np.floor(pts[:, 1].min() - pad)))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max() + pad)) + 1), min(h, int(np.ceil(pts[:, 1].max() + pad)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the points lie off the image: nothing to track
        return np.full_like(pts, np.nan)
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))

    def scaled(rgb: np.ndarray) -> np.ndarray:
        grey = _grey(rgb[y0:y1, x0:x1])
        return grey if scale == 1 else cv2.resize(grey, size, interpolation=cv2.INTER_AREA)

    sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    start = ((pts - (x0, y0) + 0.5) * (sx, sy) - 0.5).astype(np.float32).reshape(-1, 1, 2)
    first, second = scaled(before), scaled(after)
    found, status = _lucas_kanade(first, second, start)
    back, status_back = _lucas_kanade(second, first, found)
    lost = (status == 0) | (status_back == 0) | (np.hypot(*(back - start).reshape(-1, 2).T) > FOLLOW_RETURN_PX)
    moved = (found.reshape(-1, 2).astype(np.float64) + 0.5) / (sx, sy) - 0.5 + (x0, y0)
    moved[lost] = np.nan
    return moved


def _lucas_kanade(first: np.ndarray, second: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points tracked from ``first`` into ``second`` (N, 1, 2) float32, status (N,) uint8)."""
    found, status, _ = cv2.calcOpticalFlowPyrLK(
        first, second, points, None, winSize=(FOLLOW_WINDOW_PX, FOLLOW_WINDOW_PX), maxLevel=FOLLOW_LEVELS,
        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3),
    )  # fmt: skip
    return found, status.ravel()


def track_points(before: np.ndarray, after: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Where content at ``points`` (N, 2) of ``before`` (h, w, 3) appears in ``after``, by DIS flow.

    Image evidence only (no field): dense flow (DIS ``PRESET_MEDIUM``, grey) from ``before``
    to ``after`` on the points' bounding box grown by :data:`TRACK_PAD_PX`, sampled
    bilinearly at the points. (N, 2) float64 in the same frame.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    h, w = before.shape[:2]
    lo = np.floor(pts.min(axis=0)).astype(int) - TRACK_PAD_PX
    hi = np.ceil(pts.max(axis=0)).astype(int) + TRACK_PAD_PX + 1
    x0, y0, x1, y1 = max(0, lo[0]), max(0, lo[1]), min(w, hi[0]), min(h, hi[1])
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    uv = dis.calc(_grey(before[y0:y1, x0:x1]), _grey(after[y0:y1, x0:x1]), None)
    local = (pts - (x0, y0)).astype(np.float32)
    moved = np.stack([
        cv2.remap(uv[..., k], local[:, :1], local[:, 1:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[:, 0]
        for k in (0, 1)
    ], axis=1)  # fmt: skip
    return pts + moved


def _padded_box(
    mask: np.ndarray, pad: int, within: tuple[int, int, int, int] | None = None
) -> tuple[int, int, int, int] | None:
    """Bounding box (ends exclusive) of the mask's non-zero pixels grown by ``pad``, clipped;
    only the part ``within`` (x0, y0, x1, y1; default all) is searched."""
    ox, oy, ex, ey = within if within is not None else (0, 0, mask.shape[1], mask.shape[0])
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask[oy:ey, ox:ex], np.uint8))
    if w == 0:
        return None
    x, y = x + ox, y + oy
    rows, cols = mask.shape
    return (max(0, x - pad), max(0, y - pad), min(cols, x + w + pad), min(rows, y + h + pad))


def _even_box(box: tuple[int, int, int, int], shape: tuple[int, ...], k: int) -> tuple[int, int, int, int]:
    """``box`` with sides shrunk or grown (inside the image) to multiples of ``k``."""
    x0, y0, x1, y1 = box
    h, w = shape[:2]
    extra_x, extra_y = (-(x1 - x0)) % k, (-(y1 - y0)) % k
    x1, y1 = x1 + extra_x, y1 + extra_y
    x0, y0 = x0 - max(0, x1 - w), y0 - max(0, y1 - h)
    x1, y1 = min(x1, w), min(y1, h)
    if x0 < 0 or y0 < 0:  # the image itself is smaller than the grown box: trim instead
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = x0 + (x1 - x0) // k * k, y0 + (y1 - y0) // k * k
    return x0, y0, x1, y1


def _grey_small(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(_grey(rgb), size, interpolation=cv2.INTER_AREA)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))
