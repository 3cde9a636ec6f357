"""Simulated synthesis: one photo + its detections -> self-augmented before/after pairs.

Pure functions of (image, detections, config, seeds); no file I/O. For each usable face:

1. the photo is scaled so its long side is <= ``base_long_side`` (the *base frame*, never
   upscaled; per-axis scale recorded) and the face's landmarks are carried into it;
2. FFHQ alignment gives the ``crop_size``^2 *crop frame*; a chain of ops is sampled with
   ``rng_for(seed, "chain", source_id, face_index, edit_index)`` and planned there;
3. the chain's field is reframed into the base frame (the paste-back: the field is the
   identity outside the op boxes and tapers continuously into them, so no seam and no
   second resampling), then ``after = field.apply(before)`` (one resampling);
4. the edit region is every pixel the edit changed plus those the pasted field moves by
   more than ``warp.region_threshold_px`` (warps.region.change_region); K views, each with
   ``rng_for(seed, "view", source_id, face_index, edit_index, view)``, apply one
   SpatialTransform that keeps the whole region in view to before, after and mask alike;
   each view's mask adds the view's own changed pixels grown to JPEG blocks (view_mask).

An edit that cannot be made (degenerate face, fold at strength 1, no admissible view, ...)
becomes a rejects row (stage ``"synthesis"``) with a reason code; the other edits go on.
Coordinates are pixel (x, y) with pixel centres at integers; images RGB uint8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from detectors.records import PortraitDetections
from manifests.digests import sha256_hex
from manifests.schema import SCHEMA_VERSION, group_key, image_ext, pair_key
from pipeline import __version__
from pipeline.alignment import FaceAlignment, align_face
from pipeline.config import MirrorsetConfig
from pipeline.imageio import encode_image, encode_jpeg, encode_png
from pipeline.runner import SourceOutput
from pipeline.seeding import derive_seed
from warps.augment import AugmentError, SpatialTransform, apply_image, apply_mask, sample_transform
from warps.catalog import MissingLandmarks
from warps.chain import ChainPlan, FoldError, plan_chain, sample_chain
from warps.field import WarpField
from warps.landmarks import Landmarks
from warps.region import JPEG_BLOCK, change_region, view_mask

#: Version of the JSON parameter record stored with every pair.
RECORD_VERSION = 1
#: ``stage`` value of the rejects rows written here.
REJECT_STAGE = "synthesis"


class EditRejected(Exception):
    """One edit of one face cannot be made; ``code`` is the reason code stored in rejects."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, eq=False)
class BaseFrame:
    """The photo scaled to the pair frame: ``image`` (h, w, 3) and per-axis ``scale`` (sx, sy)."""

    image: np.ndarray
    scale: tuple[float, float]

    def from_photo(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) photo pixel coords -> base-frame pixel coords."""
        sx, sy = self.scale
        return (np.asarray(points, np.float64) + 0.5) * (sx, sy) - 0.5


@dataclass(frozen=True, eq=False)
class Edit:
    """One pasted edit in the base frame: ``after`` image, region ``mask`` (uint8 0/255)."""

    plan: ChainPlan
    field: WarpField
    after: np.ndarray
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    min_jacobian: float


def base_frame(photo: np.ndarray, long_side: int) -> BaseFrame:
    """``photo`` scaled (INTER_AREA) so its long side is <= ``long_side``; unchanged if it already is."""
    h, w = photo.shape[:2]
    factor = long_side / max(h, w)
    if factor >= 1.0:
        return BaseFrame(photo, (1.0, 1.0))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    image = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    return BaseFrame(image, (size[0] / w, size[1] / h))


def make_edit(
    base: np.ndarray, alignment: FaceAlignment, landmarks: Landmarks, calls: list, config: MirrorsetConfig
) -> Edit:
    """Plan ``calls`` in the crop frame of ``alignment`` and paste the warp into ``base``.

    ``landmarks`` are in the crop frame. Raises EditRejected when nothing can be pasted.
    """
    warp = config.simulated.warp
    size = alignment.size
    h, w = base.shape[:2]
    try:
        plan = plan_chain((size, size), landmarks, calls, settings=warp, window=True)
    except FoldError as exc:
        raise EditRejected("fold", str(exc)) from exc
    except MissingLandmarks as exc:
        raise EditRejected("missing_landmarks", str(exc)) from exc
    field = plan.field.reframe(alignment.matrix, (h, w))
    after = field.apply(base, warp.resampling)
    region = change_region(base, after, field, threshold_px=warp.region_threshold_px)
    if region.is_empty:
        raise EditRejected("empty_region", "the pasted warp changes no pixel")
    jacobian = field.min_jacobian()
    if jacobian < warp.min_jacobian:
        raise EditRejected("fold_after_paste", f"min Jacobian {jacobian:.3f} < {warp.min_jacobian} in the photo")
    return Edit(plan, field, after, region.mask, region.bbox, float(np.float32(jacobian)))


def sample_views(
    edit: Edit, image_size: tuple[int, int], config: MirrorsetConfig, seeds: list[int]
) -> list[SpatialTransform]:
    """One transform per seed, each keeping the edit's region box fully in view."""
    x0, y0, x1, y1 = edit.bbox
    box = (float(x0), float(y0), float(x1 - 1), float(y1 - 1))  # pixel-centre box
    views = []
    for seed in seeds:
        rng = np.random.Generator(np.random.PCG64(seed))
        try:
            views.append(sample_transform(rng, image_size, config.simulated.augment, must_contain=box))
        except AugmentError as exc:
            raise EditRejected(exc.code, exc.detail) from exc
    return views


