"""PortraitDetector: faces over the whole photo, persons, a checked pose and an outline per person.

Pipeline per image (RGB uint8, full resolution; docs/detectors.md has the details):

1. Persons: YOLO on a copy downscaled to ``detect_long_side``; boxes and keypoints mapped back
   exactly (detectors.geometry); sorted by box area (largest first), at most ``max_persons``.
2. Faces: MediaPipe's full-range face detector over the whole photo and over tiles, merged by
   NMS (detectors.face_detection). FaceMesh on each detection's upright ROI, largest faces
   first, at most ``max_faces`` (detectors.face_mesh). A detection without a mesh, or whose
   mesh repeats a kept face, is dropped with its reason (``dropped_faces``).
3. Association: each face goes to the YOLO person whose box holds its nose tip and whose
   YOLO face keypoints are nearest (detectors.association); a face no YOLO person holds gets
   a person derived from it (``origin == "face"``), appended after YOLO's persons.
4. Outlines: selfie segmentation per person, split among overlapping people by nearest
   skeleton (detectors.segmentation).
5. Poses, for the persons the people policy examines ("largest": the first; "each" and
   "reject": all): MediaPipe's pose landmarks on the region placed from the person's own YOLO
   keypoints (detectors.pose), checked against YOLO's body keypoints
   (detectors.skeleton.pose_agreement); if it disagrees it is re-run with every other
   person's pixels painted grey; if that disagrees too, YOLO's keypoints become the pose
   (``pose_source == "yolo"``).
6. Gates (detectors.gates) under ``GateConfig.people_policy``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from detectors import gates, reasons
from detectors.association import MESH_NOSE_TIP, associate, derived_person_box
from detectors.config import DetectorConfig, GateConfig
from detectors.face_detection import FaceBoxes, FaceFinder
from detectors.face_mesh import FaceMeshDetector, roi_from_detection
from detectors.geometry import Crop, box_iou, check_rgb, downscale, inside_share, to_full
from detectors.headpose import head_pose
from detectors.pose import PoseDetector, roi_from_keypoints
from detectors.records import DroppedFace, Face, ModelId, Person, PortraitDetections
from detectors.runtime import pin_threads
from detectors.segmentation import PersonSegmenter, PersonShape, outline
from detectors.skeleton import coco_to_mediapipe, confident_body_joints, pose_agreement
from detectors.yolo_person import YoloPersonDetector
from manifests.detections import DETECTIONS_SCHEMA_VERSION

#: Meshes overlapping more than this (IoU, or share of the smaller inside the other) are one face.
DUPLICATE_MESH_IOU = 0.5
DUPLICATE_MESH_INSIDE = 0.6
#: Grey painted over other people for the masked re-run; their mask is grown by this many canvas px.
MASK_GREY = 128
MASK_GROW_PX = 2


@dataclass(frozen=True)
class StageTimings:
    """Wall-clock milliseconds of one ``detect`` call, per stage."""

    ms_person: float
    ms_face: float
    ms_outline: float
    ms_pose: float
    ms_total: float


@dataclass(frozen=True)
class _Mesh:
    mesh: np.ndarray  # (478, 3) full-resolution pixels
    box: np.ndarray  # (4,) landmarks' bounding box
    detection_box: np.ndarray
    score: float


class PortraitDetector:
    """The combined detector (Detector protocol): load the models once, detect many images."""

    def __init__(self, config: DetectorConfig = DetectorConfig(), gate_config: GateConfig = GateConfig()) -> None:
        self.config = config
        self.gate_config = gate_config
        self.person = YoloPersonDetector(config.weights, score_threshold=config.score_threshold, nms_iou=config.nms_iou)
        self.face_finder = FaceFinder(
            min_confidence=config.face_detection_confidence, nms_iou=config.face_nms_iou,
            tile_px=config.face_tile_px, overlap_px=config.face_tile_overlap_px,
            search_long_side=config.face_search_long_side,
        )
        self.face = FaceMeshDetector(refine_landmarks=config.refine_landmarks, min_confidence=config.face_min_confidence)
        self.pose = PoseDetector(min_confidence=config.pose_min_confidence)
        self.segmenter = PersonSegmenter()
        self._parts = (self.person, self.face_finder, self.face, self.pose, self.segmenter)
        self._loaded = False

    @property
    def models(self) -> tuple[ModelId, ...]:
        return tuple(model for part in self._parts for model in part.models)

    def load(self) -> None:
        """Pin torch / OpenCV threads (detectors.runtime) and load every model."""
        pin_threads()
        for part in self._parts:
            part.load()
        self._loaded = True

    def close(self) -> None:
        for part in self._parts:
            part.close()
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
        h, w = rgb.shape[:2]
        start = time.perf_counter()
        small, scales = downscale(rgb, self.config.detect_long_side)
        yolo = self._yolo_persons(small, scales)
        after_person = time.perf_counter()
        meshes, dropped = self._meshes(rgb, self.face_finder.detect(rgb))
        persons, face_owner = self._associate(meshes, yolo, (w, h))
        after_face = time.perf_counter()
        face_of = {owner: meshes[i] for i, owner in enumerate(face_owner)}
        shapes = [PersonShape(p.box, p.keypoints, face_of[j].box if j in face_of else None) for j, p in enumerate(persons)]
        owner_map = self.segmenter.detect(rgb, shapes, scales, (small.shape[1], small.shape[0]))
        persons = [dataclasses.replace(p, outline=outline(owner_map, j, p.box, scales, self.config.outline_tolerance))
                   for j, p in enumerate(persons)]
        after_outline = time.perf_counter()
        policy = self.gate_config.people_policy
        examined = range(min(1, len(persons))) if policy == "largest" else range(len(persons))
        for j in examined:
            persons[j] = self._with_checked_pose(rgb, j, persons[j], owner_map, scales)
        after_pose = time.perf_counter()
        order = sorted(range(len(meshes)), key=lambda i: face_owner[i])
        faces = tuple(self._gated(rgb, meshes[i], face_owner[i]) for i in order)
        considered = [f for f in faces if policy != "largest" or f.person_index == 0]
        record = PortraitDetections(
            schema_version=DETECTIONS_SCHEMA_VERSION,
            image_size=(w, h),
            detect_size=(small.shape[1], small.shape[0]),
            scale=max(small.shape[:2]) / max(h, w),
            people_policy=policy,
            persons=tuple(persons),
            faces=faces,
            dropped_faces=tuple(dropped),
            verdicts=gates.image_verdicts(persons=len(persons), faces_considered=len(considered),
                                          config=self.gate_config),
            models=self.models,
        )
        end = time.perf_counter()
        timings = StageTimings(
            ms_person=1e3 * (after_person - start), ms_face=1e3 * (after_face - after_person),
            ms_outline=1e3 * (after_outline - after_face), ms_pose=1e3 * (after_pose - after_outline),
            ms_total=1e3 * (end - start),
        )
        return record, timings

    def _yolo_persons(self, small: np.ndarray, scales: tuple[float, float]) -> list[Person]:
        found = self.person.detect(small)
        boxes = to_full(found.boxes.reshape(-1, 2, 2), scales).reshape(-1, 4)
        keypoints = found.keypoints.copy()
        keypoints[..., :2] = to_full(keypoints[..., :2], scales)
        persons = [Person(boxes[i], float(found.scores[i]), keypoints[i]) for i in range(len(boxes))]
        order = sorted(range(len(persons)), key=lambda i: (-persons[i].area, -persons[i].score, i))
        return [persons[i] for i in order[: self.config.max_persons]]

    def _meshes(self, rgb: np.ndarray, found: FaceBoxes) -> tuple[list[_Mesh], list[DroppedFace]]:
        """FaceMesh per detection (best score first); duplicates and misses become DroppedFaces."""
        kept: list[_Mesh] = []
        dropped: list[DroppedFace] = []
        for box, score, keypoints in zip(found.boxes, found.scores, found.keypoints):
            mesh = self.face.detect(rgb, roi_from_detection(box, keypoints[0], keypoints[1]))
            if mesh is None:
                dropped.append(DroppedFace(box, float(score), reasons.NO_MESH))
                continue
            mesh_box = np.array([*mesh[:, :2].min(axis=0), *mesh[:, :2].max(axis=0)])
            if any(box_iou(mesh_box, k.box) > DUPLICATE_MESH_IOU or inside_share(mesh_box, k.box) > DUPLICATE_MESH_INSIDE
                   or inside_share(k.box, mesh_box) > DUPLICATE_MESH_INSIDE for k in kept):
                dropped.append(DroppedFace(box, float(score), reasons.DUPLICATE_FACE))
                continue
            kept.append(_Mesh(mesh, mesh_box, np.asarray(box, float), float(score)))
        by_size = sorted(range(len(kept)), key=lambda i: -gates.inter_ocular(kept[i].mesh))
        for i in by_size[self.config.max_faces:]:
            dropped.append(DroppedFace(kept[i].detection_box, kept[i].score, reasons.OVER_MAX_FACES))
        return [kept[i] for i in sorted(by_size[: self.config.max_faces])], dropped

    def _associate(self, meshes: list[_Mesh], yolo: list[Person], image_size: tuple[int, int]
                   ) -> tuple[list[Person], list[int]]:
        """YOLO persons plus derived ones, and each mesh's person index."""
        owners = associate(
            np.array([m.mesh[MESH_NOSE_TIP, :2] for m in meshes]).reshape(-1, 2),
            np.array([m.box for m in meshes]).reshape(-1, 4),
            np.array([p.box for p in yolo]).reshape(-1, 4),
            np.array([p.keypoints for p in yolo]).reshape(-1, 17, 3),
        )
        orphans = [i for i, owner in enumerate(owners) if owner is None]
        derived = [
            Person(derived_person_box(meshes[i].box, image_size), meshes[i].score, np.zeros((17, 3)), origin="face",
                   pose_check=reasons.POSE_FACE_ONLY)
            for i in orphans
        ]
        order = sorted(range(len(derived)), key=lambda k: (-derived[k].area, k))
        face_owner = [int(owner) if owner is not None else -1 for owner in owners]
        for rank, k in enumerate(order):
            face_owner[orphans[k]] = len(yolo) + rank
        return yolo + [derived[k] for k in order], face_owner

    def _with_checked_pose(self, rgb: np.ndarray, index: int, person: Person, owner_map: np.ndarray,
                           scales: tuple[float, float]) -> Person:
        """``person`` with its pose, pose_source, pose_agreement and pose_check (module docstring, step 5)."""
        config = self.config
        if person.origin == "face":
            return person
        roi = roi_from_keypoints(person.keypoints, person.box)
        if roi is None or confident_body_joints(person.keypoints) < config.pose_min_joints:
            return dataclasses.replace(person, pose_check=reasons.POSE_UNVERIFIABLE)
        others = ((owner_map >= 0) & (owner_map != index)).astype(np.uint8)
        attempts = [(None, reasons.POSE_AGREES)]
        if others.any():
            attempts.append((_painter(others, scales), reasons.POSE_AGREES_MASKED))
        agreement = None
        for painter, check in attempts:
            pose = self.pose.detect(rgb, roi, painted=painter)
            if pose is None:
                continue
            measured = pose_agreement(pose, person.keypoints, person.box, config.pose_joint_tolerance)
            agreement = measured.share
            if measured.compared >= config.pose_min_joints and measured.share >= config.pose_min_agreement:
                return dataclasses.replace(person, pose=pose, pose_source="mediapipe", pose_agreement=agreement,
                                           pose_check=check)
        return dataclasses.replace(person, pose=coco_to_mediapipe(person.keypoints), pose_source="yolo",
                                   pose_agreement=agreement, pose_check=reasons.POSE_DISAGREES)

    def _gated(self, rgb: np.ndarray, mesh: _Mesh, person_index: int) -> Face:
        yaw, pitch, roll = head_pose(mesh.mesh)
        distance = gates.inter_ocular(mesh.mesh)
        verdicts = gates.face_verdicts(
            inter_ocular_px=distance,
            border_px=gates.border_distance(mesh.mesh, (rgb.shape[1], rgb.shape[0])),
            yaw=yaw, pitch=pitch,
            blur=gates.blur_variance(rgb, mesh.box, self.gate_config.blur_crop_px),
            config=self.gate_config,
        )
        return Face(
            person_index=person_index, landmarks=mesh.mesh, box=mesh.box, detection_box=mesh.detection_box,
            score=mesh.score, yaw=yaw, pitch=pitch, roll=roll, inter_ocular=distance, verdicts=verdicts,
        )


def _painter(others: np.ndarray, scales: tuple[float, float]) -> Callable[[Crop], np.ndarray]:
    """A function painting a crop's pixels grey where ``others`` (canvas mask of the other
    people, grown by MASK_GROW_PX) covers them."""
    grown = cv2.dilate(others, np.ones((2 * MASK_GROW_PX + 1,) * 2, np.uint8))

    def paint(crop: Crop) -> np.ndarray:
        ch, cw = crop.pixels.shape[:2]
        covered = cv2.warpAffine(grown, crop.matrix_to(scales), (cw, ch), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        pixels = crop.pixels.copy()
        pixels[covered > 0] = MASK_GREY
        return pixels

    return paint
