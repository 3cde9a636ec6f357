"""From one :class:`~pipeline.recipes.Edit` to its self-augmented pairs, one view at a time.

Every view applies one ``SpatialTransform`` (drawn from the view's seed, keeping the edit's
``must_contain`` box in view) to before, after and the masks alike, so every view of an
edit is an exact exemplar for every other. Per view this module encodes the members
(before/after in the configured format, the region mask and the per-op mask as PNG, the
JSON parameter record, the region-id map and the strength map) and builds the pairs row and one pair_ops row per op. Nothing is
kept after a view is yielded, so memory does not grow with the number of views.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from detectors.gates import inter_ocular
from manifests.schema import QA_FIELDS, group_key, image_ext, member_sha_columns, pair_key
from pipeline.imageio import encode_image, encode_jpeg, encode_map_png
from pipeline.recipes import Edit, EditRejected
from pipeline.regions import RegionMap
from warps.augment import AugmentError, SpatialTransform, apply_image, sample_transform, transform_points
from warps.catalog import CATALOG
from warps.region import JPEG_BLOCK, view_mask

#: Version of the JSON parameter record stored with every pair.
RECORD_VERSION = 2


@dataclass(frozen=True)
class PairContext:
    """Who a rendered edit belongs to and how its pairs are encoded."""

    subset: str
    source_id: str
    path: str
    photo_size: tuple[int, int]
    person_index: int
    face_index: int
    edit_index: int
    attempt: int
    shard: str
    split: str
    global_seed: int
    edit_seed: int
    image_format: str
    jpeg_quality: int
    detector_models: tuple[dict[str, str], ...]
    versions: dict[str, str]
    identity_model: dict[str, str] | None = None

    @property
    def group_id(self) -> str:
        return group_key(self.subset, self.source_id, self.person_index, self.edit_index)


@dataclass(frozen=True, eq=False)
class RenderedPair:
    """One view: the webdataset sample (``__key__`` + suffix -> bytes), its pairs row (all but
    the members' sha256 columns, which :func:`with_digests` adds from what the tar writer
    hashed as it wrote) and its pair_ops rows."""

    sample: dict[str, Any]
    row: dict[str, Any]
    op_rows: list[dict[str, Any]]


def sample_views(edit: Edit, seeds: list[int]) -> list[SpatialTransform]:
    """One transform per seed over the base frame, each keeping ``edit.must_contain`` in view;
    EditRejected when no admissible crop exists."""
    size = (edit.before.shape[1], edit.before.shape[0])
    views = []
    for seed in seeds:
        try:
            views.append(sample_transform(np.random.Generator(np.random.PCG64(seed)), size, edit.augment,
                                          must_contain=edit.must_contain))  # fmt: skip
        except AugmentError as exc:
            raise EditRejected(exc.code, exc.detail) from exc
    return views


def max_displacement(edit: Edit) -> float:
    """Largest displacement of the edit's field in base-frame pixels."""
    if edit.field.is_identity:
        return 0.0
    dx, dy = edit.field.displacement()
    return float(np.sqrt((dx * dx + dy * dy).max()))


def recipe_id(edit: Edit) -> str:
    """16 hex digits naming the op chain and requested strengths (same retouch, same id)."""
    chain = [[r.name, r.requested_strength] for r in edit.records]
    return hashlib.blake2b(json.dumps(chain).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, eq=False)
class ViewPixels:
    """One view of an edit before encoding, all warped by ``transform``: ``before``/``after``
    (h, w, 3); ``mask``, ``opmask``, ``regions`` (region ids) and ``strength`` (0..255)
    (h, w) uint8, ``strength`` None for a uniform edit (255 everywhere). ``changed`` (x0, y0,
    x1, y1): outside it ``after`` equals ``before`` and ``mask`` and ``opmask`` are zero."""

    transform: SpatialTransform
    before: np.ndarray
    after: np.ndarray
    mask: np.ndarray
    opmask: np.ndarray
    regions: np.ndarray
    strength: np.ndarray | None
    changed: tuple[int, int, int, int]


