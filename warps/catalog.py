"""The operation catalog: every liquify op as data, turned into MLS anchors by one function.

An op is an :class:`OpSpec`: which landmarks it reads, a *motion* (one of a handful of
declarative kinds) naming the anchors that move and how, the feature groups it may
move (``moves``; FEATURE_GROUPS), extra fixed anchors, and the magnitude at strength
+100 / -100. :func:`op_anchors` turns a spec, landmarks and a strength into
:class:`~warps.anchors.Anchors` for :func:`warps.solve.solve_backward`; no op has code of
its own.

Face ops hold every feature group they do not move: its points near the op are fixed
anchors, and the pixels of the group (a hull per cluster) are held exactly
(:class:`~warps.hold.Hold`); the op reaches FALLOFF interocular distances and no farther.
Body ops put their anchors on the person's silhouette (:mod:`warps.body`).

Face frame: ``u`` is the unit vector from the subject's right eye centroid to the left
one (image +x for an upright frontal face), ``v`` is ``u`` turned 90 degrees (image +y,
towards the chin). Magnitudes are fractions of the feature's own size: the spread
of the points for :class:`Scale`, a named length for :class:`Translate`, the distance
between the groups for :class:`Spread`, the slope for :class:`Rotate`; body motions
are described in :mod:`warps.body`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from warps.face_groups import (  # re-exported: the catalog's public names
    BROWS,
    CHIN,
    CHIN_SIDES,
    EYES,
    EYES_HOLD,
    FACE_OVAL,
    FEATURE_GROUPS,
    FOREHEAD_MID,
    FOREHEAD_TOP,
    LEFT_ALA,
    LEFT_BROW_LOWER,
    LEFT_CHEEK,
    LEFT_CHEEKBONE,
    LEFT_EYE,
    LEFT_EYE_ALL,
    LEFT_EYE_RING,
    LEFT_EYEBROW,
    LEFT_IRIS,
    LEFT_JAW,
    LEFT_NOSE_BRIDGE,
    LEFT_TEMPLE,
    LIPS,
    LOWER_LIP_INNER,
    LOWER_LIP_OUTER,
    MIDLINE,
    MOUTH,
    MOUTH_CORNERS,
    NOSE,
    NOSE_TIP,
    RIGHT_ALA,
    RIGHT_BROW_LOWER,
    RIGHT_CHEEK,
    RIGHT_CHEEKBONE,
    RIGHT_EYE,
    RIGHT_EYE_ALL,
    RIGHT_EYE_RING,
    RIGHT_EYEBROW,
    RIGHT_IRIS,
    RIGHT_JAW,
    RIGHT_NOSE_BRIDGE,
    RIGHT_TEMPLE,
    UPPER_LIP_INNER,
    UPPER_LIP_OUTER,
)
from warps.anchors import Anchors, MissingLandmarks
from warps.body import (
    HIPS,
    LEFT_EAR,
    LEFT_ELBOW,
    LEFT_HIP,
    LEFT_SHOULDER,
    LEFT_WRIST,
    NOSE_JOINT,
    RIGHT_EAR,
    RIGHT_ELBOW,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    RIGHT_WRIST,
    SHOULDERS,
    BodyMotion,
    BodyMove,
    BodyPoint,
    Limb,
    OutlineMove,
    ShiftOutline,
    SqueezeLimbs,
    StretchLegs,
    body_anchors,
)
from warps.hold import Hold
from warps.landmarks import Landmarks
from warps.solve import Falloff

Group = Literal["face", "face_shape", "body"]
Subset = Literal["simulated", "professional"]
Reads = Literal["face478", "pose33"]
SUBSETS: tuple[str, ...] = ("simulated", "professional")


#: Named face lengths: distance between the centroids of two index sets.
FACE_LENGTHS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "interocular": (RIGHT_EYE, LEFT_EYE),
    "nose_length": ((168,), (2,)),
    "philtrum": ((2,), (0,)),
    "mouth_width": ((61,), (291,)),
    "brow_eye_gap": (RIGHT_EYEBROW + LEFT_EYEBROW, RIGHT_EYE + LEFT_EYE),
    "forehead": ((10,), RIGHT_EYEBROW + LEFT_EYEBROW),
    "lower_face": ((17,), (152,)),
    "face_width": ((234,), (454,)),
}

# --- Motion kinds ------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """Each group scaled by (1 + m) along ``axes`` about the centroid of its pivot set
    (``pivots[i]``; default the group itself)."""

    groups: tuple[tuple[int, ...], ...]
    axes: Literal["uv", "u", "v"] = "uv"
    pivots: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class Translate:
    """All points moved by m * length along ``direction`` (du, dv) in the face frame."""

    points: tuple[int, ...]
    direction: tuple[float, float]
    length: str


@dataclass(frozen=True)
class Spread:
    """Two groups moved rigidly apart along ``axis`` so the distance between their
    centroids grows by the factor (1 + m)."""

    groups: tuple[tuple[int, ...], tuple[int, ...]]
    axis: Literal["u", "v"] = "u"


@dataclass(frozen=True)
class Rotate:
    """Each group rotated about its centroid by atan(m), turning the end farther from
    the face midline upward (towards -v) for m > 0."""

    groups: tuple[tuple[int, ...], ...]


FaceMotion = Scale | Translate | Spread | Rotate
Motion = FaceMotion | BodyMotion


@dataclass(frozen=True)
class OpSpec:
    """One liquify operation. ``moves``: the FEATURE_GROUPS a face op may move (the others
    are held; empty for body ops). ``fixed``: extra fixed anchors, face indices (face ops)
    or body points (body ops). Positive strength uses ``magnitude_pos``, negative
    ``magnitude_neg``, both > 0 fractions of feature size."""

    name: str
    group: Group
    subsets: tuple[str, ...]
    reads: Reads
    motion: Motion
    moves: tuple[str, ...]
    fixed: tuple[int, ...] | tuple[BodyPoint, ...]
    magnitude_pos: float
    magnitude_neg: float
    description: str

    def signed_magnitude(self, strength: int) -> float:
        """m for ``strength`` in [-100, 100]: linear, +mag_pos at +100, -mag_neg at -100."""
        if strength >= 0:
            return strength / 100.0 * self.magnitude_pos
        return strength / 100.0 * self.magnitude_neg


@dataclass(frozen=True)
class OpCall:
    """One op of a chain: a catalog name and an integer strength in [-100, 100]."""

    name: str
    strength: int

    def __post_init__(self) -> None:
        if self.name not in CATALOG:
            raise ValueError(f"unknown op {self.name!r}; known ops: {sorted(CATALOG)}")
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise ValueError(f"op {self.name}: strength must be an integer, got {s!r}")
        if not -100 <= s <= 100:
            raise ValueError(f"op {self.name}: strength {s} outside [-100, 100]")
        object.__setattr__(self, "strength", int(s))


def ops_for_subset(subset: str) -> list[OpSpec]:
    """Specs in ``subset`` ("simulated" | "professional"), in catalog order."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; expected one of {SUBSETS}")
    return [spec for spec in CATALOG.values() if subset in spec.subsets]