def synthesize_source(
    photo: np.ndarray,
    detections: PortraitDetections,
    *,
    source_id: str,
    path: str,
    shard: str,
    config: MirrorsetConfig,
) -> SourceOutput:
    """All pairs (and rejects) of one photo, keys in increasing order."""
    sim = config.simulated
    base = base_frame(photo, sim.base_long_side)
    output = SourceOutput()
    for face_index in detections.usable_faces():
        face = detections.faces[face_index]
        try:
            alignment = align_face(base.from_photo(face.landmarks[:, :2]), sim.crop_size)
        except ValueError as exc:
            output.rejects.append(_reject(source_id, path, face_index, None, "degenerate_face", str(exc)))
            continue
        landmarks = Landmarks(face=alignment.to_crop(base.from_photo(face.landmarks[:, :2])))
        for edit_index in range(sim.edits_per_face):
            chain_seed = derive_seed(config.seed, "chain", source_id, face_index, edit_index)
            calls = sample_chain(
                np.random.Generator(np.random.PCG64(chain_seed)), config.subset,
                min_ops=sim.min_ops, max_ops=sim.max_ops, strengths=sim.strengths, reads=("face478",),
            )  # fmt: skip
            view_seeds = [
                derive_seed(config.seed, "view", source_id, face_index, edit_index, view)
                for view in range(sim.views)
            ]
            try:
                edit = make_edit(base.image, alignment, landmarks, calls, config)
                views = sample_views(edit, (base.image.shape[1], base.image.shape[0]), config, view_seeds)
            except EditRejected as exc:
                output.rejects.append(_reject(source_id, path, face_index, edit_index, exc.code, exc.detail))
                continue
            context = {
                "source_id": source_id, "face_index": face_index, "edit_index": edit_index,
                "shard": shard, "alignment": alignment, "base": base, "photo_size": photo.shape[1::-1],
                "chain_seed": chain_seed, "detections": detections,
            }  # fmt: skip
            for view, (transform, view_seed) in enumerate(zip(views, view_seeds)):
                sample, row = render_pair(base.image, edit, transform, view, view_seed, config, context)
                output.samples.append(sample)
                output.rows.append(row)
    return output


