"""Pieces every warping recipe shares: landmarks of a detected person, and turning a
planned field into an :class:`~pipeline.recipes.Edit`'s pixels and masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.records import PortraitDetections
from pipeline.recipes import EditRejected
from warps.field import WarpField
from warps.landmarks import Landmarks
from warps.chain import WarpSettings
from warps.region import change_region, edit_region

#: Bits of the op mask: a chain has at most 8 ops.
MAX_CHAIN_OPS = 8


@dataclass(frozen=True, eq=False)
class Pasted:
    """``after`` image, ``region`` mask (uint8 0/255) with its ``bbox`` (x0, y0, x1, y1; ends
    exclusive; all 0 when empty) and per-op ``opmask`` (uint8 bits)."""

    after: np.ndarray
    region: np.ndarray
    bbox: tuple[int, int, int, int]
    opmask: np.ndarray

    def region_box(self, empty_detail: str) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1), inclusive pixel bounds of the region; EditRejected
        ``empty_region`` with ``empty_detail`` when it is empty."""
        x0, y0, x1, y1 = self.bbox
        if x1 <= x0:
            raise EditRejected("empty_region", empty_detail)
        return float(x0), float(y0), float(x1 - 1), float(y1 - 1)


def person_landmarks(detections: PortraitDetections, person_index: int) -> Landmarks:
    """What the op catalog reads of person ``person_index``, in photo pixel coords: their face
    mesh (if a face is assigned to them), their pose if it passed its check, their box and
    outline, and every other person's outline (or box) to hold still."""
    face = next((f for f in detections.faces if f.person_index == person_index), None)
    pose = next((p for p in detections.poses if p.person_index == person_index), None)
    outlines = detections.outlines(person_index)
    return Landmarks(
        face=None if face is None else face.landmarks[:, :2],
        pose=None if pose is None else pose.landmarks[:, :2],
        pose_visibility=None if pose is None else np.clip(pose.landmarks[:, 3], 0.0, 1.0),
        person_box=detections.persons[person_index].box,
        outline=outlines.outline if outlines.outline is not None and len(outlines.outline) >= 3 else None,
        hold=tuple(_hold_polygon(outline, box) for _, outline, box in outlines.others),
    )


def _hold_polygon(outline: np.ndarray | None, box: np.ndarray) -> np.ndarray:
    """Another person's silhouette, or their box as a 4-point polygon when they have none."""
    if outline is not None and len(outline) >= 3:
        return outline
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def paste(before: np.ndarray, field: WarpField, op_fields: list[WarpField], warp: WarpSettings) -> Pasted:
    """Apply ``field`` to ``before`` (``warp.resampling``) and derive the masks.

    The region (``warps.region.change_region``) is every pixel the field moves by more than
    ``warp.region_threshold_px`` or whose value changed at all; bit k of the op mask marks the
    pixels op k's own field moves by more than that threshold (each op's share of a composed
    edit stays recoverable).
    """
    if len(op_fields) > MAX_CHAIN_OPS:
        raise ValueError(f"a chain holds at most {MAX_CHAIN_OPS} ops, got {len(op_fields)}")
    after = field.apply(before, warp.resampling)
    region = change_region(before, after, field, threshold_px=warp.region_threshold_px)
    opmask = np.zeros(before.shape[:2], np.uint8)
    for bit, op_field in enumerate(op_fields):
        moved = edit_region(op_field, threshold_px=warp.region_threshold_px)
        x0, y0, x1, y1 = moved.bbox
        opmask[y0:y1, x0:x1] |= np.where(moved.mask[y0:y1, x0:x1] > 0, np.uint8(1 << bit), np.uint8(0))
    return Pasted(after, region.mask, region.bbox, opmask)


def strength_ramp(shape: tuple[int, int], box: tuple[float, float, float, float], rng: np.random.Generator,
                  low: float) -> tuple[np.ndarray, dict]:  # fmt: skip
    """A smooth ramp (h, w) float32 from ``low`` to 1 across ``box`` (x0, y0, x1, y1) along a
    random direction (smoothstep, constant beyond the box), and its JSON description."""
    angle = float(rng.uniform(0.0, 2.0 * np.pi))
    direction = np.array([np.cos(angle), np.sin(angle)])
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ direction
    start, stop = float(corners.min()), float(max(corners.max(), corners.min() + 1.0))
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    t = np.clip((xs * direction[0] + ys * direction[1] - start) / (stop - start), 0.0, 1.0)
    ramp = (low + (1.0 - low) * t * t * (3.0 - 2.0 * t)).astype(np.float32)
    return ramp, {"kind": "linear_smoothstep", "direction": direction.round(6).tolist(),
                  "span": [round(start, 3), round(stop, 3)], "low": low}  # fmt: skip


def scale_field(field: WarpField, strength: np.ndarray) -> WarpField:
    """``field`` with its displacement multiplied by ``strength`` (h, w) pixel by pixel."""
    if field.is_identity:
        return field
    x0, y0, x1, y1 = field.roi
    dx, dy = field.displacement()
    local = strength[y0:y1, x0:x1]
    return WarpField.from_displacement(field.shape, field.roi, dx * local, dy * local)
