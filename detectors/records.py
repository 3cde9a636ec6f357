"""One result record per image: persons (boxes, poses, outlines), face meshes, gate verdicts, model ids.

Coordinates are full-resolution pixel (x, y) with pixel centres at integers; boxes are
(x0, y0, x1, y1) of the outer pixel edges, so a box covering the whole image is
(-0.5, -0.5, w - 0.5, h - 0.5). Depths (z) are relative and in the same pixel units
as x (MediaPipe convention: smaller z is closer to the camera).
``to_row`` / ``from_row`` round-trip losslessly through ``manifests.detections.DETECTIONS_SCHEMA``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from detectors.reasons import NO_FACE, POSE_NOT_EXAMINED
from manifests.detections import (
    DETECTIONS_SCHEMA_VERSION,
    FACE_POINTS,
    PERSON_KEYPOINTS,
    POSE_POINTS,
)


def _f32(array: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A read-only float32 copy of ``array`` reshaped to ``shape``; ValueError on a size mismatch."""
    out = np.array(array, dtype=np.float32)
    if out.size != int(np.prod(shape)):
        raise ValueError(f"{what}: expected {int(np.prod(shape))} values for shape {shape}, got {out.size}")
    out = out.reshape(shape)
    out.flags.writeable = False
    return out


def _flat(array: np.ndarray) -> list[float]:
    return array.reshape(-1).tolist()


@dataclass(frozen=True)
class ModelId:
    """A model actually used: name, file path and sha256 of the file."""

    name: str
    path: str
    sha256: str


@dataclass(frozen=True)
class GateVerdict:
    """One quality gate: ``passed`` compares ``value`` with ``threshold``; ``code`` names the failure."""

    code: str
    passed: bool
    value: float
    threshold: float


PoseSource = Literal["mediapipe", "yolo", "none"]
PersonOrigin = Literal["yolo", "face"]


@dataclass(frozen=True, eq=False)
class Person:
    """One person: where it is, its skeleton and its outline.

    ``box`` (4,) float32 and ``score``: YOLO's, or for ``origin == "face"`` a box derived from
    the face that no YOLO person holds (detectors.association.derived_person_box) and that face's
    detector score. ``keypoints`` (17, 3) float32: YOLO's COCO keypoints (x, y, conf); zeros for
    derived persons. ``pose`` (33, 4) float32 (x, y, z, visibility) in MediaPipe's order or None;
    ``pose_source``, ``pose_agreement`` and ``pose_check``: see manifests.detections (the pose is
    present exactly when ``pose_source != "none"``). ``outline`` (K, 2) float32: closed polygon
    of the person's own part of the selfie-segmentation mask (K = 0 when none was found).
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    origin: PersonOrigin = "yolo"
    pose: np.ndarray | None = None
    pose_source: PoseSource = "none"
    pose_agreement: float | None = None
    pose_check: str = POSE_NOT_EXAMINED
    outline: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _f32(self.box, (4,), "person box"))
        object.__setattr__(self, "keypoints", _f32(self.keypoints, (PERSON_KEYPOINTS, 3), "person keypoints"))
        if self.pose is not None:
            object.__setattr__(self, "pose", _f32(self.pose, (POSE_POINTS, 4), "person pose"))
        outline = np.array(self.outline, dtype=np.float32)
        object.__setattr__(self, "outline", _f32(outline, (outline.size // 2, 2), "person outline"))
        if self.origin not in ("yolo", "face"):
            raise ValueError(f"person origin must be yolo|face, got {self.origin!r}")
        if self.pose_source not in ("mediapipe", "yolo", "none"):
            raise ValueError(f"pose_source must be mediapipe|yolo|none, got {self.pose_source!r}")
        if (self.pose is None) != (self.pose_source == "none"):
            raise ValueError(f"pose_source {self.pose_source!r} but pose is {'absent' if self.pose is None else 'present'}")

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = (float(v) for v in self.box)
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@dataclass(frozen=True, eq=False)
class Face:
    """A 478-point face mesh (478, 3) float32 (x, y, z) assigned to ``person_index``.

    ``box`` is the landmarks' bounding box, ``detection_box`` the face detector's box and
    ``score`` its score; yaw/pitch/roll in degrees (detectors.headpose); ``inter_ocular`` is
    the distance between the two eye centres in pixels; ``verdicts`` are this face's gates.
    """

    person_index: int
    landmarks: np.ndarray
    box: np.ndarray
    detection_box: np.ndarray
    score: float
    yaw: float
    pitch: float
    roll: float
    inter_ocular: float
    verdicts: tuple[GateVerdict, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "landmarks", _f32(self.landmarks, (FACE_POINTS, 3), "face landmarks"))
        object.__setattr__(self, "box", _f32(self.box, (4,), "face box"))
        object.__setattr__(self, "detection_box", _f32(self.detection_box, (4,), "face detection box"))

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


@dataclass(frozen=True, eq=False)
class DroppedFace:
    """A face the face detector found that is not in ``faces``: its box (4,), score and reason code."""

    box: np.ndarray
    score: float
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _f32(self.box, (4,), "dropped face box"))


@dataclass(frozen=True, eq=False)
class Pose:
    """An accepted 33-point pose (33, 4) float32 (x, y, z, visibility) of ``person_index``."""

    person_index: int
    landmarks: np.ndarray
    source: PoseSource

    def __post_init__(self) -> None:
        object.__setattr__(self, "landmarks", _f32(self.landmarks, (POSE_POINTS, 4), "pose landmarks"))


@dataclass(frozen=True)
class PersonOutlines:
    """Person ``index``'s outline (K, 2) and, for every other person, its index, outline and box."""

    index: int
    outline: np.ndarray
    others: tuple[tuple[int, np.ndarray, np.ndarray], ...]


