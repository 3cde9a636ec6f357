"""Score detections against hand annotations (tests/fixtures/detect_annotations.json).

Faces: a detected face matches an annotated face when its nose tip (mesh point 1) lies within
``FACE_MATCH_FRACTION`` of the larger side of its box from the annotated nose; pairs are taken
greedily, nearest first, one to one. A match with a *required* annotation is a true positive; a
match with a non-required one (full profile, tiny) counts neither way; a detected face matching
nothing is a false positive; a required annotation matched by nothing is a false negative.

Poses: each annotated person is paired with the detected person whose box overlaps its
annotated box most (IoU >= ``PERSON_MATCH_IOU``); an annotated joint is ok when that person's
accepted 33-point pose puts the joint within ``POSE_OK_FRACTION`` of the annotated box's
diagonal of the annotation. A person without a match or without an accepted pose fails all of
its joints.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.geometry import box_iou

#: Default annotation file.
ANNOTATIONS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "detect_annotations.json"
FACE_MATCH_FRACTION = 0.25
PERSON_MATCH_IOU = 0.3
POSE_OK_FRACTION = 0.1
#: MediaPipe pose indices of the joints annotations may name (person's own left/right).
JOINTS = {
    "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_hip": 23, "right_hip": 24, "left_knee": 25, "right_knee": 26,
}
MESH_NOSE_TIP = 1


@dataclass(frozen=True)
class FaceAnnotation:
    nose: np.ndarray  # (2,) pixel x, y
    iod: float
    required: bool


@dataclass(frozen=True)
class PersonAnnotation:
    box: np.ndarray  # (4,) x0 y0 x1 y1
    joints: dict[str, np.ndarray]  # name in JOINTS -> (2,)


@dataclass(frozen=True)
class PhotoAnnotation:
    name: str
    package: str
    path: str
    size: tuple[int, int]
    faces: tuple[FaceAnnotation, ...]
    persons: tuple[PersonAnnotation, ...]

    def file(self) -> Path:
        """The photo inside its installed package (FileNotFoundError if the package is missing)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(f"package {self.package} (photo {self.name}) is not installed")
        return Path(spec.origin).parent / self.path


@dataclass(frozen=True)
class Score:
    """Counts over one or more photos; see the module docstring."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    joints_ok: int = 0
    joints: int = 0

    def __add__(self, other: Score) -> Score:
        return Score(*(a + b for a, b in zip(self.counts(), other.counts())))

    def counts(self) -> tuple[int, int, int, int, int]:
        return (self.true_positives, self.false_positives, self.false_negatives, self.joints_ok, self.joints)

    @property
    def recall(self) -> float:
        found = self.true_positives + self.false_negatives
        return self.true_positives / found if found else 1.0

    @property
    def precision(self) -> float:
        claimed = self.true_positives + self.false_positives
        return self.true_positives / claimed if claimed else 1.0

    @property
    def pose_ok_rate(self) -> float:
        return self.joints_ok / self.joints if self.joints else 1.0


def load_annotations(path: str | Path = ANNOTATIONS) -> tuple[PhotoAnnotation, ...]:
    photos = json.loads(Path(path).read_text())["photos"]
    return tuple(
        PhotoAnnotation(
            name=p["name"], package=p["package"], path=p["path"], size=(int(p["size"][0]), int(p["size"][1])),
            faces=tuple(FaceAnnotation(np.array(f["nose"], float), float(f["iod"]), bool(f["required"]))
                        for f in p["faces"]),
            persons=tuple(PersonAnnotation(np.array(q["box"], float),
                                           {k: np.array(v, float) for k, v in q["joints"].items()})
                          for q in p["persons"]),
        )
        for p in photos
    )


def score_faces(annotation: PhotoAnnotation, boxes: np.ndarray, noses: np.ndarray) -> Score:
    """Face counts for detected face ``boxes`` (N, 4) with nose tips ``noses`` (N, 2)."""
    boxes, noses = np.asarray(boxes, float).reshape(-1, 4), np.asarray(noses, float).reshape(-1, 2)
    pairs = []
    for i, (box, nose) in enumerate(zip(boxes, noses)):
        radius = FACE_MATCH_FRACTION * max(box[2] - box[0], box[3] - box[1])
        for j, face in enumerate(annotation.faces):
            distance = float(np.hypot(*(nose - face.nose)))
            if distance <= radius:
                pairs.append((distance, i, j))
    used_detections: set[int] = set()
    used_annotations: set[int] = set()
    for _, i, j in sorted(pairs):
        if i not in used_detections and j not in used_annotations:
            used_detections.add(i)
            used_annotations.add(j)
    true_positives = sum(1 for j in used_annotations if annotation.faces[j].required)
    required = sum(1 for face in annotation.faces if face.required)
    return Score(true_positives=true_positives, false_positives=len(boxes) - len(used_detections),
                 false_negatives=required - true_positives)


def score_poses(annotation: PhotoAnnotation, person_boxes: np.ndarray, poses: list[np.ndarray | None]) -> Score:
    """Joint counts for detected persons ``person_boxes`` (M, 4) with accepted poses (33, >=2) or None."""
    person_boxes = np.asarray(person_boxes, float).reshape(-1, 4)
    ok = total = 0
    for person in annotation.persons:
        ious = [box_iou(person.box, box) for box in person_boxes]
        best = int(np.argmax(ious)) if ious else -1
        pose = poses[best] if best >= 0 and ious[best] >= PERSON_MATCH_IOU else None
        tolerance = POSE_OK_FRACTION * float(np.hypot(person.box[2] - person.box[0], person.box[3] - person.box[1]))
        for name, point in person.joints.items():
            total += 1
            if pose is not None and float(np.hypot(*(pose[JOINTS[name], :2] - point))) <= tolerance:
                ok += 1
    return Score(joints_ok=ok, joints=total)
