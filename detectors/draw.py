"""Render a PortraitDetections record over its image so a person can check it by eye.

Person boxes (green) with origin, score, pose source and agreement; YOLO keypoints (green dots);
accepted poses (magenta: MediaPipe, orange: YOLO); outlines (cyan); faces (blue: usable, red:
failed gates) with meshes; dropped faces (grey) with their reason.
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.records import PortraitDetections

# MediaPipe pose skeleton (pairs of the 33 landmarks) drawn between visible joints.
POSE_EDGES = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (24, 26), (26, 28), (27, 29), (29, 31), (28, 30), (30, 32), (0, 2), (0, 5),
)
PERSON_COLOUR = (0, 200, 0)
FACE_PASS, FACE_FAIL = (0, 160, 255), (255, 40, 40)
MESH_COLOUR, KEYPOINT_COLOUR, OUTLINE_COLOUR, DROPPED_COLOUR = (255, 255, 0), (0, 255, 0), (0, 220, 255), (128, 128, 128)
POSE_COLOURS = {"mediapipe": (255, 0, 255), "yolo": (255, 140, 0)}
MIN_VISIBILITY = 0.5


def render(rgb: np.ndarray, detections: PortraitDetections) -> np.ndarray:
    """A copy of ``rgb`` (H, W, 3 uint8) with person boxes, face meshes, poses and verdicts drawn."""
    canvas = np.ascontiguousarray(rgb.copy())
    thick = max(1, round(max(canvas.shape[:2]) / 600))
    for index, person in enumerate(detections.persons):
        if len(person.outline):
            cv2.polylines(canvas, [np.round(person.outline).astype(np.int32)], True, OUTLINE_COLOUR, thick, cv2.LINE_AA)
        _box(canvas, person.box, PERSON_COLOUR, thick)
        agreement = "-" if person.pose_agreement is None else f"{person.pose_agreement:.2f}"
        _label(canvas, f"person {index} {person.origin} {person.score:.2f} pose {person.pose_source} {agreement}",
               person.box, PERSON_COLOUR, thick)
        for x, y, conf in person.keypoints:
            if conf >= MIN_VISIBILITY:
                cv2.circle(canvas, _pt(x, y), 2 * thick, KEYPOINT_COLOUR, -1, cv2.LINE_AA)
    for pose in detections.poses:
        points = pose.landmarks
        for a, b in POSE_EDGES:
            if points[a, 3] >= MIN_VISIBILITY and points[b, 3] >= MIN_VISIBILITY:
                cv2.line(canvas, _pt(*points[a, :2]), _pt(*points[b, :2]), POSE_COLOURS[pose.source], thick,
                         cv2.LINE_AA)
    for dropped in detections.dropped_faces:
        _box(canvas, dropped.box, DROPPED_COLOUR, thick)
        _label(canvas, dropped.reason, dropped.box, DROPPED_COLOUR, thick)
    usable = set(detections.usable_faces())
    for index, face in enumerate(detections.faces):
        for x, y, _ in face.landmarks:
            cv2.circle(canvas, _pt(x, y), 1, MESH_COLOUR, -1)
        colour = FACE_PASS if index in usable else FACE_FAIL
        _box(canvas, face.box, colour, thick)
        failed = ",".join(v.code for v in face.verdicts if not v.passed) or "ok"
        _label(canvas, f"yaw {face.yaw:.0f} pitch {face.pitch:.0f} {failed}", face.box, colour, thick)
    reason = detections.reject_reason()
    cv2.putText(canvas, f"reject: {reason}" if reason else "accepted", (8, 24 * thick), cv2.FONT_HERSHEY_SIMPLEX,
                0.6 * thick, FACE_FAIL if reason else FACE_PASS, thick, cv2.LINE_AA)
    return canvas


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(float(x))), int(round(float(y)))


def _box(canvas: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], thick: int) -> None:
    cv2.rectangle(canvas, _pt(box[0] + 0.5, box[1] + 0.5), _pt(box[2] - 0.5, box[3] - 0.5), colour, thick)


def _label(canvas: np.ndarray, text: str, box: np.ndarray, colour: tuple[int, int, int], thick: int) -> None:
    x, y = _pt(box[0] + 0.5, box[1] + 0.5)
    cv2.putText(canvas, text, (max(0, x), max(12 * thick, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * thick, colour, thick, cv2.LINE_AA)
