"""MediaPipe FaceMesh (478 points with irises) on the region a face detection gives.

The landmark subgraph bundled in mediapipe 0.10.21 (``FaceLandmarkCpu``: the
``face_landmark_with_attention.tflite`` model and its refinement) runs on a region of interest
(ROI) we compute exactly as MediaPipe's own FaceMesh does from a face detection
(``face_detection_front_detection_to_roi``): centred on the detection box, a square of
``ROI_SCALE`` x the box's long side, turned by the angle of the line from the right eye to the
left eye so the face is upright. MediaPipe samples that rotated square into its 192 x 192
input and projects the landmarks back.

We hand it a square crop around the ROI (``CROP_SCALE`` x the ROI side, zero-padded where it
leaves the photo, resized so the ROI is about ``ROI_PX`` pixels); a square crop keeps
MediaPipe's back-projection exact (it is only exact for a square frame). Points map back to
the full-resolution photo by the crop's offset and scale (detectors.geometry.Crop).
No face detector runs inside: the face-presence score decides whether a face is there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.geometry import Crop, Roi, check_rgb, square_crop
from detectors.mediapipe_graph import MediaPipeGraph

ROI_SCALE = 1.5
CROP_SCALE = 1.5
ROI_PX = 256
_PRESENCE_THRESHOLD = "facelandmarkcpu__ThresholdingCalculator.threshold"
_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
input_side_packet: "with_attention"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
"""


def roi_from_detection(box: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray) -> Roi:
    """MediaPipe FaceMesh's ROI for a detection box (4,) with the person's right and left eye (2,)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = float(left_eye[0] - right_eye[0]), float(left_eye[1] - right_eye[1])
    rotation = -np.arctan2(-dy, dx)
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, ROI_SCALE * max(x1 - x0, y1 - y0), float(rotation))


class FaceMeshDetector(MediaPipeGraph):
    """478 landmarks (x, y, z) in full-resolution pixels for a face ROI, or None when FaceMesh's
    face-presence score is below ``min_confidence``. No state is carried between calls."""

    MODEL = ("face_landmark_with_attention", "modules/face_landmark/face_landmark_with_attention.tflite")

    def __init__(self, *, refine_landmarks: bool = True, min_confidence: float = 0.5) -> None:
        if not refine_landmarks:
            raise ValueError("refine_landmarks=False is not supported: the face ops read the 478-point mesh")
        self.min_confidence = min_confidence
        super().__init__()

    def _open(self) -> Any:
        from mediapipe.python.solution_base import SolutionBase

        return SolutionBase(
            graph_config=_GRAPH,
            side_inputs={"with_attention": True},
            calculator_params={_PRESENCE_THRESHOLD: self.min_confidence},
            outputs=["landmarks"],
        )

    def detect(self, rgb: np.ndarray, roi: Roi) -> np.ndarray | None:
        """Mesh (478, 3) float64 of the face in ``roi`` of ``rgb`` (full resolution), or None."""
        check_rgb(rgb)
        graph = self._loaded()
        crop = square_crop(rgb, roi.cx, roi.cy, CROP_SCALE * roi.side, round(CROP_SCALE * ROI_PX))
        result = graph.process({"image": crop.pixels, "roi": normalized_rect(roi, crop)})
        if result.landmarks is None:
            return None
        points = np.array([(p.x, p.y, p.z) for p in result.landmarks.landmark], dtype=np.float64)
        return crop.from_normalized(points)


def normalized_rect(roi: Roi, crop: Crop) -> Any:
    """``roi`` (full-resolution pixels) as MediaPipe's NormalizedRect in the square ``crop``'s frame."""
    from mediapipe.framework.formats import rect_pb2

    side = crop.x1 - crop.x0
    return rect_pb2.NormalizedRect(x_center=(roi.cx + 0.5 - crop.x0) / side, y_center=(roi.cy + 0.5 - crop.y0) / side,
                                   width=roi.side / side, height=roi.side / side, rotation=roi.rotation)
