"""The simulated subset: random chains of the 8 reference facial ops on every usable face.

Per face, once (drawn from the face's frame seed): the base frame (``simulated.framing``), by
default a square around the face whose inter-ocular distance is drawn log-uniformly from
``framing.iod_px`` (never more than ``framing.max_upscale`` times the photo's resolution), or
the whole photo (``base: photo``). Every edit of the face shares it.

Per edit: ``edits_per_face`` random chains, then the rungs of the face's strength ladders
(one op per ladder, drawn once, at each of ``ladders.strengths`` with one sign):

1. FFHQ alignment of the face in the base frame gives the ``crop_size``^2 crop frame; the
   chain is planned there (carried landmarks, fold and stretch clamps);
2. the chain's field is reframed into the base frame (the paste-back: identity outside the
   op boxes, tapering continuously into them); with ``spatial_strength.probability`` a random
   chain's displacement is scaled by a smooth ramp across its region; then it is applied once.

The views are then re-crops of the base frame that keep the edit region in view.
"""

from __future__ import annotations

import math

import numpy as np

from detectors.gates import inter_ocular
from detectors.records import PortraitDetections
from manifests.digests import array_digest
from pipeline.alignment import FaceAlignment, align_face
from pipeline.framing import BaseFrame, FramingRejected, face_frame, photo_frame
from pipeline.recipes import Edit, EditFamily, EditRejected, Target, TargetReject
from pipeline.recipes.common import paste, scale_field, strength_ramp
from pipeline.seeding import derive_seed, rng_for
from warps.catalog import MissingLandmarks, OpCall, ops_for_subset
from warps.chain import ChainPlan, FoldError, WarpSettings, plan_chain, sample_chain
from warps.field import WarpField
from warps.landmarks import Landmarks


