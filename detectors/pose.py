"""MediaPipe Pose (model complexity 1, bundled in mediapipe 0.10.21): 33 landmarks with visibility."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.geometry import check_rgb
from detectors.modelfiles import mediapipe_file, model_id
from detectors.records import ModelId


class PoseDetector:
    """At most one person per call (run it on a person crop); static-image mode, no segmentation.

    ``detect`` returns (33, 4) float64 (x, y in [0, 1] of the input, z ~ x scale, visibility) or None.
    """

    def __init__(self, *, min_confidence: float = 0.5) -> None:
        self.min_confidence = min_confidence
        self._pose: Any = None
        self._models: tuple[ModelId, ...] = ()

    @property
    def models(self) -> tuple[ModelId, ...]:
        return self._models

    def load(self) -> None:
        from mediapipe.python.solutions.pose import Pose

        self._models = (
            model_id("pose_detection", mediapipe_file("modules/pose_detection/pose_detection.tflite")),
            model_id("pose_landmark_full", mediapipe_file("modules/pose_landmark/pose_landmark_full.tflite")),
        )
        self._pose = Pose(
            static_image_mode=True, model_complexity=1, smooth_landmarks=False, enable_segmentation=False,
            min_detection_confidence=self.min_confidence, min_tracking_confidence=self.min_confidence,
        )

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        check_rgb(rgb)
        if self._pose is None:
            raise RuntimeError("PoseDetector.detect called before load()")
        result = self._pose.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return None
        return np.array([(p.x, p.y, p.z, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None
