"""PortraitDetector: persons (YOLO), then per person a face mesh and a pose (MediaPipe), then gates.

Pipeline per image (RGB uint8, full resolution):
1. YOLO on a copy downscaled to ``detect_long_side``; boxes/keypoints mapped back exactly
   (detectors.geometry); persons sorted by box area (largest first), at most ``max_persons``.
2. Face mesh on a square head window per person (placed from YOLO's face keypoints),
   cut from the full-resolution image. A face is kept only if its box centre lies inside
   that person's box; when two persons' windows find the same face (box IoU > 0.5) it goes
   to the person whose YOLO nose keypoint is nearest the mesh's nose tip.
3. Pose on each person's box grown by ``crop_margin``, cut from the full-resolution image.
4. Gates (detectors.gates) under ``GateConfig.people_policy``. Under "largest" steps 2 and 3
   run on the largest person only (the others stay in ``persons``); under "each" and
   "reject" on every person.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from detectors import gates
from detectors.config import DetectorConfig, GateConfig
from detectors.face_mesh import FaceMeshDetector
from detectors.geometry import NOSE, check_rgb, cut, downscale, expand, head_window, to_full
from detectors.headpose import head_pose
from detectors.pose import PoseDetector
from detectors.records import Face, ModelId, Person, PortraitDetections, Pose
from detectors.yolo_person import YoloPersonDetector
from manifests.detections import DETECTIONS_SCHEMA_VERSION

MESH_NOSE_TIP = 1
DUPLICATE_FACE_IOU = 0.5


@dataclass(frozen=True)
class StageTimings:
    """Wall-clock milliseconds of one ``detect`` call, per stage."""

    ms_person: float
    ms_face: float
    ms_pose: float
    ms_total: float


@dataclass(frozen=True)
class _FaceCandidate:
    person_index: int
    mesh: np.ndarray  # (478, 3) full-resolution pixels
    score: float
    box: np.ndarray  # (4,)
    nose_distance: float


class PortraitDetector:
    """The combined detector (Detector protocol): load the three models once, detect many images."""

    def __init__(self, config: DetectorConfig = DetectorConfig(), gate_config: GateConfig = GateConfig()) -> None:
        self.config = config
        self.gate_config = gate_config
        self.person = YoloPersonDetector(config.weights, score_threshold=config.score_threshold, nms_iou=config.nms_iou)
        self.face = FaceMeshDetector(refine_landmarks=config.refine_landmarks, min_confidence=config.face_min_confidence)
        self.pose = PoseDetector(min_confidence=config.pose_min_confidence)
        self._loaded = False

    @property
    def models(self) -> tuple[ModelId, ...]:
        return self.person.models + self.face.models + self.pose.models

    def load(self) -> None:
        self.person.load()
        self.face.load()
        self.pose.load()
        self._loaded = True

    def close(self) -> None:
        self.person.close()
        self.face.close()
        self.pose.close()
        self._loaded = False

    def __enter__(self) -> PortraitDetector:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, rgb: np.ndarray) -> PortraitDetections:
        """Detections of one RGB uint8 (H, W, 3) image; ValueError for any other input."""
        return self.detect_timed(rgb)[0]

    def detect_timed(self, rgb: np.ndarray) -> tuple[PortraitDetections, StageTimings]:
        """:meth:`detect` plus per-stage wall-clock timings."""
        check_rgb(rgb)
        if not self._loaded:
            raise RuntimeError("PortraitDetector.detect called before load()")
        start = time.perf_counter()
        small, scales = downscale(rgb, self.config.detect_long_side)
        persons = self._persons(small, scales)
        after_person = time.perf_counter()
        policy = self.gate_config.people_policy
        examined = persons[:1] if policy == "largest" else persons
        candidates = self._faces(rgb, examined)
        after_face = time.perf_counter()
        poses = self._poses(rgb, examined)
        after_pose = time.perf_counter()
        h, w = rgb.shape[:2]
        faces = tuple(self._gated(rgb, c) for c in candidates)
        record = PortraitDetections(
            schema_version=DETECTIONS_SCHEMA_VERSION,
            image_size=(w, h),
            detect_size=(small.shape[1], small.shape[0]),
            scale=max(small.shape[:2]) / max(h, w),
            people_policy=policy,
            persons=persons,
            faces=faces,
            poses=poses,
            verdicts=gates.image_verdicts(persons=len(persons), faces_considered=len(faces), config=self.gate_config),
            models=self.models,
        )
        end = time.perf_counter()
        timings = StageTimings(
            ms_person=1e3 * (after_person - start), ms_face=1e3 * (after_face - after_person),
            ms_pose=1e3 * (after_pose - after_face), ms_total=1e3 * (end - start),
        )
        return record, timings

    def _persons(self, small: np.ndarray, scales: tuple[float, float]) -> tuple[Person, ...]:
        found = self.person.detect(small)
        boxes = to_full(found.boxes.reshape(-1, 2, 2), scales).reshape(-1, 4)
        keypoints = found.keypoints.copy()
        keypoints[..., :2] = to_full(keypoints[..., :2], scales)
        persons = [Person(boxes[i], float(found.scores[i]), keypoints[i]) for i in range(len(boxes))]
        order = sorted(range(len(persons)), key=lambda i: (-persons[i].area, -persons[i].score, i))
        return tuple(persons[i] for i in order[: self.config.max_persons])

    def _faces(self, rgb: np.ndarray, persons: tuple[Person, ...]) -> list[_FaceCandidate]:
        candidates = []
        for index, person in enumerate(persons):
            crop = cut(rgb, head_window(person.box, person.keypoints, self.config.crop_margin),
                       self.config.crop_long_side)
            found = self.face.detect(crop.pixels) if crop is not None else None
            if found is None:
                continue
            mesh = crop.from_normalized(found.points)
            box = np.array([*mesh[:, :2].min(axis=0), *mesh[:, :2].max(axis=0)])
            if not _contains(person.box, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2):
                continue
            nose = person.keypoints[NOSE]
            nose_distance = (float(np.hypot(*(nose[:2] - mesh[MESH_NOSE_TIP, :2])))
                             if nose[2] >= 0.5 else float("inf"))
            candidates.append(_FaceCandidate(index, mesh, found.score, box, nose_distance))
        kept: list[_FaceCandidate] = []
        for candidate in sorted(candidates, key=lambda c: (c.nose_distance, c.person_index)):
            if all(_iou(candidate.box, other.box) <= DUPLICATE_FACE_IOU for other in kept):
                kept.append(candidate)
        return sorted(kept, key=lambda c: c.person_index)

    def _poses(self, rgb: np.ndarray, persons: tuple[Person, ...]) -> tuple[Pose, ...]:
        poses = []
        for index, person in enumerate(persons):
            crop = cut(rgb, expand(person.box, self.config.crop_margin), self.config.crop_long_side)
            found = self.pose.detect(crop.pixels) if crop is not None else None
            if found is not None:
                poses.append(Pose(index, crop.from_normalized(found)))
        return tuple(poses)

    def _gated(self, rgb: np.ndarray, candidate: _FaceCandidate) -> Face:
        yaw, pitch, roll = head_pose(candidate.mesh)
        distance = gates.inter_ocular(candidate.mesh)
        verdicts = gates.face_verdicts(
            inter_ocular_px=distance,
            border_px=gates.border_distance(candidate.mesh, (rgb.shape[1], rgb.shape[0])),
            yaw=yaw, pitch=pitch,
            blur=gates.blur_variance(rgb, candidate.box, self.gate_config.blur_crop_px),
            config=self.gate_config,
        )
        return Face(
            person_index=candidate.person_index, landmarks=candidate.mesh, box=candidate.box,
            score=candidate.score, yaw=yaw, pitch=pitch, roll=roll, inter_ocular=distance, verdicts=verdicts,
        )


def _contains(box: np.ndarray, x: float, y: float) -> bool:
    return bool(box[0] <= x <= box[2] and box[1] <= y <= box[3])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
