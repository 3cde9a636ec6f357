"""Chains of catalog ops composed into one warp field, with a fold check per op.

Op k+1 reads the landmarks carried through op k's field (``forward_points``), never
re-detected; all fields compose with ``then`` so the image is resampled once.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from warps.catalog import CATALOG, Anchors, OpCall, OpSpec, op_anchors, ops_for_subset
from warps.field import Resampling, WarpField
from warps.landmarks import Landmarks
from warps.region import EditRegion, edit_region
from warps.solve import DEFAULT_STEP, solve_backward

#: Ops already solved, keyed by (shape, spec, strength, settings, window, landmarks digest):
#: the professional recipe plans the same op at the same strength on the same person first in
#: many combinations (every chain (A, B) of the reference recipe with A first), and a solve,
#: with its clamp search, costs 10-100 ms. Those chains come one after another, so a few fields
#: suffice: :data:`SOLVED_CACHE_BYTES` bounds the kept fields (the oldest go first), each at
#: most a quarter of it (face ops; a body op's field at 8K is tens of MB, and a 64 MB cache
#: raised the 8K build's median RSS by 0.2-0.3 GB); the clamps found (applied strength and
#: reason, or a FoldError's message) are kept apart, :data:`CLAMP_CACHE_SIZE` of them, so a
#: field not kept costs one solve, not a search.
SOLVED_CACHE_BYTES = 16 << 20
CLAMP_CACHE_SIZE = 4096
_SOLVED: OrderedDict[tuple, tuple[WarpField, Anchors, int, str | None]] = OrderedDict()
_CLAMPS: dict[tuple, tuple[int, str] | str] = {}


class FoldError(ValueError):
    """An op breaks the Jacobian limits (folds, tears or pinches) even at strength +-1, or
    its field cannot carry the landmarks the next op reads (no point maps onto one)."""


@dataclass(frozen=True)
class WarpSettings:
    """How ops are solved and checked. The Jacobian determinant of an op's backward map
    must lie in [``min_jacobian``, ``max_jacobian``] everywhere: below, the image is
    stretched (a tear) or folds (<= 0); above, it is pinched. An op outside is clamped."""

    mls_kind: Literal["affine", "similarity", "rigid"] = "similarity"
    alpha: float = 1.0
    grid_step: int = DEFAULT_STEP
    region_threshold_px: float = 0.5
    min_jacobian: float = 0.2
    max_jacobian: float = 5.0
    min_pose_visibility: float = 0.5
    resampling: Resampling = Resampling()

    def __post_init__(self) -> None:
        if self.mls_kind not in ("affine", "similarity", "rigid"):
            raise ValueError(f"mls_kind must be affine, similarity or rigid, got {self.mls_kind!r}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        if self.grid_step < 1:
            raise ValueError(f"grid_step must be >= 1, got {self.grid_step}")
        if not 0 < self.min_jacobian < 1:
            raise ValueError(f"min_jacobian must lie in (0, 1), got {self.min_jacobian}")
        if not self.max_jacobian > 1:
            raise ValueError(f"max_jacobian must be > 1, got {self.max_jacobian}")
        if not 0 <= self.min_pose_visibility <= 1:
            raise ValueError(f"min_pose_visibility must lie in [0, 1], got {self.min_pose_visibility}")


@dataclass(frozen=True)
class StrengthSpec:
    """Strength distribution for :func:`sample_chain`: magnitude uniform over the
    integers [min_magnitude, max_magnitude], sign + or - with equal probability."""

    min_magnitude: int = 20
    max_magnitude: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.min_magnitude <= self.max_magnitude <= 100:
            raise ValueError(
                "strengths need 1 <= min_magnitude <= max_magnitude <= 100, got "
                f"{self.min_magnitude}, {self.max_magnitude}"
            )


@dataclass(frozen=True, eq=False)
class OpRecord:
    """What one op of a chain did. ``anchors_src``/``anchors_dst`` (M, 2) are its control
    points in the frame of the image it was applied to (the first ``moving`` rows move,
    the rest are held); empty when the applied strength is 0. ``clamp_reason`` says which
    Jacobian limit the requested strength broke ("fold", "stretch" or "pinch"; None when
    not clamped); ``min_jacobian``/``max_jacobian`` are those of the applied field."""

    name: str
    requested_strength: int
    applied_strength: int
    clamped: bool
    anchors_src: np.ndarray
    anchors_dst: np.ndarray
    moving: int
    min_jacobian: float
    max_jacobian: float = 1.0
    clamp_reason: str | None = None

    def to_record(self) -> dict:
        """Plain JSON-ready view (anchors rounded to 1/1000 px)."""
        return {
            "name": self.name,
            "requested_strength": self.requested_strength,
            "applied_strength": self.applied_strength,
            "clamped": self.clamped,
            "clamp_reason": self.clamp_reason or "",  # "" rather than null: loaders that infer types need one
            "min_jacobian": round(self.min_jacobian, 6),
            "max_jacobian": round(self.max_jacobian, 6),
            "moving": self.moving,
            "anchors_src": np.round(self.anchors_src, 3).tolist(),
            "anchors_dst": np.round(self.anchors_dst, 3).tolist(),
        }


@dataclass(frozen=True, eq=False)
class ChainPlan:
    """A planned chain: one composed ``field`` (apply it once), the landmarks carried
    through it, one record per call (in order) and each call's own field (identity for a
    strength-0 call; op k's field acts on the image after ops 0..k-1). ``region`` (computed
    on first use): the pixels the field moves by more than ``region_threshold_px``, before any
    pixel exists; once ``after`` exists, warps.region.change_region is the edit's region."""

    field: WarpField
    landmarks_after: Landmarks
    records: tuple[OpRecord, ...]
    region_threshold_px: float = 0.5
    op_fields: tuple[WarpField, ...] = ()

    @functools.cached_property
    def region(self) -> EditRegion:
        return edit_region(self.field, threshold_px=self.region_threshold_px)


