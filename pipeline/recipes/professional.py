"""The professional subset: the 27 catalog ops at full resolution, single and combined.

Per person of a photo, the applicable ops are the facial ones (18 facial + 4 face shape)
when the person has a usable face at least ``min_face_iod_px`` wide, and each body op whose
anchors the person's pose yields (a pose that passed its agreement check, the joints the op
needs visible). Every op left out for a person is a reject row with the reason.

Edits of a person are enumerated family by family (``professional.combos``): every
combination of ``size`` distinct applicable ops, each at every strength in ``strengths``, in
catalog order; a family with ``max_edits`` keeps a seeded sample of that many. A multi-op
edit composes the ops into one field and resamples the photo once; the op mask records each
op's own pixels. Edits are made on the full-resolution photo (the base frame is the photo);
the views are crops of about ``augment.target_pixels`` that contain the person's body box
when a body op is involved, else the face box, and always the edit region.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from detectors.records import PortraitDetections
from pipeline.framing import BaseFrame
from pipeline.recipes import Edit, EditFamily, EditRejected, Target, TargetReject
from pipeline.recipes.common import paste, person_landmarks
from pipeline.seeding import rng_for
from warps.catalog import CATALOG, MissingLandmarks, OpCall, op_anchors, ops_for_subset
from warps.chain import FoldError, plan_chain

#: Margin added around a face box that views must contain, as a fraction of its size.
FACE_BOX_MARGIN = 0.15


class ProfessionalRecipe:
    """The professional subset (module docstring); ``config`` is a ``MirrorsetConfig``."""

    subset = "professional"

    def __init__(self, config) -> None:
        self.pro = config.professional
        self.seed = config.seed
        self.nominal_pixels = self.pro.augment.target_pixels
        self.max_attempts = self.pro.max_attempts
        self.min_disp_px = self.pro.min_disp_px
        names = set(self.pro.ops) if self.pro.ops else None
        self.ops = [spec for spec in ops_for_subset("professional") if names is None or spec.name in names]

    def targets(self, source_id: str, detections: PortraitDetections) -> tuple[list[Target], list[TargetReject]]:
        width, height = detections.image_size
        if self._view_pixels(width, height) < self.pro.min_pixels:
            return [], [TargetReject(None, "photo_too_small", (
                f"{width}x{height}: views of {self._view_pixels(width, height)} px are below "
                f"min_pixels {self.pro.min_pixels}"))]  # fmt: skip
        usable = {detections.faces[i].person_index: i for i in detections.usable_faces()}
        targets, rejects = [], []
        for person_index in range(len(detections.persons)):
            ops, skipped = self._applicable(detections, person_index, usable.get(person_index))
            rejects.extend(skipped)
            if not ops:
                rejects.append(TargetReject(person_index, "no_applicable_op", f"person {person_index}: no op applies"))
                continue
            families, chains = [], []
            for combo in self.pro.combos:
                edits = self._family_edits(source_id, person_index, ops, combo)
                if edits:
                    families.append(EditFamily(views=combo.views, count=len(edits)))
                    chains.extend(edits)
            targets.append(Target(person_index, usable.get(person_index, -1), tuple(families), tuple(chains)))
        return targets, rejects

    def draws(self, target: Target, edit_index: int) -> bool:
        return False  # ops and strengths come from the plan, not from the draw

    def make_edit(
        self, photo: np.ndarray, detections: PortraitDetections, target: Target, edit_index: int,
        rng: np.random.Generator,
    ) -> Edit:
        chain = target.payload[edit_index]
        calls = [OpCall(name, strength) for name, strength in chain]
        landmarks = person_landmarks(detections, target.person_index)
        if target.face_index < 0:
            landmarks = dataclasses.replace(landmarks, face=None)
        try:
            plan = plan_chain(photo.shape[:2], landmarks, calls, settings=self.pro.warp)
        except FoldError as exc:
            raise EditRejected("fold", str(exc)) from exc
        except MissingLandmarks as exc:
            raise EditRejected("missing_landmarks", str(exc)) from exc
        if plan.field.is_identity:
            raise EditRejected("empty_region", "the chain moves no pixel")
        pasted = paste(photo, plan.field, list(plan.op_fields), self.pro.warp)
        x0, y0, x1, y1 = pasted.region_box("the chain moves no pixel by more than the threshold")
        height, width = photo.shape[:2]
        box = self._box(detections, target, any(CATALOG[n].group == "body" for n, _ in chain))
        must = (min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1))
        must = (max(must[0], 0.0), max(must[1], 0.0), min(must[2], width - 1.0), min(must[3], height - 1.0))
        augment = dataclasses.replace(self.pro.augment, target_pixels=self._view_pixels(width, height))
        face = landmarks.face
        return Edit(
            before=photo,
            after=pasted.after,
            region=pasted.region,
            opmask=pasted.opmask,
            field=plan.field,
            records=plan.records,
            frame=BaseFrame(photo, (0, 0, width, height), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])),
            must_contain=tuple(float(v) for v in must),
            augment=augment,
            face=face,
            face_after=None if face is None else plan.landmarks_after.face,
            pose=landmarks.pose,
            pose_visible=landmarks.pose_visibility,
            record={"ops_frame": "photo", "strength_map": {"kind": "uniform"}},
        )

    def _view_pixels(self, width: int, height: int) -> int:
        return int(min(self.pro.augment.target_pixels, self.pro.max_area_fraction * width * height))

    def _applicable(
        self, detections: PortraitDetections, person_index: int, face_index: int | None
    ) -> tuple[list[str], list[TargetReject]]:
        """Ops person ``person_index`` can be given, and a reject per op that cannot."""
        landmarks = person_landmarks(detections, person_index)
        face_ok = face_index is not None and detections.faces[face_index].inter_ocular >= self.pro.min_face_iod_px
        names, rejects = [], []
        for spec in self.ops:
            if spec.reads == "face478":
                if face_ok:
                    names.append(spec.name)
                continue  # one reject row for all facial ops, below
            try:
                op_anchors(spec, landmarks, 100, min_visibility=self.pro.warp.min_pose_visibility)
            except (MissingLandmarks, ValueError) as exc:
                rejects.append(TargetReject(person_index, "op_not_applicable", f"person {person_index}, op {spec.name}: {exc}"))
                continue
            names.append(spec.name)
        if not face_ok and any(spec.reads == "face478" for spec in self.ops):
            why = ("no usable face" if face_index is None else
                   f"face inter-ocular {detections.faces[face_index].inter_ocular:.1f} px < {self.pro.min_face_iod_px}")
            rejects.append(TargetReject(person_index, "op_not_applicable", f"person {person_index}, facial ops: {why}"))
        return names, rejects

    def _family_edits(self, source_id: str, person_index: int, ops: list[str], combo) -> list[tuple[tuple[str, int], ...]]:
        """The chains of one family, in enumeration order (a seeded sample with ``max_edits``)."""
        chains = [
            tuple(zip(names, signs))
            for names in itertools.combinations(ops, combo.size)
            for signs in itertools.product(self.pro.strengths, repeat=combo.size)
        ]
        if combo.max_edits is not None and len(chains) > combo.max_edits:
            rng = rng_for(self.seed, "combos", source_id, person_index, combo.size)
            keep = np.sort(rng.choice(len(chains), size=combo.max_edits, replace=False))
            chains = [chains[int(i)] for i in keep]
        return chains

    @staticmethod
    def _box(detections: PortraitDetections, target: Target, body: bool) -> tuple[float, float, float, float]:
        """The box every view must contain: the person box for body edits, else the face box
        grown by FACE_BOX_MARGIN (pixel-centre coords)."""
        if body or target.face_index < 0:
            x0, y0, x1, y1 = (float(v) for v in detections.persons[target.person_index].box)
            return (x0 + 0.5, y0 + 0.5, x1 - 0.5, y1 - 0.5)
        x0, y0, x1, y1 = (float(v) for v in detections.faces[target.face_index].box)
        mx, my = FACE_BOX_MARGIN * (x1 - x0), FACE_BOX_MARGIN * (y1 - y0)
        return (x0 - mx, y0 - my, x1 + mx, y1 + my)