def warp_view(edit: Edit, transform: SpatialTransform, regions: RegionMap, *, lossy: bool) -> ViewPixels:
    """Apply ``transform`` to the edit's before, after, masks and maps alike (label maps
    nearest-neighbour, images and the strength map bilinear); ``lossy``: the images will be
    JPEG-encoded, so the mask covers whole 8 x 8 blocks around every change."""
    before = apply_image(transform, edit.before)
    block = JPEG_BLOCK if lossy else 1
    # Before and after differ, and the region and op masks are non-zero, only where the view
    # samples the field's box: the masks are made on that part of the view (its block-aligned
    # box), zero elsewhere, so their cost follows the edit rather than the view.
    x0, y0, x1, y1 = _changed_box(edit, transform, block)
    # warpAffine computes each output pixel from that pixel's own coordinates, so warping only
    # the view's top-left (x1, y1) corner gives exactly the whole warp's pixels there; outside
    # the box the whole warp of ``after`` equals ``before``'s.
    after = before.copy()
    if x1 > x0 and y1 > y0:
        corner = cv2.warpAffine(edit.after, transform.matrix, (x1, y1), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
        after[y0:y1, x0:x1] = corner[y0:y1, x0:x1]
    local = transform.matrix.copy()
    local[:, 2] -= (x0, y0)

    def warp_box(image: np.ndarray, flags: int) -> np.ndarray:
        return cv2.warpAffine(image, local, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_REFLECT_101)

    # The base region warped with "any overlap" (a superset of the pixels it reaches), plus the
    # view's own changed pixels grown to the JPEG blocks that hold them.
    mask = np.zeros(before.shape[:2], np.uint8)
    opmask = np.zeros(before.shape[:2], np.uint8)
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] = view_mask(before[y0:y1, x0:x1], after[y0:y1, x0:x1],
                                       warp_box(edit.region, cv2.INTER_LINEAR), block=block)  # fmt: skip
        opmask[y0:y1, x0:x1] = warp_box(edit.opmask, cv2.INTER_NEAREST)
    region_ids = cv2.warpAffine(regions.index, transform.matrix, transform.size, flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    strength = None
    if edit.strength_map is not None:
        strength = apply_image(transform, np.round(edit.strength_map * 255).astype(np.uint8))
    return ViewPixels(transform, before, after, mask, opmask, region_ids, strength, (x0, y0, x1, y1))


def _changed_box(edit: Edit, transform: SpatialTransform, block: int) -> tuple[int, int, int, int]:
    """The view's box (x0, y0, x1, y1; starts on the ``block`` grid, ends on it or at the view's
    edge) outside which before and after are equal and the masks empty: every view pixel whose
    bilinear footprint touches the field's box. The whole view when the view samples outside
    the base frame (reflected borders could bring the box back from anywhere)."""
    width, height = transform.size
    if edit.field.is_identity:
        return (0, 0, 0, 0)
    base_h, base_w = edit.before.shape[:2]
    inverse = cv2.invertAffineTransform(transform.matrix)
    view_corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], np.float64)
    sampled = view_corners @ inverse[:, :2].T + inverse[:, 2]
    if sampled.min() < 0 or (sampled[:, 0] > base_w - 1).any() or (sampled[:, 1] > base_h - 1).any():
        return (0, 0, width, height)
    rx0, ry0, rx1, ry1 = edit.field.roi
    corners = np.array([[rx0 - 1, ry0 - 1], [rx1, ry0 - 1], [rx0 - 1, ry1], [rx1, ry1]], np.float64)
    mapped = corners @ transform.matrix[:, :2].T + transform.matrix[:, 2]
    x0 = max(0, int(np.floor(mapped[:, 0].min())) - 2) // block * block
    y0 = max(0, int(np.floor(mapped[:, 1].min())) - 2) // block * block
    x1 = min(width, -(-(int(np.ceil(mapped[:, 0].max())) + 3) // block) * block)
    y1 = min(height, -(-(int(np.ceil(mapped[:, 1].max())) + 3) // block) * block)
    return (x0, y0, max(x0, x1), max(y0, y1))


def render_view(
    edit: Edit,
    pixels: ViewPixels,
    regions: RegionMap,
    view: int,
    view_seed: int,
    context: PairContext,
    measures: dict[str, Any],
) -> RenderedPair:
    """Encode view ``view`` of ``edit`` (its ``pixels``); ``measures`` are its QA columns
    (QA_FIELDS names; None or NaN: not measured) plus ``max_disp_base_px``, the edit's largest
    displacement in the base frame."""
    transform = pixels.transform
    x0, y0, x1, y1 = pixels.changed
    mask, opmask = pixels.mask[y0:y1, x0:x1], pixels.opmask[y0:y1, x0:x1]  # zero elsewhere
    area = cv2.countNonZero(mask) if mask.size else 0
    bbox = [0, 0, 0, 0]
    if area:
        x, y, w, h = cv2.boundingRect(mask)
        bbox = [x0 + x, y0 + y, x0 + x + w, y0 + y + h]
    key = pair_key(context.subset, context.source_id, context.person_index, context.edit_index, view)
    ext = image_ext(context.image_format)
    face_iod = None if edit.face is None else inter_ocular(transform_points(transform.matrix, edit.face))
    max_disp = measures["max_disp_base_px"] * transform.scale
    qa = {f.name: _finite(measures.get(f.name)) for f in QA_FIELDS}
    record = _parameter_record(edit, transform, key, view, view_seed, bbox, area, face_iod, max_disp, qa, context)
    record["regions"] = regions.to_record()
    members = {
        f"after.{ext}": _encode(pixels.after, context),
        f"before.{ext}": _encode(pixels.before, context),
        "json": json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False).encode(),
        "mask.png": encode_map_png(pixels.mask),
        "opmask.png": encode_map_png(pixels.opmask),
        "regions.png": encode_map_png(pixels.regions),
        "strength.png": _uniform_map_png(pixels.mask.shape) if pixels.strength is None else encode_map_png(pixels.strength),
    }
    row = {
        "pair_id": key,
        "subset": context.subset,
        "group_id": context.group_id,
        "recipe_id": record["recipe_id"],
        "ladder_id": edit.ladder_id,
        "split": context.split,
        "source_id": context.source_id,
        "person_index": context.person_index,
        "face_index": context.face_index,
        "edit_index": context.edit_index,
        "view": view,
        "attempt": context.attempt,
        "shard": context.shard,
        "key": key,
        "ops": [
            {"name": r.name, "strength": r.requested_strength, "applied_strength": r.applied_strength, "clamped": r.clamped}
            for r in edit.records
        ],
        "base_matrix": edit.frame.matrix.ravel().tolist(),
        "aug_matrix": transform.matrix.ravel().tolist(),
        "width": transform.size[0],
        "height": transform.size[1],
        "seed": view_seed,
        "image_format": context.image_format,
        "region_bbox": bbox,
        "region_area_px": area,
        "face_iod_px": face_iod,
        "max_disp_px": max_disp,
        **qa,
    }
    op_rows = [
        {
            "pair_id": key, "subset": context.subset, "group_id": context.group_id, "source_id": context.source_id,
            "split": context.split, "op_index": k, "name": r.name, "group": CATALOG[r.name].group,
            "strength": r.requested_strength, "applied_strength": r.applied_strength, "clamped": r.clamped,
            "area_px": int(np.count_nonzero(opmask & np.uint8(1 << k))),
        }
        for k, r in enumerate(edit.records)
    ]  # fmt: skip
    return RenderedPair({"__key__": key, **members}, row, op_rows)


def with_digests(row: dict[str, Any], written: dict[str, str]) -> dict[str, Any]:
    """``row`` with its sha256 columns (``member_sha_columns``) set from ``written`` (member
    suffix -> sha256 hex, as ``ShardTarWriter.write`` returns it); KeyError if a member is missing."""
    return {**row, **{column: written[suffix] for suffix, column in member_sha_columns(row["image_format"]).items()}}


def _finite(value: Any) -> Any:
    """None for a missing or NaN measurement (Parquet null, JSON null), else a plain number."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return int(value)


@functools.lru_cache(maxsize=64)
def _uniform_map_png(shape: tuple[int, int]) -> bytes:
    """The strength map of a uniform edit (255 everywhere), encoded once per view size."""
    return encode_map_png(np.full(shape, 255, np.uint8))


def _encode(rgb: np.ndarray, context: PairContext) -> bytes:
    if context.image_format == "jpeg":
        return encode_jpeg(rgb, context.jpeg_quality)
    return encode_image(rgb, context.image_format)


def _parameter_record(
    edit: Edit,
    transform: SpatialTransform,
    key: str,
    view: int,
    view_seed: int,
    bbox: list[int],
    area: int,
    face_iod: float | None,
    max_disp: float,
    qa: dict[str, Any],
    context: PairContext,
) -> dict[str, Any]:
    """The JSON member of a pair: everything needed to understand and redo it."""
    return {
        "record_version": RECORD_VERSION,
        "pair_id": key,
        "group_id": context.group_id,
        "recipe_id": recipe_id(edit),
        "ladder_id": edit.ladder_id or "",  # "" rather than null: loaders that infer types need one per field
        "subset": context.subset,
        "split": context.split,
        "source_id": context.source_id,
        "person_index": context.person_index,
        "face_index": context.face_index,
        "edit_index": context.edit_index,
        "attempt": context.attempt,
        "view": view,
        "ops": [r.to_record() for r in edit.records],
        **edit.record,
        "base": {**edit.frame.to_record(), "photo_size": list(context.photo_size)},
        "aug": transform.to_record(),
        "region": {"bbox": bbox, "area_px": area},
        "face_iod_px": None if face_iod is None else round(face_iod, 4),
        "max_disp_px": round(max_disp, 4),
        "qa": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in qa.items()},
        "identity_model": context.identity_model,
        "seeds": {"global": context.global_seed, "edit": context.edit_seed, "view": view_seed},
        "image_format": context.image_format,
        "jpeg_quality": context.jpeg_quality if context.image_format == "jpeg" else None,
        "detector": {"models": list(context.detector_models)},
        "versions": context.versions,
    }