def plan_chain(
    shape: tuple[int, int],
    landmarks: Landmarks,
    calls: list[OpCall] | tuple[OpCall, ...],
    *,
    settings: WarpSettings = WarpSettings(),
    window: bool = False,
) -> ChainPlan:
    """Compose ``calls`` on an image of ``shape`` (h, w) with ``landmarks`` in its frame.

    Strength-0 calls add the identity. An op whose field breaks a Jacobian limit (see
    WarpSettings) is clamped to the largest integer |strength| of the same sign that does
    not (:func:`_clamp`); FoldError if even +-1 does, or if a field cannot carry the landmarks
    (not invertible at one). MissingLandmarks (a ValueError) if an op's landmarks are absent.
    ``window``: the image is a window onto a larger one (see ``solve_backward``).
    """
    shape = (int(shape[0]), int(shape[1]))
    field = WarpField.identity(shape)
    current = landmarks
    records: list[OpRecord] = []
    op_fields: list[WarpField] = []
    for call in calls:
        if not isinstance(call, OpCall):
            raise TypeError(f"chain calls must be OpCall, got {type(call).__name__}")
        op_field, anchors, applied, reason = _solve_clamped(
            shape, CATALOG[call.name], current, call.strength, settings, window
        )
        jac = op_field.jacobian
        records.append(
            OpRecord(call.name, call.strength, applied, applied != call.strength, anchors.src, anchors.dst,
                     anchors.moving, jac.min_jacobian, jac.max_jacobian, reason)  # fmt: skip
        )
        op_fields.append(op_field)
        if op_field.is_identity:
            continue
        field = field.then(op_field)
        try:
            current = current.mapped(op_field.forward_points)
        except RuntimeError as exc:  # the field is not invertible at a landmark
            raise FoldError(f"op {call.name} at {applied}: cannot carry the landmarks through its field: {exc}") from exc
    return ChainPlan(field, current, tuple(records), settings.region_threshold_px, tuple(op_fields))


