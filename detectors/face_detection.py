"""Faces over the whole photo: MediaPipe's full-range face detector, whole photo plus tiles, NMS.

The full-range model (``face_detection_full_range_sparse.tflite``, the legacy solution
``mp.solutions.face_detection`` with ``model_selection=1``) sees its input letterboxed to
192 x 192, so on a whole group photo faces of about a tenth of the long side or less are
lost. :class:`FaceFinder` therefore runs it twice over:

1. on the whole photo (a copy with long side <= ``WHOLE_LONG_SIDE``; the model's own resize
   would throw the extra pixels away), which finds the large faces;
2. on square tiles of ``tile_px`` overlapping by ``overlap_px``, cut from a copy with long
   side <= ``search_long_side`` (skipped when that copy fits in one tile). A face up to
   ``overlap_px`` wide lies wholly inside some tile; a tile detection that touches an inner
   tile edge is a cut face and is discarded, since the neighbouring tile holds all of it.

Detections of both passes are merged by greedy non-maximum suppression (highest score
first; a box is suppressed when its IoU with a kept box exceeds ``nms_iou`` or when more
than ``CONTAINED`` of its area lies inside a kept box).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.geometry import box_iou, check_rgb, downscale, inside_share, to_full
from detectors.mediapipe_graph import MediaPipeGraph

WHOLE_LONG_SIDE = 1024
CONTAINED = 0.6
#: A tile detection whose box comes this close (px, search copy) to an inner tile edge is cut.
EDGE_PX = 1.0
#: MediaPipe's six face keypoints, in its order.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")


@dataclass(frozen=True)
class FaceBoxes:
    """Faces in full-resolution pixels: ``boxes`` (N, 4) outer edges, ``scores`` (N,),
    ``keypoints`` (N, 6, 2) in ``KEYPOINT_NAMES`` order (the person's own right/left), best first."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


class FaceFinder(MediaPipeGraph):
    """Full-range face detection over the whole photo (Detector protocol)."""

    MODEL = ("face_detection_full_range_sparse", "modules/face_detection/face_detection_full_range_sparse.tflite")

    def __init__(
        self, *, min_confidence: float, nms_iou: float, tile_px: int, overlap_px: int, search_long_side: int
    ) -> None:
        self.min_confidence = min_confidence
        self.nms_iou = nms_iou
        self.tile_px = tile_px
        self.overlap_px = overlap_px
        self.search_long_side = search_long_side
        super().__init__()

    def _open(self) -> Any:
        from mediapipe.python.solutions.face_detection import FaceDetection

        return FaceDetection(model_selection=1, min_detection_confidence=self.min_confidence)

    def detect(self, rgb: np.ndarray) -> FaceBoxes:
        check_rgb(rgb)
        self._loaded()
        found: list[tuple[np.ndarray, float, np.ndarray]] = []
        whole, scales = downscale(rgb, WHOLE_LONG_SIDE)
        for box, score, points in self._run(whole):
            found.append((to_full(box.reshape(2, 2), scales).reshape(4), score, to_full(points, scales)))
        search, scales = downscale(rgb, self.search_long_side)
        h, w = search.shape[:2]
        if max(h, w) > self.tile_px:
            for x0 in tile_starts(w, self.tile_px, self.overlap_px):
                for y0 in tile_starts(h, self.tile_px, self.overlap_px):
                    x1, y1 = min(w, x0 + self.tile_px), min(h, y0 + self.tile_px)
                    for box, score, points in self._run(search[y0:y1, x0:x1]):
                        if _touches_inner_edge(box, (x0, y0, x1, y1), (w, h)):
                            continue
                        shift = np.array([x0, y0], float)
                        found.append((to_full((box.reshape(2, 2) + shift), scales).reshape(4), score,
                                      to_full(points + shift, scales)))
        keep = suppress([f[0] for f in found], [f[1] for f in found], self.nms_iou)
        return FaceBoxes(
            boxes=np.array([found[i][0] for i in keep]).reshape(-1, 4),
            scores=np.array([found[i][1] for i in keep]),
            keypoints=np.array([found[i][2] for i in keep]).reshape(-1, 6, 2),
        )

    def _run(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """Detections in ``rgb``'s pixel frame: (box (4,), score, keypoints (6, 2))."""
        h, w = rgb.shape[:2]
        result = self._loaded().process(np.ascontiguousarray(rgb))
        out = []
        for detection in result.detections or ():
            rel = detection.location_data.relative_bounding_box
            box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h]) - 0.5
            points = np.array([(k.x * w - 0.5, k.y * h - 0.5) for k in detection.location_data.relative_keypoints])
            out.append((box, float(detection.score[0]), points))
        return out


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px, overlapping by >= ``overlap``."""
    if length <= tile:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    return [int(round(v)) for v in np.linspace(0, length - tile, count)]


def suppress(boxes: list[np.ndarray], scores: list[float], iou_threshold: float) -> list[int]:
    """Indices kept by greedy NMS, best score first (ties: earlier index); see the module docstring."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(box_iou(boxes[i], boxes[k]) <= iou_threshold and inside_share(boxes[i], boxes[k]) <= CONTAINED
               for k in kept):
            kept.append(i)
    return kept


def _touches_inner_edge(box: np.ndarray, tile: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    """Box (tile frame) reaches a tile edge that is not an edge of the whole (search) image."""
    x0, y0, x1, y1 = tile
    w, h = size
    tw, th = x1 - x0, y1 - y0
    return bool(
        (x0 > 0 and box[0] <= -0.5 + EDGE_PX) or (y0 > 0 and box[1] <= -0.5 + EDGE_PX)
        or (x1 < w and box[2] >= tw - 0.5 - EDGE_PX) or (y1 < h and box[3] >= th - 0.5 - EDGE_PX)
    )
