"""Person outlines: MediaPipe selfie segmentation per person, split among overlapping people.

Masks live on a *canvas*: the frame of the downscaled copy YOLO saw (long side <=
``detect_long_side``), so memory is bounded for any photo size. Steps:

1. Persons whose boxes, grown by ``SEGMENT_MARGIN`` of their size, overlap form a group;
   the segmentation model (``selfie_segmentation.tflite``, general model, bundled in the
   wheel) runs once per group on the union of its grown boxes, cut from the full-resolution
   photo (at most ``SEGMENT_PX`` a side), and its foreground probability is placed onto the
   canvas (the maximum where groups' windows meet).
2. Splitting: a foreground pixel (probability >= ``threshold``) belongs to the person whose
   *skeleton* is nearest, among the persons whose grown box contains the pixel. A skeleton
   is drawn from the person's confident YOLO keypoints (limbs of the COCO skeleton) and its
   face box, or for a person derived from a face, the face box and a line down the box's
   middle. So a hand reaching into a neighbour's box stays with its own arm.
3. Outline: the outer contour of the largest connected piece of the person's pixels,
   simplified (Douglas-Peucker, ``tolerance`` x the person box diagonal) and mapped to
   full-resolution pixels: (K, 2) float32, K = 0 when the person has no pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from detectors.geometry import Crop, check_rgb, cut, expand, to_full
from detectors.mediapipe_graph import MediaPipeGraph

SEGMENT_MARGIN = 0.1
SEGMENT_PX = 512
#: COCO skeleton limbs (keypoint index pairs) drawn into a person's skeleton.
COCO_LIMBS = (
    (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    (0, 5), (0, 6),
)
SKELETON_MIN_CONF = 0.3


@dataclass(frozen=True)
class PersonShape:
    """What the splitting needs of one person: ``box`` (4,), ``keypoints`` (17, 3) (zero
    confidence for a derived person), ``face_box`` (4,) or None; full-resolution pixels."""

    box: np.ndarray
    keypoints: np.ndarray
    face_box: np.ndarray | None


class PersonSegmenter(MediaPipeGraph):
    """Selfie segmentation of groups of people (Detector protocol); see the module docstring."""

    MODEL = ("selfie_segmentation", "modules/selfie_segmentation/selfie_segmentation.tflite")

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold
        super().__init__()

    def _open(self) -> Any:
        from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

        return SelfieSegmentation(model_selection=0)

    def detect(self, rgb: np.ndarray, people: Sequence[PersonShape], canvas_scales: tuple[float, float],
               canvas_size: tuple[int, int]) -> np.ndarray:
        """Owner map on the canvas, (h, w) int16 of ``canvas_size`` (w, h): index into ``people``
        of the person each foreground pixel belongs to, -1 for background."""
        check_rgb(rgb)
        graph = self._loaded()
        w, h = canvas_size
        probability = np.zeros((h, w), np.float32)
        for window in group_windows([expand(person.box, SEGMENT_MARGIN) for person in people]):
            crop = cut(rgb, window, SEGMENT_PX)
            if crop is None:
                continue
            mask = graph.process(crop.pixels).segmentation_mask
            np.maximum(probability, _onto_canvas(mask, crop, canvas_scales, (w, h)), out=probability)
        return split_among(probability >= self.threshold, people, canvas_scales)


def group_windows(boxes: Sequence[Sequence[float]]) -> list[tuple[float, float, float, float]]:
    """Union boxes of the groups of overlapping ``boxes`` (transitively), in order of first member."""
    groups = [[float(v) for v in box] for box in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    groups[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return [tuple(g) for g in groups]


def _onto_canvas(mask: np.ndarray, crop: Crop, scales: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """A crop's float mask (its pixels' shape) resampled onto the canvas (0 outside the crop's window)."""
    return cv2.warpAffine(np.ascontiguousarray(mask, np.float32), crop.matrix_to(scales), size,
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def split_among(foreground: np.ndarray, people: Sequence[PersonShape], scales: tuple[float, float]) -> np.ndarray:
    """Owner map (h, w) int16: each foreground pixel to the nearest skeleton among the persons
    whose grown box holds it; -1 elsewhere."""
    h, w = foreground.shape
    owner = np.full((h, w), -1, np.int16)
    if not people:
        return owner
    best = np.full((h, w), np.inf, np.float32)
    for index, person in enumerate(people):
        x0, y0, x1, y1 = _canvas_box(expand(person.box, SEGMENT_MARGIN), scales, (w, h))
        if x1 <= x0 or y1 <= y0:
            continue
        skeleton = np.full((y1 - y0, x1 - x0), 255, np.uint8)
        _draw_skeleton(skeleton, person, scales, (x0, y0))
        distance = cv2.distanceTransform(skeleton, cv2.DIST_L2, 3)
        window = best[y0:y1, x0:x1]
        closer = (distance < window) & foreground[y0:y1, x0:x1]
        window[closer] = distance[closer]
        owner[y0:y1, x0:x1][closer] = index
    return owner


def outline(owner: np.ndarray, index: int, box: np.ndarray, scales: tuple[float, float], tolerance: float) -> np.ndarray:
    """Outline (K, 2) float32 in full-resolution pixels of person ``index`` in ``owner`` (module docstring)."""
    mask = (owner == index).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return np.zeros((0, 2), np.float32)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)
    diagonal = float(np.hypot((box[2] - box[0]) * scales[0], (box[3] - box[1]) * scales[1]))
    simplified = cv2.approxPolyDP(contour, max(0.5, tolerance * diagonal), True).reshape(-1, 2)
    return to_full(simplified.astype(np.float64), scales).astype(np.float32)


def _canvas_box(box: Sequence[float], scales: tuple[float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer canvas pixel range [x0, x1) x [y0, y1) covered by a full-resolution box (outer edges)."""
    w, h = size
    x0 = max(0, int(np.floor((box[0] + 0.5) * scales[0])))
    y0 = max(0, int(np.floor((box[1] + 0.5) * scales[1])))
    x1 = min(w, int(np.ceil((box[2] + 0.5) * scales[0])))
    y1 = min(h, int(np.ceil((box[3] + 0.5) * scales[1])))
    return x0, y0, x1, y1


def _draw_skeleton(image: np.ndarray, person: PersonShape, scales: tuple[float, float], origin: tuple[int, int]) -> None:
    """Draw (value 0) the person's skeleton into ``image``, a window at canvas ``origin``."""
    def canvas(points: np.ndarray) -> np.ndarray:
        mapped = (np.asarray(points, float) + 0.5) * scales - 0.5 - origin
        return np.round(mapped).astype(np.int32)

    box = person.box
    thickness = max(1, round(0.02 * float(np.hypot((box[2] - box[0]) * scales[0], (box[3] - box[1]) * scales[1]))))
    seen = person.keypoints[:, 2] >= SKELETON_MIN_CONF
    points = canvas(person.keypoints[:, :2])
    drawn = False
    for a, b in COCO_LIMBS:
        if seen[a] and seen[b]:
            cv2.line(image, tuple(map(int, points[a])), tuple(map(int, points[b])), 0, thickness)
            drawn = True
    if person.face_box is not None:
        corners = canvas(person.face_box.reshape(2, 2))
        cv2.rectangle(image, tuple(map(int, corners[0])), tuple(map(int, corners[1])), 0, -1)
        if not drawn:  # a body YOLO did not see: the line down the middle of the box below the face
            centre = (corners[0] + corners[1]) // 2
            bottom = canvas(np.array([[(box[0] + box[2]) / 2, box[3]]]))[0]
            cv2.line(image, (int(centre[0]), int(corners[1][1])), (int(centre[0]), int(bottom[1])), 0, thickness)
            drawn = True
    if not drawn:
        centre = canvas(np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]))[0]
        cv2.circle(image, (int(centre[0]), int(centre[1])), thickness, 0, -1)