def render_pair(
    before: np.ndarray,
    edit: Edit,
    transform: SpatialTransform,
    view: int,
    view_seed: int,
    config: MirrorsetConfig,
    context: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One view: the webdataset sample (encoded members) and its PAIRS_SCHEMA row."""
    fmt = config.output.image_format
    ext = image_ext(fmt)
    source_id, face_index, edit_index = context["source_id"], context["face_index"], context["edit_index"]
    key = pair_key(source_id, face_index, edit_index, view)
    view_before, view_after = apply_image(transform, before), apply_image(transform, edit.after)
    block = JPEG_BLOCK if fmt == "jpeg" else 1
    mask = view_mask(view_before, view_after, apply_mask(transform, edit.mask, binary=True), block=block)
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if len(xs) else [0, 0, 0, 0]
    min_jacobian = edit.min_jacobian
    members = {
        f"after.{ext}": _encode(view_after, config),
        f"before.{ext}": _encode(view_before, config),
        "mask.png": encode_png(mask),
    }
    record = _parameter_record(key, edit, transform, view, view_seed, bbox, len(xs), min_jacobian, config, context)
    members["json"] = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    digest = {suffix: sha256_hex(data) for suffix, data in members.items()}
    row = {
        "pair_id": key,
        "subset": config.subset,
        "group_id": group_key(source_id, face_index, edit_index),
        "view": view,
        "source_id": source_id,
        "face_index": face_index,
        "shard": context["shard"],
        "key": key,
        "ops": [
            {"name": r.name, "strength": r.requested_strength, "applied_strength": r.applied_strength,
             "clamped": r.clamped}
            for r in edit.plan.records
        ],  # fmt: skip
        "aug_matrix": transform.matrix.ravel().tolist(),
        "width": transform.size[0],
        "height": transform.size[1],
        "seed": view_seed,
        "image_format": fmt,
        "sha256_before": digest[f"before.{ext}"],
        "sha256_after": digest[f"after.{ext}"],
        "sha256_mask": digest["mask.png"],
        "sha256_json": digest["json"],
        "region_bbox": bbox,
        "region_area_px": len(xs),
        "min_jacobian": min_jacobian,
    }
    return {"__key__": key, **members}, row


def code_versions() -> dict[str, str]:
    """Versions that can change the bytes of a pair."""
    return {
        "mirrorset": __version__,
        "schema": str(SCHEMA_VERSION),
        "record": str(RECORD_VERSION),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }


def _encode(rgb: np.ndarray, config: MirrorsetConfig) -> bytes:
    if config.output.image_format == "jpeg":
        return encode_jpeg(rgb, config.output.jpeg_quality)
    return encode_image(rgb, config.output.image_format)


def _parameter_record(
    key: str,
    edit: Edit,
    transform: SpatialTransform,
    view: int,
    view_seed: int,
    bbox: list[int],
    area: int,
    min_jacobian: float,
    config: MirrorsetConfig,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The JSON member of a pair: everything needed to understand and redo it."""
    base: BaseFrame = context["base"]
    detections: PortraitDetections = context["detections"]
    face = detections.faces[context["face_index"]]
    return {
        "record_version": RECORD_VERSION,
        "pair_id": key,
        "group_id": group_key(context["source_id"], context["face_index"], context["edit_index"]),
        "subset": config.subset,
        "source_id": context["source_id"],
        "face_index": context["face_index"],
        "edit_index": context["edit_index"],
        "view": view,
        "ops": [r.to_record() for r in edit.plan.records],
        "ops_frame": "crop",
        "crop": context["alignment"].to_record(),
        "base": {
            "size": [base.image.shape[1], base.image.shape[0]],
            "scale": list(base.scale),
            "photo_size": list(context["photo_size"]),
        },
        "aug": transform.to_record(),
        "region": {"bbox": bbox, "area_px": area, "threshold_px": config.simulated.warp.region_threshold_px},
        "min_jacobian": min_jacobian,
        "seeds": {"global": config.seed, "chain": context["chain_seed"], "view": view_seed},
        "image_format": config.output.image_format,
        "jpeg_quality": config.output.jpeg_quality if config.output.image_format == "jpeg" else None,
        "detector": {
            "models": [{"name": m.name, "sha256": m.sha256} for m in detections.models],
            "face_box": [float(v) for v in face.box],
            "face_score": float(face.score),
        },
        "versions": code_versions(),
    }


def _reject(source_id: str, path: str, face_index: int, edit_index: int | None, code: str, detail: str) -> dict:
    where = f"face {face_index}" + ("" if edit_index is None else f", edit {edit_index}")
    return {"source_id": source_id, "path": path, "stage": REJECT_STAGE, "reason": code, "detail": f"{where}: {detail}"}