@dataclass(frozen=True, eq=False)
class PortraitDetections:
    """Everything detected on one image, with gate verdicts under ``people_policy``.

    ``image_size`` and ``detect_size`` are (w, h); ``scale`` = detect long side / image long
    side (1.0 when the image was not downscaled). Persons: YOLO's by box area (largest first),
    then those derived from faces. ``dropped_faces``: faces found but not kept, with reasons.
    """

    schema_version: int
    image_size: tuple[int, int]
    detect_size: tuple[int, int]
    scale: float
    people_policy: str
    persons: tuple[Person, ...]
    faces: tuple[Face, ...]
    dropped_faces: tuple[DroppedFace, ...]
    verdicts: tuple[GateVerdict, ...]
    models: tuple[ModelId, ...]

    @property
    def poses(self) -> tuple[Pose, ...]:
        """The accepted poses (``pose_source`` mediapipe or yolo), in person order."""
        return tuple(
            Pose(index, person.pose, person.pose_source)
            for index, person in enumerate(self.persons) if person.pose is not None
        )

    def outlines(self, index: int) -> PersonOutlines:
        """Person ``index``'s outline and every other person's (index, outline, box), for body ops."""
        if not 0 <= index < len(self.persons):
            raise IndexError(f"person {index} of {len(self.persons)}")
        others = tuple((j, p.outline, p.box) for j, p in enumerate(self.persons) if j != index)
        return PersonOutlines(index, self.persons[index].outline, others)

    def usable_faces(self) -> tuple[int, ...]:
        """Indices into ``faces`` usable under the policy: image gates and all face gates pass."""
        if not all(v.passed for v in self.verdicts):
            return ()
        return tuple(
            i for i, face in enumerate(self.faces)
            if face.passed and (self.people_policy != "largest" or face.person_index == 0)
        )

    def reject_reason(self) -> str | None:
        """None when a face is usable, else the reason code of the first failing gate."""
        if self.usable_faces():
            return None
        for verdict in self.verdicts:
            if not verdict.passed:
                return verdict.code
        considered = [f for f in self.faces if self.people_policy != "largest" or f.person_index == 0]
        for face in considered:
            for verdict in face.verdicts:
                if not verdict.passed:
                    return verdict.code
        return NO_FACE

    def to_row(self) -> dict[str, Any]:
        """Plain-Python row for ``DETECTIONS_SCHEMA`` (without the ``source_id`` key column)."""
        return {
            "schema_version": self.schema_version,
            "image_width": self.image_size[0],
            "image_height": self.image_size[1],
            "detect_width": self.detect_size[0],
            "detect_height": self.detect_size[1],
            "scale": self.scale,
            "people_policy": self.people_policy,
            "persons": [_person_row(p, _flat) for p in self.persons],
            "faces": [_face_row(f, _flat) for f in self.faces],
            "dropped_faces": [{"box": _flat(d.box), "score": d.score, "reason": d.reason} for d in self.dropped_faces],
            "verdicts": [_verdict_row(v) for v in self.verdicts],
            "models": [{"name": m.name, "path": m.path, "sha256": m.sha256} for m in self.models],
            "usable_faces": list(self.usable_faces()),
            "reject_reason": self.reject_reason(),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PortraitDetections:
        """Inverse of :meth:`to_row`; extra keys (``source_id``) are ignored, derived ones checked."""
        if row["schema_version"] != DETECTIONS_SCHEMA_VERSION:
            raise ValueError(
                f"detections schema_version {row['schema_version']} != supported {DETECTIONS_SCHEMA_VERSION}"
            )
        record = cls(
            schema_version=int(row["schema_version"]),
            image_size=(int(row["image_width"]), int(row["image_height"])),
            detect_size=(int(row["detect_width"]), int(row["detect_height"])),
            scale=float(row["scale"]),
            people_policy=str(row["people_policy"]),
            persons=tuple(
                Person(
                    box=p["box"], score=float(p["score"]), keypoints=p["keypoints"], origin=str(p["origin"]),
                    pose=None if _missing(p["pose"]) else p["pose"], pose_source=str(p["pose_source"]),
                    pose_agreement=None if _missing(p["pose_agreement"]) else float(p["pose_agreement"]),
                    pose_check=str(p["pose_check"]), outline=np.asarray(p["outline"], dtype=np.float32),
                )
                for p in row["persons"]
            ),
            faces=tuple(
                Face(
                    person_index=int(f["person_index"]), landmarks=f["landmarks"], box=f["box"],
                    detection_box=f["detection_box"], score=float(f["score"]), yaw=float(f["yaw"]),
                    pitch=float(f["pitch"]), roll=float(f["roll"]), inter_ocular=float(f["inter_ocular"]),
                    verdicts=tuple(_verdict(v) for v in f["verdicts"]),
                )
                for f in row["faces"]
            ),
            dropped_faces=tuple(DroppedFace(d["box"], float(d["score"]), str(d["reason"])) for d in row["dropped_faces"]),
            verdicts=tuple(_verdict(v) for v in row["verdicts"]),
            models=tuple(ModelId(m["name"], m["path"], m["sha256"]) for m in row["models"]),
        )
        derived = (list(record.usable_faces()), record.reject_reason())
        stored_reason = row["reject_reason"] if isinstance(row["reject_reason"], str) else None  # pandas: NaN
        if derived != ([int(i) for i in row["usable_faces"]], stored_reason):
            raise ValueError(f"row's usable_faces/reject_reason disagree with its verdicts: {derived}")
        return record

    def to_json(self) -> dict[str, Any]:
        """Readable JSON document (nested point lists) for the CLI."""
        detector = self.models[0].name if self.models else ""
        nested = lambda array: array.tolist()  # noqa: E731
        return {
            "image_size": list(self.image_size),
            "detect_size": list(self.detect_size),
            "scale": self.scale,
            "people_policy": self.people_policy,
            "persons": [{**_person_row(p, nested), "detector": detector if p.origin == "yolo" else "face"}
                        for p in self.persons],
            "faces": [_face_row(f, nested) for f in self.faces],
            "dropped_faces": [{"box": d.box.tolist(), "score": d.score, "reason": d.reason} for d in self.dropped_faces],
            "verdicts": [_verdict_row(v) for v in self.verdicts],
            "usable_faces": list(self.usable_faces()),
            "reject_reason": self.reject_reason(),
            "models": [{"name": m.name, "path": m.path, "sha256": m.sha256} for m in self.models],
        }


def _missing(value: Any) -> bool:
    """None, or pandas' NaN for a missing float / list cell."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def _person_row(p: Person, points: Any) -> dict[str, Any]:
    return {
        "box": points(p.box), "score": p.score, "keypoints": points(p.keypoints), "origin": p.origin,
        "pose": None if p.pose is None else points(p.pose), "pose_source": p.pose_source,
        "pose_agreement": p.pose_agreement, "pose_check": p.pose_check, "outline": points(p.outline),
    }


def _face_row(f: Face, points: Any) -> dict[str, Any]:
    return {
        "person_index": f.person_index, "landmarks": points(f.landmarks), "box": points(f.box),
        "detection_box": points(f.detection_box), "score": f.score, "yaw": f.yaw, "pitch": f.pitch,
        "roll": f.roll, "inter_ocular": f.inter_ocular, "verdicts": [_verdict_row(v) for v in f.verdicts],
    }


def _verdict_row(v: GateVerdict) -> dict[str, Any]:
    return {"code": v.code, "passed": v.passed, "value": v.value, "threshold": v.threshold}


def _verdict(row: dict[str, Any]) -> GateVerdict:
    return GateVerdict(str(row["code"]), bool(row["passed"]), float(row["value"]), float(row["threshold"]))
