"""Quality gates: measurements on a detected face / image compared with GateConfig thresholds."""

from __future__ import annotations

import cv2
import numpy as np

from detectors import reasons
from detectors.config import GateConfig
from detectors.records import GateVerdict

# Eye corners in the 478-point mesh: (outer, inner) for the subject's right and left eye.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)


def inter_ocular(mesh: np.ndarray) -> float:
    """Distance in pixels between the two eye centres (midpoints of each eye's corners)."""
    right = mesh[list(RIGHT_EYE_CORNERS), :2].mean(axis=0)
    left = mesh[list(LEFT_EYE_CORNERS), :2].mean(axis=0)
    return float(np.hypot(*(left - right)))


def border_distance(mesh: np.ndarray, image_size: tuple[int, int]) -> float:
    """Smallest distance from a mesh point to the image's outer edge (negative when outside)."""
    w, h = image_size
    x, y = mesh[:, 0], mesh[:, 1]
    return float(np.min(np.concatenate([x + 0.5, y + 0.5, w - 0.5 - x, h - 0.5 - y])))


def blur_variance(rgb: np.ndarray, box: np.ndarray, crop_px: int) -> float:
    """Variance of the Laplacian of the face box (square around its centre) resized to crop_px^2, grey."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    half = max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = max(0, int(round(cx - half + 0.5))), max(0, int(round(cy - half + 0.5)))
    right, bottom = min(w, int(round(cx + half + 0.5))), min(h, int(round(cy + half + 0.5)))
    if right - left < 2 or bottom - top < 2:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    interpolation = cv2.INTER_AREA if (right - left) >= crop_px else cv2.INTER_LINEAR
    grey = cv2.resize(grey, (crop_px, crop_px), interpolation=interpolation)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def face_verdicts(
    *, inter_ocular_px: float, border_px: float, yaw: float, pitch: float, blur: float, config: GateConfig
) -> tuple[GateVerdict, ...]:
    """The per-face gates, in the order of ``reasons.FACE_CODES``."""
    return (
        GateVerdict(reasons.FACE_TOO_SMALL, inter_ocular_px >= config.min_inter_ocular_px,
                    inter_ocular_px, config.min_inter_ocular_px),
        GateVerdict(reasons.FACE_CUT_BY_BORDER, border_px >= config.border_margin_px,
                    border_px, config.border_margin_px),
        GateVerdict(reasons.HEAD_YAW, abs(yaw) <= config.max_abs_yaw_deg, yaw, config.max_abs_yaw_deg),
        GateVerdict(reasons.HEAD_PITCH, abs(pitch) <= config.max_abs_pitch_deg, pitch, config.max_abs_pitch_deg),
        GateVerdict(reasons.TOO_BLURRY, blur >= config.min_blur_variance, blur, config.min_blur_variance),
    )


def image_verdicts(*, persons: int, faces_considered: int, config: GateConfig) -> tuple[GateVerdict, ...]:
    """Image gates: at least one person, the people policy ("reject" only), a face on a considered person."""
    verdicts = [GateVerdict(reasons.NO_PERSON, persons >= 1, float(persons), 1.0)]
    if config.people_policy == "reject":
        verdicts.append(GateVerdict(reasons.TOO_MANY_PEOPLE, persons <= config.max_people,
                                    float(persons), float(config.max_people)))
    verdicts.append(GateVerdict(reasons.NO_FACE, faces_considered >= 1, float(faces_considered), 1.0))
    return tuple(verdicts)
