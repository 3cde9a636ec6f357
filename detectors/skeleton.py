"""YOLO's COCO-17 keypoints and MediaPipe's 33 pose landmarks: mapping and agreement.

Both use the person's own left/right. Points are full-resolution pixel (x, y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: MediaPipe pose index -> COCO keypoint index, for the 17 joints both models have.
MEDIAPIPE_FROM_COCO = {
    0: 0,  # nose
    2: 1, 5: 2,  # left, right eye
    7: 3, 8: 4,  # left, right ear
    11: 5, 12: 6,  # shoulders
    13: 7, 14: 8,  # elbows
    15: 9, 16: 10,  # wrists
    23: 11, 24: 12,  # hips
    25: 13, 26: 14,  # knees
    27: 15, 28: 16,  # ankles
}
#: MediaPipe points COCO has no joint for -> the COCO joint whose position they take (visibility 0).
MEDIAPIPE_NEAREST_COCO = {
    1: 1, 3: 1, 4: 2, 6: 2,  # inner/outer eye corners -> eyes
    9: 0, 10: 0,  # mouth corners -> nose
    17: 9, 19: 9, 21: 9, 18: 10, 20: 10, 22: 10,  # pinky, index, thumb -> wrists
    29: 15, 31: 15, 30: 16, 32: 16,  # heels, foot index -> ankles
}
#: The body joints a MediaPipe pose is checked on: (MediaPipe index, COCO index) for
#: shoulders, elbows, hips and knees.
CHECKED_JOINTS = ((11, 5), (12, 6), (13, 7), (14, 8), (23, 11), (24, 12), (25, 13), (26, 14))
#: YOLO confidence from which a keypoint counts as seen.
KEYPOINT_MIN_CONF = 0.5


def coco_to_mediapipe(keypoints: np.ndarray) -> np.ndarray:
    """YOLO's (17, 3) (x, y, conf) as a (33, 4) (x, y, z, visibility) pose in MediaPipe's order.

    The 17 shared joints take YOLO's position with visibility = YOLO's confidence; the 16
    points COCO lacks (eye corners, mouth, hand and foot points) take the nearest shared joint's
    position (``MEDIAPIPE_NEAREST_COCO``) with visibility 0. z is 0 throughout.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape != (17, 3):
        raise ValueError(f"expected COCO keypoints (17, 3), got {keypoints.shape}")
    pose = np.zeros((33, 4))
    for mp_index, coco in MEDIAPIPE_FROM_COCO.items():
        pose[mp_index] = (keypoints[coco, 0], keypoints[coco, 1], 0.0, keypoints[coco, 2])
    for mp_index, coco in MEDIAPIPE_NEAREST_COCO.items():
        pose[mp_index] = (keypoints[coco, 0], keypoints[coco, 1], 0.0, 0.0)
    return pose


def confident_body_joints(keypoints: np.ndarray) -> int:
    """How many of the checked body joints YOLO sees with confidence >= KEYPOINT_MIN_CONF."""
    return sum(1 for _, coco in CHECKED_JOINTS if keypoints[coco, 2] >= KEYPOINT_MIN_CONF)


@dataclass(frozen=True)
class Agreement:
    """``share`` of the ``compared`` joints within the tolerance; ``distances`` / diagonal per joint."""

    share: float
    compared: int
    distances: tuple[float, ...]


def pose_agreement(pose: np.ndarray, keypoints: np.ndarray, box: np.ndarray, tolerance: float) -> Agreement:
    """Compare a MediaPipe pose (33, >=2) with YOLO's keypoints (17, 3) of the same person.

    Joints compared: ``CHECKED_JOINTS`` whose YOLO confidence is >= KEYPOINT_MIN_CONF. A joint
    agrees when the two positions are within ``tolerance`` x the diagonal of ``box`` (4,).
    ``share`` is 0.0 when nothing was compared.
    """
    diagonal = float(np.hypot(box[2] - box[0], box[3] - box[1]))
    distances = tuple(
        float(np.hypot(*(pose[mp_index, :2] - keypoints[coco, :2]))) / diagonal
        for mp_index, coco in CHECKED_JOINTS if keypoints[coco, 2] >= KEYPOINT_MIN_CONF
    )
    if not distances:
        return Agreement(0.0, 0, ())
    share = sum(1 for d in distances if d <= tolerance) / len(distances)
    return Agreement(share, len(distances), distances)
