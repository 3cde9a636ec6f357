"""MediaPipe FaceMesh (legacy solution graph bundled in mediapipe 0.10.21): 478 points with irises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.geometry import check_rgb
from detectors.modelfiles import mediapipe_file, model_id
from detectors.records import ModelId

_GRAPH = "mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb"
_DETECTION_THRESHOLD = (
    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
    "TensorsToDetectionsCalculator.min_score_thresh"
)
_PRESENCE_THRESHOLD = "facelandmarkcpu__ThresholdingCalculator.threshold"


@dataclass(frozen=True)
class MeshResult:
    """One face in the input's normalized frame: points (478, 3) (x, y in [0, 1], z ~ x scale), score."""

    points: np.ndarray
    score: float


class FaceMeshDetector:
    """At most one face per call (run it on a head crop); ``score`` is the face detector's score.

    Static-image mode: no tracking state is carried between calls.
    """

    def __init__(self, *, refine_landmarks: bool = True, min_confidence: float = 0.5) -> None:
        self.refine_landmarks = refine_landmarks
        self.min_confidence = min_confidence
        self._graph: Any = None
        self._models: tuple[ModelId, ...] = ()

    @property
    def models(self) -> tuple[ModelId, ...]:
        return self._models

    def load(self) -> None:
        from mediapipe.python.solution_base import SolutionBase

        landmark_file = "face_landmark_with_attention.tflite" if self.refine_landmarks else "face_landmark.tflite"
        self._models = (
            model_id("face_detection_short_range", mediapipe_file("modules/face_detection/face_detection_short_range.tflite")),
            model_id(landmark_file.removesuffix(".tflite"), mediapipe_file(f"modules/face_landmark/{landmark_file}")),
        )
        self._graph = SolutionBase(
            binary_graph_path=_GRAPH,
            side_inputs={"num_faces": 1, "with_attention": self.refine_landmarks, "use_prev_landmarks": False},
            calculator_params={_DETECTION_THRESHOLD: self.min_confidence, _PRESENCE_THRESHOLD: self.min_confidence},
            outputs=["multi_face_landmarks", "face_detections"],
        )

    def detect(self, rgb: np.ndarray) -> MeshResult | None:
        check_rgb(rgb)
        if self._graph is None:
            raise RuntimeError("FaceMeshDetector.detect called before load()")
        result = self._graph.process({"image": np.ascontiguousarray(rgb)})
        if not result.multi_face_landmarks:
            return None
        points = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
        score = float(result.face_detections[0].score[0]) if result.face_detections else 0.0
        return MeshResult(points, score)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None
