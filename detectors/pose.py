"""MediaPipe Pose landmarks (model complexity 1, bundled in mediapipe 0.10.21) on a person's own ROI.

MediaPipe's pose pipeline first finds *a* person with its own detector, then regresses 33
landmarks in a region placed on that person's hips; on a crop holding two people it may pick
the wrong one. Here the landmark subgraph (``PoseLandmarkByRoiCpu``, ``pose_landmark_full.tflite``)
runs on a region placed from the YOLO person's own keypoints the way MediaPipe places it from
its detector (``pose_detection_to_roi``): centred on the mid-hip, turned so the line from the
mid-hip to the mid-shoulder points up, with a side of ``ROI_SCALE`` x twice the radius of the
circle around the mid-hip that holds the whole body. Hidden hips are placed below the
shoulders (``TORSO_PER_SHOULDER_WIDTH``). The crop handed to MediaPipe is square (exact
back-projection, see detectors.face_mesh) and bounded in size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from detectors.face_mesh import normalized_rect
from detectors.geometry import Crop, Roi, check_rgb, square_crop
from detectors.mediapipe_graph import MediaPipeGraph
from detectors.skeleton import KEYPOINT_MIN_CONF

ROI_SCALE = 1.25
#: The crop spans the rotated ROI (sqrt 2) and is at most this many pixels a side (the model sees 256).
CROP_SCALE = 1.42
CROP_PX = 384
#: Mid-hip below the mid-shoulder, in shoulder widths, when YOLO does not see the hips.
TORSO_PER_SHOULDER_WIDTH = 1.5
#: The body circle reaches past the farthest keypoint (head top above the eyes, feet past ankles).
BODY_REACH = 1.15
_SHOULDERS, _HIPS = (5, 6), (11, 12)
_PRESENCE_THRESHOLD = "poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__ThresholdingCalculator.threshold"
_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
input_side_packet: "model_complexity"
input_side_packet: "enable_segmentation"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
  output_stream: "LANDMARKS:landmarks"
}
"""


def roi_from_keypoints(keypoints: np.ndarray, box: np.ndarray) -> Roi | None:
    """MediaPipe's pose ROI for YOLO's (17, 3) keypoints and box (4,); None without confident shoulders."""
    seen = keypoints[:, 2] >= KEYPOINT_MIN_CONF
    if not all(seen[list(_SHOULDERS)]):
        return None
    shoulders = keypoints[list(_SHOULDERS), :2].mean(axis=0)
    if all(seen[list(_HIPS)]):
        hips = keypoints[list(_HIPS), :2].mean(axis=0)
    else:
        width = float(np.hypot(*(keypoints[_SHOULDERS[0], :2] - keypoints[_SHOULDERS[1], :2])))
        hips = shoulders + np.array([0.0, TORSO_PER_SHOULDER_WIDTH * width])
    points = np.concatenate([keypoints[seen, :2], [[(box[0] + box[2]) / 2, box[1]]]])
    radius = BODY_REACH * float(np.max(np.hypot(*(points - hips).T)))
    up = shoulders - hips
    rotation = np.pi / 2 - np.arctan2(-up[1], up[0])
    rotation = (rotation + np.pi) % (2 * np.pi) - np.pi
    return Roi(float(hips[0]), float(hips[1]), 2 * ROI_SCALE * radius, float(rotation))


class PoseDetector(MediaPipeGraph):
    """33 landmarks (x, y, z, visibility) in full-resolution pixels for a person ROI, or None when
    MediaPipe's pose-presence score is below ``min_confidence``. No state is carried between calls."""

    MODEL = ("pose_landmark_full", "modules/pose_landmark/pose_landmark_full.tflite")

    def __init__(self, *, min_confidence: float = 0.5) -> None:
        self.min_confidence = min_confidence
        super().__init__()

    def _open(self) -> Any:
        from mediapipe.python.solution_base import SolutionBase

        return SolutionBase(
            graph_config=_GRAPH,
            side_inputs={"model_complexity": 1, "enable_segmentation": False},
            calculator_params={_PRESENCE_THRESHOLD: self.min_confidence},
            outputs=["landmarks"],
        )

    def detect(self, rgb: np.ndarray, roi: Roi, *, painted: Callable[[Crop], np.ndarray] | None = None
               ) -> np.ndarray | None:
        """Pose (33, 4) float64 of the person in ``roi`` of ``rgb`` (full resolution), or None.

        ``painted``, if given, is called as ``painted(crop) -> pixels`` to alter the crop's
        pixels (mask other people) before MediaPipe sees them.
        """
        check_rgb(rgb)
        graph = self._loaded()
        crop = square_crop(rgb, roi.cx, roi.cy, CROP_SCALE * roi.side, CROP_PX)
        pixels = crop.pixels if painted is None else painted(crop)
        result = graph.process({"image": pixels, "roi": normalized_rect(roi, crop)})
        if result.landmarks is None:
            return None
        points = np.array([(p.x, p.y, p.z, p.visibility) for p in result.landmarks.landmark], dtype=np.float64)
        return crop.from_normalized(points)