class SimulatedRecipe:
    """The simulated subset (module docstring); ``config`` is a ``MirrorsetConfig``."""

    subset = "simulated"

    def __init__(self, config) -> None:
        self.sim = config.simulated
        self.seed = config.seed
        framing = self.sim.framing
        if framing.base == "face":
            side = framing.frame_size
            self.nominal_pixels = int(side * side * float(np.mean(self.sim.augment.area_fraction)))
        else:
            side = framing.photo_long_side
            self.nominal_pixels = int(side * side * 0.75 * float(np.mean(self.sim.augment.area_fraction)))
        self.max_attempts = self.sim.max_attempts
        self.min_disp_px = self.sim.min_disp_px
        self._last_frame: tuple[bytes, BaseFrame] | None = None

    def targets(self, source_id: str, detections: PortraitDetections) -> tuple[list[Target], list[TargetReject]]:
        targets, rejects = [], []
        framing = self.sim.framing
        usable = detections.usable_faces()
        for face_index, face in enumerate(detections.faces):
            failed = [v for v in face.verdicts if not v.passed]
            if face_index not in usable and failed:
                rejects.append(TargetReject(face.person_index, failed[0].code, f"face {face_index}: {failed[0].code} "
                                            f"(value {failed[0].value:.3g}, threshold {failed[0].threshold:.3g})"))
        if not usable and not rejects:
            reason = detections.reject_reason() or "no_face"
            rejects.append(TargetReject(None, reason, f"no usable face ({reason})"))
        for face_index in usable:
            face = detections.faces[face_index]
            if framing.base == "face":
                reach = face.inter_ocular * framing.max_upscale
                if reach < framing.iod_px[0]:
                    rejects.append(TargetReject(
                        face.person_index, "face_too_small_for_output",
                        f"face {face_index}: inter-ocular {face.inter_ocular:.1f} px reaches {reach:.1f} px at the "
                        f"{framing.max_upscale}x upscale limit, below the {framing.iod_px[0]:.0f} px minimum",
                    ))  # fmt: skip
                    continue
            payload = self._payload(source_id, face.person_index)
            family = EditFamily(views=self.sim.views, count=len(payload) - 1)
            targets.append(Target(face.person_index, face_index, (family,), payload))
        return targets, rejects

    def _payload(self, source_id: str, person: int) -> tuple:
        """(frame seed, then one entry per edit: None for a random chain, or
        (ladder_id, op, strength) for a ladder rung)."""
        ladders = self.sim.ladders
        names = [spec.name for spec in ops_for_subset("simulated") if spec.reads == "face478"]
        rungs = []
        for k in range(ladders.per_face):
            rng = rng_for(self.seed, "ladder", source_id, person, k)
            op = names[int(rng.integers(len(names)))]
            sign = 1 if rng.random() < 0.5 else -1
            ladder_id = f"{source_id}-p{person:02d}-l{k:02d}"
            rungs.extend((ladder_id, op, sign * strength) for strength in ladders.strengths)
        return (derive_seed(self.seed, "frame", source_id, person), *([None] * self.sim.edits_per_face), *rungs)

    def draws(self, target: Target, edit_index: int) -> bool:
        return target.payload[1 + edit_index] is None  # a random chain; a ladder rung is fixed

    def make_edit(
        self, photo: np.ndarray, detections: PortraitDetections, target: Target, edit_index: int,
        rng: np.random.Generator,
    ) -> Edit:
        sim = self.sim
        face_photo = detections.faces[target.face_index].landmarks[:, :2].astype(np.float64)
        try:
            frame = self._frame_of(photo, face_photo, target.payload[0])
            face = frame.from_photo(face_photo)
            alignment = align_face(face, sim.crop_size)
        except ValueError as exc:
            raise EditRejected("degenerate_face", str(exc)) from exc
        rung = target.payload[1 + edit_index]
        if rung is None:
            calls = sample_chain(
                rng, "simulated", min_ops=sim.min_ops, max_ops=sim.max_ops, strengths=sim.strengths, reads=("face478",)
            )
        else:
            calls = [OpCall(rung[1], rung[2])]
        h, w = frame.image.shape[:2]
        plan, field, op_fields = plan_in_crop(alignment, face, calls, sim.warp, (h, w))
        record = {"ops_frame": "crop", "crop": alignment.to_record(), "strength_map": {"kind": "uniform"}}
        strength = None
        if rung is None and rng.random() < sim.spatial_strength.probability:
            x0, y0, x1, y1 = field.roi
            strength, record["strength_map"] = strength_ramp((h, w), (x0, y0, x1 - 1, y1 - 1), rng, sim.spatial_strength.low)
            field = scale_field(field, strength)
            op_fields = [scale_field(f, strength) for f in op_fields]
            if field.min_jacobian() < sim.warp.min_jacobian:
                raise EditRejected("fold", "the spatially varying strength folds the field")
        pasted = paste(frame.image, field, op_fields, sim.warp)
        region_box = pasted.region_box("the pasted warp moves no pixel by more than the threshold")
        return Edit(
            before=frame.image,
            after=pasted.after,
            region=pasted.region,
            opmask=pasted.opmask,
            field=field,
            records=plan.records,
            frame=frame,
            must_contain=region_box,
            augment=sim.augment,
            face=face,
            face_after=field.forward_points(face),
            strength_map=strength,
            ladder_id=None if rung is None else rung[0],
            record=record,
        )

    def _frame_of(self, photo: np.ndarray, face: np.ndarray, frame_seed: int) -> BaseFrame:
        """The face's base frame, made once and kept (read-only) for the face's next edits: the
        same frame seed, photo size and landmarks give the same frame, and resizing it is about
        a seventh of an edit's cost (14 of 103 ms, profiled on the simulated sample photos)."""
        key = array_digest(frame_seed, photo.shape, face)
        if self._last_frame is None or self._last_frame[0] != key:
            self._last_frame = None  # release the previous frame before making the next
            frame = self._frame(photo, face, np.random.Generator(np.random.PCG64(frame_seed)))
            frame.image.setflags(write=False)
            self._last_frame = (key, frame)
        return self._last_frame[1]

    def _frame(self, photo: np.ndarray, face: np.ndarray, rng: np.random.Generator) -> BaseFrame:
        framing = self.sim.framing
        if framing.base == "photo":
            return photo_frame(photo, framing.photo_long_side)
        lo, hi = framing.iod_px
        # Inside the range by a rounding margin: the frame's integer size moves the scale by < 0.5 px / side.
        target_iod = math.exp(rng.uniform(math.log(lo * 1.01), math.log(max(hi * 0.99, lo * 1.01))))
        alignment = align_face(face, 8)  # only its centre is used: FFHQ's eye-mouth centre
        centre = alignment.inverse @ np.array([3.5, 3.5, 1.0])
        try:
            return face_frame(
                photo, (float(centre[0]), float(centre[1])), inter_ocular(face), target_iod,
                frame_size=framing.frame_size, iod_min=lo * 1.005, max_upscale=framing.max_upscale,
            )  # fmt: skip
        except FramingRejected as exc:
            raise EditRejected(exc.code, exc.detail) from exc


def plan_in_crop(
    alignment: FaceAlignment, face: np.ndarray, calls: list[OpCall], warp: WarpSettings, shape: tuple[int, int]
) -> tuple[ChainPlan, WarpField, list[WarpField]]:
    """Plan ``calls`` on ``face`` (478, 2, base frame) in the crop frame of ``alignment`` and
    reframe the chain's field, and each op's, into a base frame of ``shape`` (h, w): the paste-back.

    Raises EditRejected (``fold``, ``missing_landmarks``, ``empty_region``).
    """
    size = alignment.size
    try:
        plan = plan_chain((size, size), Landmarks(face=alignment.to_crop(face)), calls, settings=warp, window=True)
    except FoldError as exc:
        raise EditRejected("fold", str(exc)) from exc
    except MissingLandmarks as exc:
        raise EditRejected("missing_landmarks", str(exc)) from exc
    field = plan.field.reframe(alignment.matrix, shape)
    if field.is_identity:
        raise EditRejected("empty_region", "the pasted warp moves no pixel of the base frame")
    return plan, field, [f.reframe(alignment.matrix, shape) for f in plan.op_fields]