# --- Anchors -----------------------------------------------------------------------------
def op_anchors(spec: OpSpec, landmarks: Landmarks, strength: int, *, min_visibility: float = 0.5) -> Anchors:
    """The anchors of ``spec`` at ``strength`` on ``landmarks`` (pixel frame).

    Raises MissingLandmarks when the face mesh (face ops) is absent, or when the pose,
    box or outline is, or the body part is not visible (body ops; joints below
    ``min_visibility`` count as not visible); the message gives the reason.
    """
    m = spec.signed_magnitude(strength)
    if spec.reads == "pose33":
        return body_anchors(spec.name, spec.motion, spec.fixed, landmarks, m, min_visibility)
    if landmarks.face is None:
        raise MissingLandmarks(f"op {spec.name} reads the face mesh, which is missing")
    return _face_anchors(spec, landmarks.face, m)


def _face_anchors(spec: OpSpec, face: np.ndarray, m: float) -> Anchors:
    """Moving anchors of the motion; held: every point of the groups the op does not
    move within the falloff's reach, as fixed anchors and as held regions (a hull per
    cluster of each group), so the pixels between held points stay still too."""
    src, dst = _face_moving(spec.motion, face, m)
    iod = face_length(face, "interocular")
    falloff = Falloff(FALLOFF[0] * iod, FALLOFF[1] * iod)
    reach = cKDTree(np.vstack([src, dst]))
    held = np.array(held_indices(spec, moving_indices(spec.motion)), dtype=np.intp)
    near = reach.query(face[held])[0] <= falloff.outer
    fixed = face[held[near]]
    polygons = []
    for group, indices in FEATURE_GROUPS.items():
        if group in spec.moves:
            continue
        points = face[list(indices)]
        if reach.query(points)[0].min() > falloff.outer:
            continue
        polygons += _cluster_hulls(points, HOLD_LINK * iod)
    hold = Hold(tuple(polygons), HOLD_MARGIN * iod, HOLD_FEATHER * iod, HOLD_CLEARANCE * iod)
    return Anchors(np.vstack([src, fixed]), np.vstack([dst, fixed]), len(src), falloff, hold)