def solve_op(
    shape: tuple[int, int],
    spec: OpSpec,
    landmarks: Landmarks,
    strength: int,
    settings: WarpSettings,
    window: bool = False,
) -> tuple[WarpField, Anchors]:
    """One op's field at exactly ``strength`` (no fold check); identity for 0."""
    if strength == 0:
        empty = np.zeros((0, 2))
        return WarpField.identity(shape), Anchors(empty, empty, 0)
    anchors = op_anchors(spec, landmarks, strength, min_visibility=settings.min_pose_visibility)
    field = solve_backward(
        shape,
        anchors.src,
        anchors.dst,
        kind=settings.mls_kind,
        alpha=settings.alpha,
        step=settings.grid_step,
        window=window,
        falloff=anchors.falloff,
        hold=anchors.hold,
    )
    return field, anchors


def jacobian_violation(field: WarpField, settings: WarpSettings) -> str | None:
    """Which Jacobian limit ``field`` breaks: "fold" (det <= 0 somewhere), "stretch"
    (det < settings.min_jacobian), "pinch" (det > settings.max_jacobian), or None."""
    jac = field.jacobian
    if jac.fold_count:
        return "fold"
    if jac.min_jacobian < settings.min_jacobian:
        return "stretch"
    if jac.max_jacobian > settings.max_jacobian:
        return "pinch"
    return None


def _solve_clamped(
    shape: tuple[int, int], spec: OpSpec, landmarks: Landmarks, strength: int, settings: WarpSettings, window: bool
) -> tuple[WarpField, Anchors, int, str | None]:
    """(field, anchors, applied strength, clamp reason), clamping on Jacobian limits (see
    plan_chain); solved once per op, strength, landmarks, shape and settings (:data:`_SOLVED`)."""
    key = (shape, spec, strength, settings, window, landmarks.digest)
    if key in _SOLVED:
        _SOLVED.move_to_end(key)
        return _SOLVED[key]
    known = _CLAMPS.get(key)
    if isinstance(known, str):
        raise FoldError(known)
    if known is not None:
        applied, reason = known
        field, anchors = solve_op(shape, spec, landmarks, applied, settings, window)
    else:
        field, anchors = solve_op(shape, spec, landmarks, strength, settings, window)
        applied, reason = strength, jacobian_violation(field, settings)
        if reason is not None:
            try:
                field, anchors, applied = _clamp(shape, spec, landmarks, strength, settings, window, field)
            except FoldError as exc:
                _remember_clamp(key, str(exc))
                raise
            _remember_clamp(key, (applied, reason))
    solved = (field, anchors, applied, reason)
    _keep_solved(key, solved)
    return solved


def _remember_clamp(key: tuple, outcome: tuple[int, str] | str) -> None:
    _CLAMPS[key] = outcome
    while len(_CLAMPS) > CLAMP_CACHE_SIZE:
        del _CLAMPS[next(iter(_CLAMPS))]  # the oldest


def _keep_solved(key: tuple, solved: tuple[WarpField, Anchors, int, str | None]) -> None:
    """Keep ``solved`` (its maps made read-only) unless its field is over a quarter of the byte
    budget, dropping the oldest beyond the budget."""
    field = solved[0]
    if _field_bytes(field) > SOLVED_CACHE_BYTES // 4:
        return
    field.map_x.setflags(write=False)
    field.map_y.setflags(write=False)
    _SOLVED[key] = solved
    while sum(_field_bytes(kept[0]) for kept in _SOLVED.values()) > SOLVED_CACHE_BYTES:
        _SOLVED.popitem(last=False)


def _field_bytes(field: WarpField) -> int:
    return field.map_x.nbytes + field.map_y.nbytes


