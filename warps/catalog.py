"""The operation catalog: every liquify op as data, turned into MLS anchors by one function.

An op is an :class:`OpSpec`: which landmarks it reads, a *motion* (one of a handful of
declarative kinds below) naming the anchors that move and how, a *fixed ring* of
anchors that hold the surroundings still, and the magnitude at strength +100 / -100.
:func:`op_anchors` turns a spec, landmarks and a strength into ``(src, dst)`` control
points for :func:`warps.field.solve_backward`; no op has code of its own.

Face frame: ``u`` is the unit vector from the subject's right eye centroid to the left
one (image +x for an upright frontal face), ``v`` is ``u`` turned 90 degrees (image +y,
towards the chin). Body frame: ``u`` from the right shoulder (pose 12) to the left (11),
``v`` likewise turned. Magnitudes are fractions of the feature's own size: the spread
of the points for :class:`Scale`, a named length for :class:`Translate` and
:class:`ShiftBody`, the distance between the groups for :class:`Spread`, the slope for
:class:`Rotate`, the limb width for :class:`SqueezeLimbs`.

Index groups marked "mediapipe" equal ``mp.solutions.face_mesh_connections``' sets
(a test checks them); the others were picked on the fixture photo (docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from warps.landmarks import Landmarks

Group = Literal["face", "face_shape", "body"]
Subset = Literal["simulated", "professional"]
Reads = Literal["face478", "pose33"]
SUBSETS: tuple[str, ...] = ("simulated", "professional")

# --- Face mesh index groups (mediapipe: FACEMESH_* sets, flattened and sorted) ---------
FACE_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172,
             176, 234, 251, 284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389,
             397, 400, 454)  # fmt: skip
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_IRIS = (474, 475, 476, 477)
RIGHT_IRIS = (469, 470, 471, 472)
LEFT_EYEBROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_EYEBROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185,
        191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405,
        409, 415)  # fmt: skip
NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294,
        326, 327, 344, 440)  # fmt: skip

# --- Hand-picked groups (subject's right / left are mirror pairs) ---------------------
RIGHT_IRIS_CENTRE, LEFT_IRIS_CENTRE = 468, 473
RIGHT_EYE_ALL = RIGHT_EYE + RIGHT_IRIS + (RIGHT_IRIS_CENTRE,)
LEFT_EYE_ALL = LEFT_EYE + LEFT_IRIS + (LEFT_IRIS_CENTRE,)
#: Lower eyebrow rows (inner to outer) and the upper rows.
RIGHT_BROW_LOWER, LEFT_BROW_LOWER = (55, 65, 52, 53, 46), (285, 295, 282, 283, 276)
#: Cheek under the eye, outer canthus side, medial side by the nose.
RIGHT_EYE_RING = RIGHT_BROW_LOWER + (143, 117, 118, 119, 120, 121, 128, 122, 193)
LEFT_EYE_RING = LEFT_BROW_LOWER + (372, 346, 347, 348, 349, 350, 357, 351, 417)
NOSE_RIDGE = (168, 6, 197, 195, 5)
RIGHT_NOSE_BRIDGE, LEFT_NOSE_BRIDGE = (196, 3, 51), (419, 248, 281)
RIGHT_ALA = (48, 49, 64, 98, 102, 115, 129, 219, 235, 240)
LEFT_ALA = (278, 279, 294, 327, 331, 344, 358, 439, 455, 460)
NOSE_TIP = (1, 2, 4, 19, 94)
UPPER_LIP_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
UPPER_LIP_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_LIP_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
LOWER_LIP_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_CORNERS = (61, 291, 78, 308)
#: Eye corners and lid midpoints: hold the eyes' shape while the brows move.
EYES_HOLD = (33, 133, 159, 145, 263, 362, 386, 374)
RIGHT_CHEEK, LEFT_CHEEK = (50, 205, 207, 212, 214), (280, 425, 427, 432, 434)
RIGHT_CHEEKBONE, LEFT_CHEEKBONE = (234, 93, 127, 116, 123), (454, 323, 356, 345, 352)
RIGHT_TEMPLE, LEFT_TEMPLE = (21, 54, 162, 71, 139), (251, 284, 389, 301, 368)
RIGHT_JAW, LEFT_JAW = (58, 172, 136, 150), (288, 397, 365, 379)
CHIN = (152, 148, 176, 149, 377, 400, 378, 175, 171, 396, 199)
CHIN_SIDES = (148, 176, 149, 377, 400, 378, 171, 396)
FOREHEAD_TOP = (10, 109, 338, 67, 297, 103, 332)
FOREHEAD_MID = (151, 108, 337, 69, 299, 104, 333)
MIDLINE = (168, 6, 1, 2, 0, 17, 152)

# --- Pose joints (MediaPipe Pose, 33 points) -------------------------------------------
NOSE_JOINT, LEFT_EAR, RIGHT_EAR = 0, 7, 8
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW = 11, 12, 13, 14
LEFT_WRIST, RIGHT_WRIST, LEFT_HIP, RIGHT_HIP = 15, 16, 23, 24
LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE = 25, 26, 27, 28
LEFT_HEEL, RIGHT_HEEL, LEFT_FOOT, RIGHT_FOOT = 29, 30, 31, 32
SHOULDERS, HIPS = (LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_HIP, RIGHT_HIP)

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
#: Named body lengths: distance between the centroids of two joint sets.
BODY_LENGTHS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "shoulder_width": ((LEFT_SHOULDER,), (RIGHT_SHOULDER,)),
    "leg_length": (HIPS, (LEFT_ANKLE, RIGHT_ANKLE)),
}
#: Margin of the fixed ring around the person box, as a fraction of the box size.
BOX_RING_MARGIN = 0.1


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


@dataclass(frozen=True)
class BodyPoint:
    """Mean of pose ``joints`` plus (du, dv) shoulder widths along the body axes."""

    joints: tuple[int, ...]
    du: float = 0.0
    dv: float = 0.0


@dataclass(frozen=True)
class BodyMove:
    """``point`` moved by m * length * (mu, mv) along the body axes."""

    point: BodyPoint
    mu: float
    mv: float


@dataclass(frozen=True)
class ShiftBody:
    """Body points moved along the body axes by m times a named body length."""

    moves: tuple[BodyMove, ...]
    length: str
    requires: tuple[int, ...]


@dataclass(frozen=True)
class Limb:
    """Segment from the mean of ``start`` joints to the mean of ``end`` joints; its
    estimated full width is ``width`` shoulder widths."""

    start: tuple[int, ...]
    end: tuple[int, ...]
    width: float


@dataclass(frozen=True)
class SqueezeLimbs:
    """Edge points of each visible limb, at fractions ``positions`` along it, pushed
    towards its axis so the width shrinks by the fraction m. Axis points and points
    one half-width outside each edge stay fixed."""

    limbs: tuple[Limb, ...]
    positions: tuple[float, ...] = (0.3, 0.5, 0.7)


Motion = Scale | Translate | Spread | Rotate | ShiftBody | SqueezeLimbs


@dataclass(frozen=True)
class OpSpec:
    """One liquify operation. ``fixed`` are face indices (face ops) or body points
    (body ops, which also hold a ring around the person box). Positive strength uses
    ``magnitude_pos``, negative ``magnitude_neg``, both > 0 fractions of feature size."""

    name: str
    group: Group
    subsets: tuple[str, ...]
    reads: Reads
    motion: Motion
    fixed: tuple[int, ...] | tuple[BodyPoint, ...]
    magnitude_pos: float
    magnitude_neg: float
    description: str

    def signed_magnitude(self, strength: int) -> float:
        """m for ``strength`` in [-100, 100]: linear, +mag_pos at +100, -mag_neg at -100."""
        if strength >= 0:
            return strength / 100.0 * self.magnitude_pos
        return strength / 100.0 * self.magnitude_neg


class MissingLandmarks(ValueError):
    """The landmarks an op reads are absent (or the joints it moves are not visible)."""


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
@dataclass(frozen=True)
class Anchors:
    """Control points of one op: ``src`` (M, 2) -> ``dst`` (M, 2) float64, the first
    ``moving`` rows moving, the rest fixed (src == dst)."""

    src: np.ndarray
    dst: np.ndarray
    moving: int


def op_anchors(spec: OpSpec, landmarks: Landmarks, strength: int, *,
               min_visibility: float = 0.5) -> Anchors:  # fmt: skip
    """The control points of ``spec`` at ``strength`` on ``landmarks`` (pixel frame).

    Raises MissingLandmarks when the face mesh (face ops) or the pose, the person box
    or a required joint with visibility >= ``min_visibility`` (body ops) is absent.
    Body anchors whose joints are not visible are left out.
    """
    m = spec.signed_magnitude(strength)
    if spec.reads == "face478":
        if landmarks.face is None:
            raise MissingLandmarks(f"op {spec.name} reads the face mesh, which is missing")
        src, dst = _face_moving(spec.motion, landmarks.face, m)
        fixed = landmarks.face[np.array(spec.fixed, dtype=np.intp)]
    else:
        body = _BodyFrame.of(spec.name, landmarks, min_visibility)
        src, dst, fixed = _body_anchors(spec, body, m)
    return Anchors(
        src=np.vstack([src, fixed]), dst=np.vstack([dst, fixed]), moving=len(src)
    )


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


@dataclass(frozen=True)
class _BodyFrame:
    pose: np.ndarray
    visible: np.ndarray
    box: np.ndarray
    u: np.ndarray
    v: np.ndarray
    shoulder_width: float

    @staticmethod
    def of(op: str, landmarks: Landmarks, min_visibility: float) -> _BodyFrame:
        if landmarks.pose is None:
            raise MissingLandmarks(f"op {op} reads the 33-point pose, which is missing")
        if landmarks.person_box is None:
            raise MissingLandmarks(f"op {op} needs the person box, which is missing")
        visible = landmarks.pose_visibility >= min_visibility
        if not visible[list(SHOULDERS)].all():
            raise MissingLandmarks(f"op {op} needs both shoulders visible (>= {min_visibility})")
        pose = landmarks.pose
        u = pose[LEFT_SHOULDER] - pose[RIGHT_SHOULDER]
        width = float(np.hypot(*u))
        if not width > 0:
            raise ValueError("pose landmarks are degenerate: both shoulders at the same place")
        u = u / width
        return _BodyFrame(pose, visible, landmarks.person_box, u, np.array([-u[1], u[0]]), width)

    def point(self, p: BodyPoint) -> np.ndarray:
        base = self.pose[list(p.joints)].mean(axis=0)
        return base + self.shoulder_width * (p.du * self.u + p.dv * self.v)

    def sees(self, joints: tuple[int, ...]) -> bool:
        return bool(self.visible[list(joints)].all())

    def length(self, name: str) -> float:
        a, b = BODY_LENGTHS[name]
        return float(np.hypot(*(self.pose[list(a)].mean(axis=0) - self.pose[list(b)].mean(axis=0))))

    def box_ring(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        mx, my = BOX_RING_MARGIN * (x1 - x0), BOX_RING_MARGIN * (y1 - y0)
        xs = (x0 - mx, (x0 + x1) / 2, x1 + mx)
        ys = (y0 - my, (y0 + y1) / 2, y1 + my)
        return np.array([(x, y) for y in ys for x in xs if (x, y) != (xs[1], ys[1])])


def _body_anchors(spec: OpSpec, body: _BodyFrame, m: float) -> tuple[np.ndarray, ...]:
    motion = spec.motion
    fixed = [body.point(p) for p in spec.fixed if body.sees(p.joints)]
    if isinstance(motion, ShiftBody):
        missing = [j for j in motion.requires if not body.visible[j]]
        if missing:
            raise MissingLandmarks(f"op {spec.name} needs pose joints {missing} visible")
        length = body.length(motion.length)
        moves = [mv for mv in motion.moves if body.sees(mv.point.joints)]
        src = np.array([body.point(mv.point) for mv in moves])
        dst = src + np.array([m * length * (mv.mu * body.u + mv.mv * body.v) for mv in moves])
    elif isinstance(motion, SqueezeLimbs):
        src_l, dst_l = [], []
        for limb in motion.limbs:
            if not body.sees(limb.start + limb.end):
                continue
            a = body.pose[list(limb.start)].mean(axis=0)
            b = body.pose[list(limb.end)].mean(axis=0)
            axis = (b - a) / np.hypot(*(b - a))
            normal = np.array([-axis[1], axis[0]])
            half = 0.5 * limb.width * body.shoulder_width
            for t in motion.positions:
                centre = a + t * (b - a)
                fixed.append(centre)
                for side in (-1.0, 1.0):
                    edge = centre + side * half * normal
                    src_l.append(edge)
                    dst_l.append(edge - side * m * half * normal)
                    fixed.append(centre + side * 2 * half * normal)
        if not src_l:
            raise MissingLandmarks(f"op {spec.name}: none of its limbs has both joints visible")
        src, dst = np.array(src_l), np.array(dst_l)
    else:
        raise TypeError(f"motion {type(motion).__name__} does not apply to the pose")
    return src, dst, np.vstack([np.array(fixed).reshape(-1, 2), body.box_ring()])


# --- The catalog -------------------------------------------------------------------------
BOTH: tuple[str, ...] = ("simulated", "professional")
PRO: tuple[str, ...] = ("professional",)
EYES_RING = RIGHT_EYE_RING + LEFT_EYE_RING + (168, 6)
NOSE_RING = (168, 133, 362, 50, 280, 205, 425, 61, 291, 17)
MOUTH_RING = (2, 98, 327, 205, 425, 135, 364, 200, 175)
LOWER_FACE_RING = (234, 454, 132, 361, 58, 288, 1, 98, 327, 205, 425, 50, 280)


def _face(name: str, group: Group, subsets: tuple[str, ...], motion: Motion, fixed: tuple[int, ...],
          pos: float, neg: float, description: str) -> OpSpec:  # fmt: skip
    return OpSpec(name, group, subsets, "face478", motion, tuple(fixed), pos, neg, description)


def _body(name: str, motion: Motion, fixed: tuple[BodyPoint, ...], pos: float, neg: float,
          description: str) -> OpSpec:  # fmt: skip
    return OpSpec(name, "body", PRO, "pose33", motion, tuple(fixed), pos, neg, description)


_HEAD_AND_HIPS = (BodyPoint((NOSE_JOINT,)), BodyPoint((LEFT_EAR,)), BodyPoint((RIGHT_EAR,)),
                  BodyPoint((LEFT_HIP,)), BodyPoint((RIGHT_HIP,)))  # fmt: skip
_NECK = (BodyPoint(SHOULDERS, -0.15, -0.25), BodyPoint(SHOULDERS, 0.15, -0.25),
         BodyPoint(SHOULDERS, 0.0, 0.4))  # fmt: skip
_ARMS = (Limb((LEFT_SHOULDER,), (LEFT_ELBOW,), 0.28), Limb((LEFT_ELBOW,), (LEFT_WRIST,), 0.22),
         Limb((RIGHT_SHOULDER,), (RIGHT_ELBOW,), 0.28), Limb((RIGHT_ELBOW,), (RIGHT_WRIST,), 0.22))  # fmt: skip

_SPECS: tuple[OpSpec, ...] = (
    # The eight simulated ops, with the reference magnitudes.
    _face("eye_size", "face", BOTH, Scale((RIGHT_EYE_ALL, LEFT_EYE_ALL)), EYES_RING, 0.25, 0.20,
          "scales each eye (contour + iris) about its centre; +100 = 25% larger, -100 = 20% smaller"),
    _face("eye_distance", "face", BOTH, Spread((RIGHT_EYE_ALL, LEFT_EYE_ALL)),
          RIGHT_BROW_LOWER + LEFT_BROW_LOWER + (168, 6, 197, 143, 372, 117, 346, 118, 347, 119, 348),
          0.15, 0.15, "moves the eyes apart along the eye line; +100 = 15% farther apart"),
    _face("nose_bridge_width", "face", BOTH, Scale((RIGHT_NOSE_BRIDGE + LEFT_NOSE_BRIDGE,), "u"),
          (168, 133, 362, 245, 465, 47, 277, 126, 355, 1, 4, 48, 278), 0.30, 0.25,
          "widens the nasal bridge about the nose axis; +100 = 30% wider, -100 = 25% narrower"),
    _face("nasal_alae", "face", BOTH, Scale((RIGHT_ALA + LEFT_ALA,), "u"),
          (1, 4, 195, 5, 50, 280, 205, 425, 0, 37, 267), 0.25, 0.25,
          "widens the nostril wings about the nose axis; +100 = 25% wider"),
    _face("nose_length", "face", BOTH,
          Translate(NOSE_TIP + RIGHT_ALA + LEFT_ALA, (0.0, 1.0), "nose_length"), NOSE_RING, 0.15, 0.15,
          "moves the nose tip and alae along the face axis; +100 = nose 15% longer (tip down)"),
    _face("mouth_vertical", "face", BOTH, Translate(LIPS, (0.0, -1.0), "philtrum"),
          (6, 50, 280, 136, 365, 152), 0.8, 0.8,
          "moves the whole mouth along the face axis; +100 = up by 0.8 philtrum length"),
    _face("lip_thickness", "face", BOTH,
          Scale((UPPER_LIP_OUTER + UPPER_LIP_INNER, LOWER_LIP_OUTER + LOWER_LIP_INNER), "v",
                (UPPER_LIP_INNER, LOWER_LIP_INNER)),
          MOUTH_CORNERS + (2, 98, 327, 205, 425, 214, 434, 200, 175), 0.40, 0.30,
          "thickens each lip away from the lip seam; +100 = 40% thicker, -100 = 30% thinner"),
    _face("mouth_width", "face", BOTH, Scale((LIPS,), "u"), MOUTH_RING, 0.25, 0.25,
          "widens the mouth about its centre along the eye line; +100 = 25% wider"),
    # Ten more facial ops for the professional subset.
    _face("eye_height", "face", PRO, Scale((RIGHT_EYE_ALL, LEFT_EYE_ALL), "v"), EYES_RING, 0.20, 0.15,
          "opens each eye vertically about its centre; +100 = 20% taller, -100 = 15% shorter"),
    _face("eye_tilt", "face", PRO, Rotate((RIGHT_EYE_ALL, LEFT_EYE_ALL)), EYES_RING, 0.15, 0.15,
          "turns each eye about its centre; +100 = outer corners up (slope 0.15), -100 = down"),
    _face("brow_height", "face", PRO, Translate(RIGHT_EYEBROW + LEFT_EYEBROW, (0.0, -1.0), "brow_eye_gap"),
          EYES_HOLD + FOREHEAD_MID + (168, 9, 71, 301, 139, 368), 0.25, 0.25,
          "moves both brows along the face axis; +100 = up by 25% of the brow-eye gap"),
    _face("brow_tilt", "face", PRO, Rotate((RIGHT_EYEBROW, LEFT_EYEBROW)),
          EYES_HOLD + FOREHEAD_MID + (168, 9, 162, 389, 139, 368), 0.12, 0.12,
          "turns each brow about its centre; +100 = tails up (slope 0.12), -100 = tails down"),
    _face("nose_tip", "face", PRO, Translate(NOSE_TIP, (0.0, -1.0), "nose_length"),
          RIGHT_ALA + LEFT_ALA + (195, 0, 37, 267), 0.08, 0.08,
          "moves the nose tip along the face axis; +100 = lifted by 8% of the nose length"),
    _face("nose_size", "face", PRO, Scale((NOSE_TIP + RIGHT_ALA + LEFT_ALA + (5, 195, 45, 275),)),
          (168, 133, 362, 47, 277, 205, 425, 36, 266, 0, 37, 267, 50, 280), 0.15, 0.15,
          "scales the lower nose about its centre; +100 = 15% larger, -100 = 15% smaller"),
    _face("smile_corners", "face", PRO, Translate(MOUTH_CORNERS, (0.0, -1.0), "mouth_width"),
          (0, 37, 267, 13, 14, 17, 84, 314, 2, 205, 425, 214, 434, 135, 364, 200), 0.06, 0.06,
          "moves the mouth corners along the face axis; +100 = up by 6% of the mouth width"),
    _face("cheekbones", "face", PRO, Scale((RIGHT_CHEEKBONE + LEFT_CHEEKBONE,), "u", (MIDLINE,)),
          RIGHT_TEMPLE + LEFT_TEMPLE + RIGHT_JAW + LEFT_JAW + (33, 263, 1, 61, 291, 50, 280), 0.06, 0.06,
          "widens the face at the cheekbones about the midline; +100 = 6% wider"),
    _face("cheek_fullness", "face", PRO, Scale((RIGHT_CHEEK + LEFT_CHEEK,), "u", (MIDLINE,)),
          (234, 454, 93, 323, 132, 361, 58, 288, 1, 98, 327, 61, 291, 117, 346, 152), 0.10, 0.10,
          "widens the lower cheeks about the midline; +100 = 10% fuller, -100 = 10% slimmer"),
    _face("forehead_height", "face", PRO, Translate(FOREHEAD_TOP, (0.0, -1.0), "forehead"),
          RIGHT_EYEBROW + LEFT_EYEBROW + (21, 251, 162, 389, 9), 0.12, 0.12,
          "moves the hairline along the face axis; +100 = forehead 12% taller"),
    # Face shape.
    _face("chin_width", "face_shape", PRO, Scale((CHIN_SIDES,), "u", (MIDLINE,)),
          (61, 291, 17, 84, 314, 58, 288, 172, 397, 205, 425), 0.20, 0.20,
          "widens the chin about the midline; +100 = 20% wider"),
    _face("chin_height", "face_shape", PRO, Translate(CHIN, (0.0, 1.0), "lower_face"),
          (61, 291, 17, 84, 314, 58, 288, 172, 397, 205, 425, 214, 434), 0.20, 0.20,
          "moves the chin along the face axis; +100 = down by 20% of the lip-to-chin length"),
    _face("jawline", "face_shape", PRO, Scale((RIGHT_JAW + LEFT_JAW,), "u", (MIDLINE,)),
          (234, 454, 93, 323, 152, 148, 377, 1, 61, 291, 205, 425, 207, 427), 0.08, 0.08,
          "widens the jaw angles about the midline; +100 = 8% wider, -100 = 8% slimmer"),
    _face("temples", "face_shape", PRO, Scale((RIGHT_TEMPLE + LEFT_TEMPLE,), "u", (MIDLINE,)),
          FOREHEAD_MID + (10, 109, 338, 234, 454, 33, 263, 46, 276, 70, 300, 116, 345), 0.06, 0.06,
          "widens the face at the temples about the midline; +100 = 6% fuller"),
    # Body.
    _body("square_shoulders",
          ShiftBody((BodyMove(BodyPoint((LEFT_SHOULDER,), 0.08, -0.12), 0.0, -1.0),
                     BodyMove(BodyPoint((RIGHT_SHOULDER,), -0.08, -0.12), 0.0, -1.0),
                     BodyMove(BodyPoint((LEFT_SHOULDER,)), 0.0, -0.6),
                     BodyMove(BodyPoint((RIGHT_SHOULDER,)), 0.0, -0.6)),
                    "shoulder_width", SHOULDERS),
          _HEAD_AND_HIPS + _NECK + (BodyPoint((LEFT_ELBOW,)), BodyPoint((RIGHT_ELBOW,))), 0.06, 0.06,
          "raises the outer shoulder line; +100 = up by 6% of the shoulder width (squarer)"),
    _body("shoulder_width",
          ShiftBody((BodyMove(BodyPoint((LEFT_SHOULDER,)), 0.5, 0.0),
                     BodyMove(BodyPoint((RIGHT_SHOULDER,)), -0.5, 0.0),
                     BodyMove(BodyPoint((LEFT_SHOULDER,), 0.05, -0.12), 0.5, 0.0),
                     BodyMove(BodyPoint((RIGHT_SHOULDER,), -0.05, -0.12), -0.5, 0.0),
                     BodyMove(BodyPoint((LEFT_ELBOW,)), 0.5, 0.0),
                     BodyMove(BodyPoint((RIGHT_ELBOW,)), -0.5, 0.0)),
                    "shoulder_width", SHOULDERS),
          _HEAD_AND_HIPS + _NECK, 0.12, 0.12,
          "moves the shoulders apart along the shoulder line; +100 = 12% broader"),
    _body("arm_slimming", SqueezeLimbs(_ARMS), (), 0.20, 0.15,
          "pushes upper-arm and forearm edges towards the limb axis; +100 = 20% slimmer, -100 = 15% wider"),
    _body("leg_length",
          ShiftBody(tuple(BodyMove(BodyPoint((j,)), 0.0, 0.5) for j in (LEFT_KNEE, RIGHT_KNEE))
                    + tuple(BodyMove(BodyPoint((j,)), 0.0, 1.0)
                            for j in (LEFT_ANKLE, RIGHT_ANKLE, LEFT_HEEL, RIGHT_HEEL, LEFT_FOOT, RIGHT_FOOT)),
                    "leg_length", HIPS + (LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE)),
          (BodyPoint((LEFT_HIP,)), BodyPoint((RIGHT_HIP,)), BodyPoint((LEFT_SHOULDER,)),
           BodyPoint((RIGHT_SHOULDER,)), BodyPoint((LEFT_WRIST,)), BodyPoint((RIGHT_WRIST,))), 0.08, 0.05,
          "moves knees and feet down the body axis; +100 = legs 8% longer, -100 = 5% shorter"),
    _body("waist_slimming", SqueezeLimbs((Limb(SHOULDERS, HIPS, 0.8),), (0.55, 0.7, 0.85)),
          (BodyPoint((LEFT_SHOULDER,)), BodyPoint((RIGHT_SHOULDER,)), BodyPoint((LEFT_HIP,)),
           BodyPoint((RIGHT_HIP,))), 0.15, 0.10,
          "pushes the torso edges at the waist towards the body axis; +100 = waist 15% slimmer"),
)

#: Every op by name.
CATALOG: dict[str, OpSpec] = {spec.name: spec for spec in _SPECS}
