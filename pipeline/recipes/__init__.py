"""Subsets as recipes: what a subset edits, with which ops and strengths, how it frames and
augments, and how many, behind one small protocol; the stages do the rest.

A :class:`Recipe` answers two questions:

- ``targets(source_id, detections)``: which persons of a photo get edits and how many, in
  :class:`EditFamily` blocks of equal view counts (planning, on the driver; cheap, no
  pixels), plus :class:`TargetReject` rows for what it will not edit and why;
- ``make_edit(photo, detections, target, edit_index, rng)``: one finished edit
  (:class:`Edit`) in its base frame, or :class:`EditRejected` (on a worker).

The generic renderer (``pipeline.render``) then draws the views, measures, encodes and
writes. A subset whose pairs come from elsewhere (retoucher-made pairs) implements the same
two methods: its ``make_edit`` loads the pair instead of warping a photo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from detectors.records import PortraitDetections
from pipeline.framing import BaseFrame
from warps.augment import AugmentSpec
from warps.chain import OpRecord
from warps.field import WarpField

Box = tuple[float, float, float, float]


class EditRejected(Exception):
    """One edit cannot be made; ``code`` is the reason stored in the rejects table."""

    def __init__(self, code: str, detail: str, measurements: dict[str, float] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.measurements = measurements


@dataclass(frozen=True)
class EditFamily:
    """``count`` consecutive edits of a target, each rendered in ``views`` views."""

    views: int
    count: int


@dataclass(frozen=True)
class Target:
    """A person a recipe edits: ``person_index`` into the detections' persons, the index of
    their face (-1: none), the edit families in edit-index order, and whatever the recipe
    needs to make edit i (``payload``, e.g. each edit's op chain). Recomputed identically
    on the driver and on workers from the same detections."""

    person_index: int
    face_index: int
    families: tuple[EditFamily, ...]
    payload: tuple[Any, ...] = ()

    @property
    def edits(self) -> int:
        return sum(f.count for f in self.families)

    def views_of(self, edit_index: int) -> int:
        start = 0
        for family in self.families:
            if edit_index < start + family.count:
                return family.views
            start += family.count
        raise IndexError(f"edit {edit_index} beyond the target's {self.edits} edits")


@dataclass(frozen=True)
class TargetReject:
    """Something a recipe will not edit: a person (or one op of a person) and why."""

    person_index: int | None
    reason: str
    detail: str


@dataclass(frozen=True, eq=False)
class Edit:
    """One edit in its base frame, ready for views.

    ``before``/``after`` (h, w, 3) RGB uint8; ``region`` (h, w) uint8 255 where the edit
    moves or changes pixels; ``opmask`` (h, w) uint8 with bit k set where op k of the chain
    moves pixels; ``field`` the applied backward map (after = field.apply(before));
    ``records`` the ops as applied; ``frame`` maps photo to base frame; every view keeps
    ``must_contain`` (a base-frame box, pixel-centre coords) in view and is drawn with
    ``augment``. ``face`` / ``face_after``: the edited face's 478 landmarks in the base frame
    before the edit and carried through it (None without a face). ``record``: extra JSON
    fields of the parameter record (e.g. the frame ops were planned in).
    """

    before: np.ndarray
    after: np.ndarray
    region: np.ndarray
    opmask: np.ndarray
    field: WarpField
    records: tuple[OpRecord, ...]
    frame: BaseFrame
    must_contain: Box
    augment: AugmentSpec
    face: np.ndarray | None
    face_after: np.ndarray | None
    pose: np.ndarray | None = None
    pose_visible: np.ndarray | None = None
    strength_map: np.ndarray | None = None
    ladder_id: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


class Recipe(Protocol):
    """One subset's recipe (module docstring). Instances are picklable and hold config only."""

    subset: str
    #: Nominal pixels of one pair image, for shard sizing.
    nominal_pixels: int
    #: Attempts per edit slot before it is given up (each failure is a reject row).
    max_attempts: int
    #: An edit whose largest displacement in a view is below this many pixels is rejected.
    min_disp_px: float

    def targets(self, source_id: str, detections: PortraitDetections) -> tuple[list[Target], list[TargetReject]]:
        """Who in photo ``source_id`` gets which edits, and what is left out with a reason."""

    def make_edit(
        self, photo: np.ndarray, detections: PortraitDetections, target: Target, edit_index: int,
        rng: np.random.Generator,
    ) -> Edit:
        """Edit ``edit_index`` of ``target``; every random choice from ``rng``. Raises EditRejected."""

    def draws(self, target: Target, edit_index: int) -> bool:
        """Whether ``make_edit`` draws from ``rng`` for this edit. When False an edit that fails
        (fold, QA gate) is not tried again (it would fail identically), and a failed view draw
        is retried on the edit already made."""


def recipe_for(subset: str, config: Any) -> Recipe:
    """The recipe of ``subset`` under ``config`` (a ``MirrorsetConfig``)."""
    if subset == "simulated":
        from pipeline.recipes.simulated import SimulatedRecipe

        return SimulatedRecipe(config)
    if subset == "professional":
        from pipeline.recipes.professional import ProfessionalRecipe

        return ProfessionalRecipe(config)
    raise ValueError(f"unknown subset {subset!r}")