def _clamp(
    shape: tuple[int, int], spec: OpSpec, landmarks: Landmarks, strength: int, settings: WarpSettings, window: bool,
    field: WarpField,
) -> tuple[WarpField, Anchors, int]:
    """(field, anchors, applied strength) of the largest strength inside the Jacobian limits,
    given ``field``, the op's field at ``strength``, outside them; FoldError if even +-1 is.

    The boundary is searched in a bracket [inside, outside] that starts at [0 (the identity),
    ``strength``] and shrinks with every solve: the next strength tried is where the secant
    through the last two solves' margins (:func:`_margin`) crosses zero, or the bracket's
    middle when the bracket has not halved in two solves. Where the limits are crossed once
    between 0 and ``strength`` the result is a bisection's; on the 12 clamps of the simulated
    and professional bench workloads it took 78 solves where bisection took 103. Where
    they are crossed several times (a field that folds, then not, then again) the result is
    an inside strength next to one of the crossings.
    """
    sign = 1 if strength > 0 else -1
    ok, bad = 0, abs(strength)  # ok: 0 or a solved strength inside the limits; bad: a solved one outside
    best: tuple[WarpField, Anchors] | None = None
    weakest = field
    tried = [(0, _margin(WarpField.identity(shape), settings)), (bad, _margin(field, settings))]
    width, stalled = bad, 0
    while bad - ok > 1:
        (s0, m0), (s1, m1) = tried[-2:]
        root = s1 - m1 * (s1 - s0) / (m1 - m0) if stalled < 2 and m0 != m1 else math.nan
        mid = min(max(math.floor(root), ok + 1), bad - 1) if math.isfinite(root) else (ok + bad) // 2
        trial = solve_op(shape, spec, landmarks, sign * mid, settings, window)
        tried.append((mid, _margin(trial[0], settings)))
        if jacobian_violation(trial[0], settings) is None:
            ok, best = mid, trial
        else:
            bad, weakest = mid, trial[0]
        stalled = 0 if 2 * (bad - ok) <= width else stalled + 1
        width = bad - ok if stalled == 0 else width
    if best is None:
        jac = weakest.jacobian
        raise FoldError(
            f"op {spec.name} breaks the Jacobian limits even at strength {sign} ({jacobian_violation(weakest, settings)}: "
            f"det in [{jac.min_jacobian:.3f}, {jac.max_jacobian:.3f}], limits [{settings.min_jacobian}, "
            f"{settings.max_jacobian}])"
        )
    return best[0], best[1], sign * ok


def _margin(field: WarpField, settings: WarpSettings) -> float:
    """How far ``field``'s Jacobian range lies inside the limits (negative: outside)."""
    jac = field.jacobian
    return min(jac.min_jacobian - settings.min_jacobian, settings.max_jacobian - jac.max_jacobian)


def sample_chain(
    rng: np.random.Generator,
    subset: str,
    *,
    min_ops: int = 1,
    max_ops: int = 3,
    strengths: StrengthSpec = StrengthSpec(),
    reads: tuple[str, ...] = ("face478", "pose33"),
) -> list[OpCall]:
    """Distinct ops of ``subset`` reading only ``reads`` landmarks, in random order;
    the count is uniform in [min_ops, max_ops], each strength drawn from ``strengths``.
    Deterministic given the state of ``rng``."""
    names = [spec.name for spec in ops_for_subset(subset) if spec.reads in reads]
    if not 1 <= min_ops <= max_ops <= len(names):
        raise ValueError(
            f"need 1 <= min_ops <= max_ops <= {len(names)} (ops of {subset!r} reading {reads}), "
            f"got min_ops={min_ops}, max_ops={max_ops}"
        )
    count = int(rng.integers(min_ops, max_ops + 1))
    chosen = rng.choice(len(names), size=count, replace=False)
    calls = []
    for index in chosen:
        magnitude = int(rng.integers(strengths.min_magnitude, strengths.max_magnitude + 1))
        sign = 1 if rng.random() < 0.5 else -1
        calls.append(OpCall(names[int(index)], sign * magnitude))
    return calls