def _cluster_hulls(points: np.ndarray, link: float) -> list[np.ndarray]:
    """Convex hull (K, 2) of each cluster of ``points`` (single linkage at ``link`` px)."""
    pairs = cKDTree(points).query_pairs(link, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(points),) * 2)
    count, labels = connected_components(graph, directed=False)
    hulls = []
    for label in range(count):
        cluster = points[labels == label]
        if len(cluster) >= 3:
            cluster = cv2.convexHull(cluster.astype(np.float32))[:, 0].astype(np.float64)
        hulls.append(cluster)
    return hulls


def face_axes(face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): unit eye-line axis (right eye -> left eye) and face-vertical axis (down)."""
    u = face[list(LEFT_EYE)].mean(axis=0) - face[list(RIGHT_EYE)].mean(axis=0)
    norm = np.hypot(*u)
    if not norm > 0:
        raise ValueError("face landmarks are degenerate: both eyes at the same place")
    u = u / norm
    return u, np.array([-u[1], u[0]])


def face_length(face: np.ndarray, name: str) -> float:
    """A named face length (see FACE_LENGTHS) in pixels."""
    a, b = FACE_LENGTHS[name]
    return float(np.hypot(*(face[list(a)].mean(axis=0) - face[list(b)].mean(axis=0))))


#: Reach of a face op in interocular distances: full displacement within the first
#: distance of its moving anchors, none beyond the second (warps.solve.Falloff).
FALLOFF = (0.3, 0.6)
#: Held feature regions (warps.hold.Hold), in interocular distances: points of a group
#: closer than HOLD_LINK form one hull; held exactly within HOLD_MARGIN of it, free
#: HOLD_FEATHER beyond; lifted within HOLD_CLEARANCE of a moving anchor.
HOLD_LINK, HOLD_MARGIN, HOLD_FEATHER, HOLD_CLEARANCE = 0.3, 0.02, 0.08, 0.04


def held_indices(spec: OpSpec, moving: tuple[int, ...]) -> tuple[int, ...]:
    """Face indices ``spec`` holds fixed: its explicit ``fixed`` ring and every point of the
    feature groups it does not move (FEATURE_GROUPS minus ``spec.moves``), less ``moving``."""
    held = set(spec.fixed)
    for group, indices in FEATURE_GROUPS.items():
        if group not in spec.moves:
            held.update(indices)
    return tuple(sorted(held - set(moving)))


def moving_indices(motion: Motion) -> tuple[int, ...]:
    """Face indices a face motion moves, in the order of its anchors."""
    if isinstance(motion, Translate):
        return motion.points
    return tuple(i for group in motion.groups for i in group)


def _face_moving(motion: Motion, face: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
    u, v = face_axes(face)
    basis = np.stack([u, v])  # rows: u, v; frame coords = (p - c) @ basis.T
    if isinstance(motion, Scale):
        factors = {"uv": (1 + m, 1 + m), "u": (1 + m, 1.0), "v": (1.0, 1 + m)}[motion.axes]
        srcs, dsts = [], []
        for i, group in enumerate(motion.groups):
            pivot = motion.pivots[i] if motion.pivots else group
            c = face[list(pivot)].mean(axis=0)
            p = face[list(group)]
            local = (p - c) @ basis.T * factors
            srcs.append(p)
            dsts.append(c + local @ basis)
        return np.vstack(srcs), np.vstack(dsts)
    if isinstance(motion, Translate):
        p = face[list(motion.points)]
        shift = m * face_length(face, motion.length) * (np.array(motion.direction) @ basis)
        return p, p + shift
    if isinstance(motion, Spread):
        axis = u if motion.axis == "u" else v
        centres = [face[list(g)].mean(axis=0) for g in motion.groups]
        gap = float((centres[1] - centres[0]) @ axis)
        srcs, dsts = [], []
        for sign, group in zip((-1.0, 1.0), motion.groups):
            p = face[list(group)]
            srcs.append(p)
            dsts.append(p + sign * 0.5 * m * gap * axis)
        return np.vstack(srcs), np.vstack(dsts)
    if isinstance(motion, Rotate):
        midline = face[list(MIDLINE)].mean(axis=0)
        srcs, dsts = [], []
        for group in motion.groups:
            p = face[list(group)]
            c = p.mean(axis=0)
            outward = 1.0 if (c - midline) @ u > 0 else -1.0
            angle = -outward * np.arctan(m)  # in (u, v) coords, v down: negative turns +u end up
            cos, sin = np.cos(angle), np.sin(angle)
            local = (p - c) @ basis.T
            turned = np.stack([cos * local[:, 0] - sin * local[:, 1],
                               sin * local[:, 0] + cos * local[:, 1]], axis=1)  # fmt: skip
            srcs.append(p)
            dsts.append(c + turned @ basis)
        return np.vstack(srcs), np.vstack(dsts)
    raise TypeError(f"motion {type(motion).__name__} does not apply to the face mesh")


# --- The catalog -------------------------------------------------------------------------
BOTH: tuple[str, ...] = ("simulated", "professional")
PRO: tuple[str, ...] = ("professional",)
EYES_RING = RIGHT_EYE_RING + LEFT_EYE_RING + (168, 6)
NOSE_RING = (168, 133, 362, 50, 280, 205, 425, 61, 291, 17)
MOUTH_RING = (2, 98, 327, 205, 425, 135, 364, 200, 175)


def _face(name: str, group: Group, subsets: tuple[str, ...], motion: Motion, moves: tuple[str, ...],
          fixed: tuple[int, ...], pos: float, neg: float, description: str) -> OpSpec:  # fmt: skip
    return OpSpec(name, group, subsets, "face478", motion, tuple(moves), tuple(fixed), pos, neg, description)


def _body(name: str, motion: Motion, fixed: tuple[BodyPoint, ...], pos: float, neg: float,
          description: str) -> OpSpec:  # fmt: skip
    return OpSpec(name, "body", PRO, "pose33", motion, (), tuple(fixed), pos, neg, description)


_HEAD_AND_HIPS = (BodyPoint((NOSE_JOINT,)), BodyPoint((LEFT_EAR,)), BodyPoint((RIGHT_EAR,)),
                  BodyPoint((LEFT_HIP,)), BodyPoint((RIGHT_HIP,)))  # fmt: skip
_NECK = (BodyPoint(SHOULDERS, -0.15, -0.25), BodyPoint(SHOULDERS, 0.15, -0.25),
         BodyPoint(SHOULDERS, 0.0, 0.4))  # fmt: skip
_ARMS = (Limb((LEFT_SHOULDER,), (LEFT_ELBOW,), 0.28), Limb((LEFT_ELBOW,), (LEFT_WRIST,), 0.22),
         Limb((RIGHT_SHOULDER,), (RIGHT_ELBOW,), 0.28), Limb((RIGHT_ELBOW,), (RIGHT_WRIST,), 0.22))  # fmt: skip

_SPECS: tuple[OpSpec, ...] = (
    # The eight simulated ops, with the reference magnitudes.
    _face("eye_size", "face", BOTH, Scale((RIGHT_EYE_ALL, LEFT_EYE_ALL)), EYES, EYES_RING, 0.25, 0.20,
          "scales each eye (contour + iris) about its centre; +100 = 25% larger, -100 = 20% smaller"),
    _face("eye_distance", "face", BOTH, Spread((RIGHT_EYE_ALL, LEFT_EYE_ALL)), EYES,
          RIGHT_BROW_LOWER + LEFT_BROW_LOWER + (168, 6, 197, 143, 372, 117, 346, 118, 347, 119, 348),
          0.15, 0.15, "moves the eyes apart along the eye line; +100 = 15% farther apart"),
    _face("nose_bridge_width", "face", BOTH, Scale((RIGHT_NOSE_BRIDGE + LEFT_NOSE_BRIDGE,), "u"),
          ("nose_bridge",), (168, 133, 362, 245, 465, 47, 277, 126, 355, 1, 4, 48, 278), 0.30, 0.25,
          "widens the nasal bridge about the nose axis; +100 = 30% wider, -100 = 25% narrower"),
    _face("nasal_alae", "face", BOTH, Scale((RIGHT_ALA + LEFT_ALA,), "u"), ("nose_alae",),
          (1, 4, 195, 5, 50, 280, 205, 425, 0, 37, 267), 0.25, 0.25,
          "widens the nostril wings about the nose axis; +100 = 25% wider"),
    _face("nose_length", "face", BOTH,
          Translate(NOSE_TIP + RIGHT_ALA + LEFT_ALA, (0.0, 1.0), "nose_length"),
          ("nose_tip", "nose_alae", "nose_bridge"), NOSE_RING, 0.15, 0.15,
          "moves the nose tip and alae along the face axis; +100 = nose 15% longer (tip down)"),
    _face("mouth_vertical", "face", BOTH, Translate(LIPS, (0.0, -1.0), "philtrum"), MOUTH,
          (6, 50, 280, 136, 365, 152), 0.8, 0.8,
          "moves the whole mouth along the face axis; +100 = up by 0.8 philtrum length"),
    _face("lip_thickness", "face", BOTH,
          Scale((UPPER_LIP_OUTER + UPPER_LIP_INNER, LOWER_LIP_OUTER + LOWER_LIP_INNER), "v",
                (UPPER_LIP_INNER, LOWER_LIP_INNER)), ("upper_lip", "lower_lip"),
          MOUTH_CORNERS + (2, 98, 327, 205, 425, 214, 434, 200, 175), 0.40, 0.30,
          "thickens each lip away from the lip seam; +100 = 40% thicker, -100 = 30% thinner"),
    _face("mouth_width", "face", BOTH, Scale((LIPS,), "u"), MOUTH, MOUTH_RING, 0.25, 0.25,
          "widens the mouth about its centre along the eye line; +100 = 25% wider"),
    # Ten more facial ops for the professional subset.
    _face("eye_height", "face", PRO, Scale((RIGHT_EYE_ALL, LEFT_EYE_ALL), "v"), EYES, EYES_RING, 0.20, 0.15,
          "opens each eye vertically about its centre; +100 = 20% taller, -100 = 15% shorter"),
    _face("eye_tilt", "face", PRO, Rotate((RIGHT_EYE_ALL, LEFT_EYE_ALL)), EYES, EYES_RING, 0.15, 0.15,
          "turns each eye about its centre; +100 = outer corners up (slope 0.15), -100 = down"),
    _face("brow_height", "face", PRO, Translate(RIGHT_EYEBROW + LEFT_EYEBROW, (0.0, -1.0), "brow_eye_gap"),
          BROWS, EYES_HOLD + FOREHEAD_MID + (168, 9, 71, 301, 139, 368), 0.25, 0.25,
          "moves both brows along the face axis; +100 = up by 25% of the brow-eye gap"),
    _face("brow_tilt", "face", PRO, Rotate((RIGHT_EYEBROW, LEFT_EYEBROW)), BROWS,
          EYES_HOLD + FOREHEAD_MID + (168, 9, 162, 389, 139, 368), 0.12, 0.12,
          "turns each brow about its centre; +100 = tails up (slope 0.12), -100 = tails down"),
    _face("nose_tip", "face", PRO, Translate(NOSE_TIP, (0.0, -1.0), "nose_length"), ("nose_tip",),
          RIGHT_ALA + LEFT_ALA + (195, 0, 37, 267), 0.08, 0.08,
          "moves the nose tip along the face axis; +100 = lifted by 8% of the nose length"),
    _face("nose_size", "face", PRO, Scale((NOSE_TIP + RIGHT_ALA + LEFT_ALA + (5, 195, 45, 275),)),
          ("nose_tip", "nose_alae", "nose_bridge"),
          (168, 133, 362, 47, 277, 205, 425, 36, 266, 0, 37, 267, 50, 280), 0.15, 0.15,
          "scales the lower nose about its centre; +100 = 15% larger, -100 = 15% smaller"),
    _face("smile_corners", "face", PRO, Translate(MOUTH_CORNERS, (0.0, -1.0), "mouth_width"), MOUTH,
          (0, 37, 267, 13, 14, 17, 84, 314, 2, 205, 425, 214, 434, 135, 364, 200), 0.06, 0.06,
          "moves the mouth corners along the face axis; +100 = up by 6% of the mouth width"),
    _face("cheekbones", "face", PRO, Scale((RIGHT_CHEEKBONE + LEFT_CHEEKBONE,), "u", (MIDLINE,)),
          ("cheekbones",), RIGHT_TEMPLE + LEFT_TEMPLE + RIGHT_JAW + LEFT_JAW + (33, 263, 1, 61, 291, 50, 280),
          0.06, 0.06, "widens the face at the cheekbones about the midline; +100 = 6% wider"),
    _face("cheek_fullness", "face", PRO, Scale((RIGHT_CHEEK + LEFT_CHEEK,), "u", (MIDLINE,)), ("cheeks",),
          (234, 454, 93, 323, 132, 361, 58, 288, 1, 98, 327, 61, 291, 117, 346, 152), 0.10, 0.10,
          "widens the lower cheeks about the midline; +100 = 10% fuller, -100 = 10% slimmer"),
    _face("forehead_height", "face", PRO, Translate(FOREHEAD_TOP, (0.0, -1.0), "forehead"), ("forehead",),
          RIGHT_EYEBROW + LEFT_EYEBROW + (21, 251, 162, 389, 9), 0.12, 0.12,
          "moves the hairline along the face axis; +100 = forehead 12% taller"),
    # Face shape.
    _face("chin_width", "face_shape", PRO, Scale((CHIN_SIDES,), "u", (MIDLINE,)), ("chin",),
          (61, 291, 17, 84, 314, 58, 288, 172, 397, 205, 425), 0.20, 0.20,
          "widens the chin about the midline; +100 = 20% wider"),
    _face("chin_height", "face_shape", PRO, Translate(CHIN, (0.0, 1.0), "lower_face"), ("chin",),
          (61, 291, 17, 84, 314, 58, 288, 172, 397, 205, 425, 214, 434), 0.20, 0.20,
          "moves the chin along the face axis; +100 = down by 20% of the lip-to-chin length"),
    _face("jawline", "face_shape", PRO, Scale((RIGHT_JAW + LEFT_JAW,), "u", (MIDLINE,)), ("jaw",),
          (234, 454, 93, 323, 152, 148, 377, 1, 61, 291, 205, 425, 207, 427), 0.08, 0.08,
          "widens the jaw angles about the midline; +100 = 8% wider, -100 = 8% slimmer"),
    _face("temples", "face_shape", PRO, Scale((RIGHT_TEMPLE + LEFT_TEMPLE,), "u", (MIDLINE,)), ("temples",),
          FOREHEAD_MID + (10, 109, 338, 234, 454, 33, 263, 46, 276, 70, 300, 116, 345), 0.06, 0.06,
          "widens the face at the temples about the midline; +100 = 6% fuller"),
    # Body: anchors on the silhouette (warps.body).
    _body("square_shoulders",
          ShiftOutline((OutlineMove((LEFT_SHOULDER,), 0.3, -1.0, 0.0, -1.0),
                        OutlineMove((RIGHT_SHOULDER,), -0.3, -1.0, 0.0, -1.0),
                        OutlineMove((LEFT_SHOULDER,), 1.0, -0.3, 0.0, -0.7),
                        OutlineMove((RIGHT_SHOULDER,), -1.0, -0.3, 0.0, -0.7)),
                       (BodyMove(BodyPoint((LEFT_SHOULDER,)), 0.0, -0.6),
                        BodyMove(BodyPoint((RIGHT_SHOULDER,)), 0.0, -0.6)),
                       "shoulder_width", SHOULDERS),
          _HEAD_AND_HIPS + _NECK + (BodyPoint((LEFT_ELBOW,)), BodyPoint((RIGHT_ELBOW,))), 0.06, 0.06,
          "raises the top of the shoulders; +100 = up by 6% of the shoulder width (squarer)"),
    _body("shoulder_width",
          ShiftOutline((OutlineMove((LEFT_SHOULDER,), 1.0, 0.0, 0.5, 0.0),
                        OutlineMove((RIGHT_SHOULDER,), -1.0, 0.0, -0.5, 0.0),
                        OutlineMove((LEFT_SHOULDER,), 0.5, -1.0, 0.5, 0.0),
                        OutlineMove((RIGHT_SHOULDER,), -0.5, -1.0, -0.5, 0.0),
                        OutlineMove((LEFT_ELBOW,), 1.0, 0.0, 0.5, 0.0),
                        OutlineMove((RIGHT_ELBOW,), -1.0, 0.0, -0.5, 0.0)),
                       (BodyMove(BodyPoint((LEFT_SHOULDER,)), 0.5, 0.0),
                        BodyMove(BodyPoint((RIGHT_SHOULDER,)), -0.5, 0.0),
                        BodyMove(BodyPoint((LEFT_ELBOW,)), 0.5, 0.0),
                        BodyMove(BodyPoint((RIGHT_ELBOW,)), -0.5, 0.0)),
                       "shoulder_width", SHOULDERS),
          _HEAD_AND_HIPS + _NECK, 0.12, 0.12,
          "moves the shoulders' silhouette apart along the shoulder line; +100 = 12% broader"),
    _body("arm_slimming", SqueezeLimbs(_ARMS), (), 0.20, 0.15,
          "pushes the arms' silhouette edges towards the limb axis; +100 = 20% slimmer, -100 = 15% wider"),
    _body("leg_length", StretchLegs(),
          (BodyPoint((LEFT_HIP,)), BodyPoint((RIGHT_HIP,)), BodyPoint((LEFT_SHOULDER,)),
           BodyPoint((RIGHT_SHOULDER,)), BodyPoint((LEFT_WRIST,)), BodyPoint((RIGHT_WRIST,))), 0.08, 0.05,
          "stretches the silhouette below the hips along the legs; +100 = legs 8% longer, -100 = 5% shorter"),
    _body("waist_slimming", SqueezeLimbs((Limb(SHOULDERS, HIPS, 0.8, 1.6),), (0.55, 0.7, 0.85), (0.25, 1.05)),
          (BodyPoint((LEFT_SHOULDER,)), BodyPoint((RIGHT_SHOULDER,)), BodyPoint((LEFT_HIP,)),
           BodyPoint((RIGHT_HIP,))), 0.15, 0.10,
          "pushes the torso's silhouette edges at the waist towards the body axis; +100 = waist 15% slimmer"),
)

#: Every op by name.
CATALOG: dict[str, OpSpec] = {spec.name: spec for spec in _SPECS}
