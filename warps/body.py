"""Body ops: control points on the person's silhouette, pose joints for the axes.

A body op reads the 33-point pose (joints with visibility), the person box, the
person's ``outline`` (silhouette polygon) and the ``hold`` polygons of other people
(:class:`warps.landmarks.Landmarks`). Its motion (the kinds below) says which
silhouette points move and how; the anchors it yields also hold

- pose joints (fixed anchors);
- the background on a wall ``gap`` px outside the silhouette around the moving part
  (fixed anchors), so the silhouette moves against a still background rather than
  dragging it along;
- other people, exactly (:class:`warps.hold.Hold` over ``hold``), the person's own face
  (the convex hull of its mesh, when there is one) the same way, and everything beyond
  the op's reach (:class:`warps.solve.Falloff`).

Body frame: ``u`` is the unit vector from the right shoulder (pose 12) to the left (11),
``v`` is ``u`` turned 90 degrees (towards the feet); lengths are in shoulder widths (SW,
the distance between the two shoulder joints) unless named. Coordinates are pixel
(x, y) floats with pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from warps.anchors import Anchors, MissingLandmarks
from warps.hold import Hold
from warps.landmarks import Landmarks
from warps.solve import Falloff

# --- Pose joints (MediaPipe Pose, 33 points) -------------------------------------------
NOSE_JOINT, LEFT_EAR, RIGHT_EAR = 0, 7, 8
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW = 11, 12, 13, 14
LEFT_WRIST, RIGHT_WRIST, LEFT_HIP, RIGHT_HIP = 15, 16, 23, 24
LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE = 25, 26, 27, 28
LEFT_HEEL, RIGHT_HEEL, LEFT_FOOT, RIGHT_FOOT = 29, 30, 31, 32
SHOULDERS, HIPS = (LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_HIP, RIGHT_HIP)
ANKLES, KNEES = (LEFT_ANKLE, RIGHT_ANKLE), (LEFT_KNEE, RIGHT_KNEE)
FEET = (LEFT_ANKLE, RIGHT_ANKLE, LEFT_HEEL, RIGHT_HEEL, LEFT_FOOT, RIGHT_FOOT)

#: The background is held on a wall ``gap`` px outside the silhouette: at least this many
#: times the largest move, this many times the largest move across the silhouette, and
#: this many SW; wall points every WALL_SPACING_SW.
GAP_MOVE, GAP_ACROSS, GAP_MIN_SW, WALL_SPACING_SW = 1.5, 2.5, 0.1, 0.15
#: Wall points closer than this many gaps to a moving point (one not on the silhouette,
#: e.g. a joint the segmentation left out) are dropped.
WALL_CLEAR = 0.9
#: The op's full reach beyond its farthest background anchor, and the falloff to 0, in SW.
REACH_SW, FALLOFF_SW = 0.1, 0.5
#: Held people: exactly still within HOLD_MARGIN_SW of their polygons, free beyond
#: HOLD_FEATHER_SW more.
HOLD_MARGIN_SW, HOLD_FEATHER_SW = 0.02, 0.25
#: StretchLegs: silhouette sample spacing (SW) and where along the hip -> ankle axis the
#: stretch starts (below: held) and the hips' held band begins.
LEG_SPACING_SW, LEG_START, LEG_HELD_FROM = 0.15, 0.05, -0.15


@dataclass(frozen=True)
class BodyPoint:
    """Mean of pose ``joints`` plus (du, dv) shoulder widths along the body axes."""

    joints: tuple[int, ...]
    du: float = 0.0
    dv: float = 0.0


@dataclass(frozen=True)
class BodyMove:
    """``point`` (inside the body) moved by m * length * (mu, mv) along the body axes."""

    point: BodyPoint
    mu: float
    mv: float


@dataclass(frozen=True)
class OutlineMove:
    """The silhouette point where a ray from the mean of ``joints`` along (du, dv) (body
    axes) leaves the outline, moved by m * length * (mu, mv) along the body axes."""

    joints: tuple[int, ...]
    du: float
    dv: float
    mu: float
    mv: float


@dataclass(frozen=True)
class ShiftOutline:
    """Silhouette points and body points moved along the body axes by m times a named
    body length (BODY_LENGTHS); the op needs ``requires`` joints visible."""

    outline_moves: tuple[OutlineMove, ...]
    joint_moves: tuple[BodyMove, ...]
    length: str
    requires: tuple[int, ...]


@dataclass(frozen=True)
class Limb:
    """Segment from the mean of ``start`` joints to the mean of ``end`` joints; its
    estimated full width is ``width`` SW. Its silhouette edges are searched between a
    quarter of the estimated half-width and ``reach`` SW from the axis (default 2.5
    estimated half-widths; clothes can make a limb much wider than its joints say)."""

    start: tuple[int, ...]
    end: tuple[int, ...]
    width: float
    reach: float | None = None


@dataclass(frozen=True)
class SqueezeLimbs:
    """At fractions ``positions`` along each visible limb, its silhouette edges (where
    rays from the axis across the limb leave the outline, see :class:`Limb`) move towards
    the axis so that each edge's distance from it shrinks by the fraction m; at
    fractions ``held`` the edges found are held."""

    limbs: tuple[Limb, ...]
    positions: tuple[float, ...] = (0.3, 0.5, 0.7)
    held: tuple[float, ...] = ()


@dataclass(frozen=True)
class StretchLegs:
    """The silhouette below the hips, and the knee, ankle, heel and foot joints, moved
    along the leg axis (mid-hip -> mid-ankle) by m * leg length * min(t, 1), t the
    fraction of the way from hips to ankles: the legs lengthen by m, the feet move by
    m * leg length. Silhouette points around the hips stay."""


BodyMotion = ShiftOutline | SqueezeLimbs | StretchLegs

#: Named body lengths: distance between the centroids of two joint sets.
BODY_LENGTHS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "shoulder_width": ((LEFT_SHOULDER,), (RIGHT_SHOULDER,)),
    "leg_length": (HIPS, ANKLES),
}


@dataclass(frozen=True, eq=False)
class _Body:
    op: str
    pose: np.ndarray
    visible: np.ndarray
    box: np.ndarray
    outline: np.ndarray
    hold: tuple[np.ndarray, ...]
    u: np.ndarray
    v: np.ndarray
    sw: float

    @staticmethod
    def of(op: str, landmarks: Landmarks, min_visibility: float) -> _Body:
        if landmarks.pose is None:
            raise MissingLandmarks(f"op {op} reads the 33-point pose, which is missing")
        if landmarks.person_box is None:
            raise MissingLandmarks(f"op {op} needs the person box, which is missing")
        if landmarks.outline is None:
            raise MissingLandmarks(f"op {op} needs the person's outline (segmentation), which is missing")
        visible = landmarks.pose_visibility >= min_visibility
        if not visible[list(SHOULDERS)].all():
            raise MissingLandmarks(f"op {op} needs both shoulders visible (>= {min_visibility})")
        pose = landmarks.pose
        u = pose[LEFT_SHOULDER] - pose[RIGHT_SHOULDER]
        sw = float(np.hypot(*u))
        if not sw > 0:
            raise ValueError("pose landmarks are degenerate: both shoulders at the same place")
        u = u / sw
        contour = landmarks.outline.astype(np.float32).reshape(-1, 1, 2)
        hold = landmarks.hold
        if landmarks.face is not None:  # the person's own face is held like another person
            hold = hold + (cv2.convexHull(landmarks.face[:, :2].astype(np.float32))[:, 0].astype(np.float64),)
        return _Body(op, pose, visible, landmarks.person_box, contour, hold, u, np.array([-u[1], u[0]]), sw)

    def axes(self, du: float, dv: float) -> np.ndarray:
        return du * self.u + dv * self.v

    def point(self, p: BodyPoint) -> np.ndarray:
        return self.pose[list(p.joints)].mean(axis=0) + self.sw * self.axes(p.du, p.dv)

    def sees(self, joints: tuple[int, ...]) -> bool:
        return bool(self.visible[list(joints)].all())

    def require(self, joints: tuple[int, ...]) -> None:
        missing = [j for j in joints if not self.visible[j]]
        if missing:
            raise MissingLandmarks(f"op {self.op} needs pose joints {missing} visible")

    def length(self, name: str) -> float:
        a, b = BODY_LENGTHS[name]
        return float(np.hypot(*(self.pose[list(a)].mean(axis=0) - self.pose[list(b)].mean(axis=0))))

    def inside(self, point: np.ndarray) -> bool:
        return cv2.pointPolygonTest(self.outline, (float(point[0]), float(point[1])), False) > 0

    def held(self, point: np.ndarray, within: float = 0.0) -> bool:
        """On another person or the own face, or closer than ``within`` px to one (a hold polygon)."""
        return any(
            cv2.pointPolygonTest(p.astype(np.float32).reshape(-1, 1, 2), (float(point[0]), float(point[1])), True)
            >= -within
            for p in self.hold
        )

    def exit(self, origin: np.ndarray, direction: np.ndarray, max_distance: float) -> np.ndarray | None:
        """Where a ray from ``origin`` (inside the outline) along ``direction`` first leaves
        it, if within ``max_distance``; None otherwise or when the origin is outside."""
        if not self.inside(origin):
            return None
        d = direction / np.hypot(*direction)
        a = self.outline[:, 0].astype(np.float64)
        edge = np.roll(a, -1, axis=0) - a
        rel = a - origin
        denom = d[0] * edge[:, 1] - d[1] * edge[:, 0]
        ok = np.abs(denom) > 1e-12
        safe = np.where(ok, denom, 1.0)
        s = (rel[:, 0] * edge[:, 1] - rel[:, 1] * edge[:, 0]) / safe  # along the ray
        r = (rel[:, 0] * d[1] - rel[:, 1] * d[0]) / safe  # along the edge
        hit = ok & (s > 1e-9) & (r >= 0) & (r <= 1)
        if not hit.any():
            return None
        first = float(s[hit].min())
        return origin + first * d if first <= max_distance else None


@dataclass
class _Controls:
    """Anchors being collected: moving silhouette points with their outward directions."""

    src: list
    dst: list
    outward: list
    fixed: list

    def move(self, point: np.ndarray, shift: np.ndarray, outward: np.ndarray | None) -> None:
        self.src.append(point)
        self.dst.append(point + shift)
        self.outward.append(outward)


def body_anchors(
    op: str, motion: BodyMotion, fixed: tuple[BodyPoint, ...], landmarks: Landmarks, m: float, min_visibility: float
) -> Anchors:
    """The control points, reach and held regions of body op ``op`` at magnitude ``m``.

    Raises MissingLandmarks (with the reason) when the pose, box or outline is absent or
    the body part the op edits shows no usable silhouette.
    """
    body = _Body.of(op, landmarks, min_visibility)
    controls = _Controls([], [], [], [body.point(p) for p in fixed if body.sees(p.joints)])
    if isinstance(motion, ShiftOutline):
        _shift_outline(body, motion, m, controls)
    elif isinstance(motion, SqueezeLimbs):
        _squeeze_limbs(body, motion, m, controls)
    elif isinstance(motion, StretchLegs):
        _stretch_legs(body, m, controls)
    else:
        raise TypeError(f"motion {type(motion).__name__} does not apply to the pose")
    # A point that would move inside another person's held zone cannot move: leave it out.
    zone = (HOLD_MARGIN_SW + HOLD_FEATHER_SW) * body.sw
    keep = [
        i for i, (p, q) in enumerate(zip(controls.src, controls.dst))
        if not (np.any(p != q) and (body.held(p, zone) or body.held(q, zone))) and not body.held(p)
    ]  # fmt: skip
    if not any(np.any(controls.src[i] != controls.dst[i]) for i in keep):
        raise MissingLandmarks(f"op {op}: the body part it edits is covered by or next to another person (or the own face)")
    src = np.array([controls.src[i] for i in keep])
    dst = np.array([controls.dst[i] for i in keep])
    shift = dst - src
    moves = np.hypot(*shift.T)
    across = [abs(float(shift[k] @ controls.outward[i])) for k, i in enumerate(keep) if controls.outward[i] is not None]
    gap = max(GAP_MOVE * float(moves.max()), GAP_ACROSS * max(across, default=0.0), GAP_MIN_SW * body.sw)
    wall = _wall(body, gap, src[moves > 0], gap + float(moves.max()))
    fixed_points = np.array([p for p in controls.fixed if not body.held(p)] + wall).reshape(-1, 2)
    inner = gap + float(moves.max()) + REACH_SW * body.sw
    falloff = Falloff(inner, inner + FALLOFF_SW * body.sw)
    hold = Hold(body.hold, HOLD_MARGIN_SW * body.sw, HOLD_FEATHER_SW * body.sw) if body.hold else None
    return Anchors(np.vstack([src, fixed_points]), np.vstack([dst, fixed_points]), len(src), falloff, hold)


def _wall(body: _Body, gap: float, moving: np.ndarray, reach: float) -> list[np.ndarray]:
    """Fixed background points on the silhouette grown by ``gap`` px, every
    WALL_SPACING_SW, within ``reach`` px of a ``moving`` point (and no closer than
    WALL_CLEAR gaps) and on no other person.

    A continuous wall rather than one anchor per moving point: an isolated fixed point
    in a background that moves around it tears the image around itself.
    """
    poly = body.outline[:, 0].astype(np.float64)
    pad = int(np.ceil(gap)) + 2
    origin = np.floor(poly.min(axis=0)) - pad
    size = (np.ceil(poly.max(axis=0)) - origin + pad + 1).astype(int)
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(poly - origin).astype(np.int32)], 1)
    # The 5x5 chamfer distance (within ~2 % of Euclidean) is 5x faster than the exact one on
    # full-resolution silhouettes; a wall point off by a fraction of a pixel changes nothing.
    grown = (cv2.distanceTransform(1 - mask, cv2.DIST_L2, cv2.DIST_MASK_5) <= gap).astype(np.uint8)
    contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    near = cKDTree(moving)
    wall = []
    for contour in contours:
        for point in _resample_polygon(contour[:, 0].astype(np.float64) + origin, WALL_SPACING_SW * body.sw)[0]:
            distance = near.query(point)[0]
            if WALL_CLEAR * gap <= distance <= reach and not body.held(point):
                wall.append(point)
    return wall


def _shift_outline(body: _Body, motion: ShiftOutline, m: float, controls: _Controls) -> None:
    body.require(motion.requires)
    scale = m * body.length(motion.length)
    for mv in motion.joint_moves:
        point = body.point(mv.point)
        if body.sees(mv.point.joints) and body.inside(point):
            controls.move(point, scale * body.axes(mv.mu, mv.mv), None)
    found = 0
    for om in motion.outline_moves:
        if not body.sees(om.joints):
            continue
        direction = body.axes(om.du, om.dv)
        edge = body.exit(body.pose[list(om.joints)].mean(axis=0), direction, body.sw)
        if edge is not None:
            controls.move(edge, scale * body.axes(om.mu, om.mv), direction / np.hypot(*direction))
            found += 1
    if not found:
        raise MissingLandmarks(f"op {body.op}: no silhouette edge found around the joints it moves")


def _squeeze_limbs(body: _Body, motion: SqueezeLimbs, m: float, controls: _Controls) -> None:
    found = 0
    for limb in motion.limbs:
        if not body.sees(limb.start + limb.end):
            continue
        a = body.pose[list(limb.start)].mean(axis=0)
        b = body.pose[list(limb.end)].mean(axis=0)
        axis = (b - a) / np.hypot(*(b - a))
        normal = np.array([-axis[1], axis[0]])
        half = 0.5 * limb.width * body.sw
        reach = 2.5 * half if limb.reach is None else limb.reach * body.sw
        for t in motion.positions + motion.held:
            centre = a + t * (b - a)
            for side in (-1.0, 1.0):
                edge = body.exit(centre, side * normal, reach)
                if edge is None or np.hypot(*(edge - centre)) < 0.25 * half:
                    continue
                if t in motion.held:
                    controls.fixed.append(edge)
                    continue
                controls.move(edge, m * (centre - edge), side * normal)
                controls.fixed.append(centre)
                found += 1
    if not found:
        raise MissingLandmarks(f"op {body.op}: no limb it edits has both joints visible and a silhouette edge")


def _stretch_legs(body: _Body, m: float, controls: _Controls) -> None:
    body.require(HIPS + KNEES + ANKLES)
    hip = body.pose[list(HIPS)].mean(axis=0)
    ankle = body.pose[list(ANKLES)].mean(axis=0)
    length = float(np.hypot(*(ankle - hip)))
    axis = (ankle - hip) / length
    for joint in KNEES + FEET:
        if body.visible[joint] and body.inside(body.pose[joint]):
            t = float((body.pose[joint] - hip) @ axis) / length
            controls.move(body.pose[joint], m * length * min(max(t, 0.0), 1.0) * axis, None)
    points, normals = _resample_polygon(body.outline[:, 0].astype(np.float64), LEG_SPACING_SW * body.sw)
    t = (points - hip) @ axis / length
    for p, n, tp in zip(points, normals, t):
        if tp > LEG_START:
            controls.move(p, m * length * min(tp, 1.0) * axis, n)
        elif tp > LEG_HELD_FROM:
            controls.fixed.append(p)


def _resample_polygon(poly: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing`` px along a closed polygon (K, 2) and their outward unit normals."""
    closed = np.vstack([poly, poly[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.arange(0.0, along[-1], spacing)
    points = np.stack([np.interp(at, along, closed[:, 0]), np.interp(at, along, closed[:, 1])], axis=1)
    ahead = np.stack([np.interp(at + 0.5 * spacing, along, closed[:, 0], period=along[-1]),
                      np.interp(at + 0.5 * spacing, along, closed[:, 1], period=along[-1])], axis=1)  # fmt: skip
    behind = np.stack([np.interp(at - 0.5 * spacing, along, closed[:, 0], period=along[-1]),
                       np.interp(at - 0.5 * spacing, along, closed[:, 1], period=along[-1])], axis=1)  # fmt: skip
    tangent = ahead - behind
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.maximum(np.hypot(*normal.T), 1e-12)[:, None]
    # Orient outward: the normal of a closed polygon points outside on the side of its orientation.
    area = 0.5 * float(np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1]))
    return points, normal if area > 0 else -normal
