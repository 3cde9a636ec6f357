"""FFHQ-style face alignment from MediaPipe FaceMesh landmarks.

The FFHQ recipe (Karras et al. 2019, ``align_images.py``) builds an oriented square from
the eye centres and mouth corners; this module returns the similarity transform that
maps that square onto a ``size x size`` crop frame. Only the transform is needed: the
warp is planned in the crop frame and reframed into the photo, so no crop is resampled.

Coordinates are pixel (x, y) floats with pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warps.augment import transform_points

#: FaceMesh indices of the subject's right eye contour (image left on a frontal face).
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
#: FaceMesh indices of the subject's left eye contour (image right on a frontal face).
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
#: FaceMesh mouth corners: subject's right (image left) and left.
MOUTH_CORNERS = (61, 291)


@dataclass(frozen=True)
class FaceAlignment:
    """``matrix`` (2, 3) float64 maps image pixel coords to crop-frame pixel coords.

    ``size`` is the crop side in pixels; ``scale`` is crop pixels per image pixel.
    """

    matrix: np.ndarray
    size: int

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def inverse(self) -> np.ndarray:
        """(2, 3) float64 mapping crop-frame pixel coords back to image pixel coords."""
        return invert_affine(self.matrix)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) image points -> (N, 2) crop-frame points."""
        return transform_points(self.matrix, points)

    def to_record(self) -> dict:
        return {"matrix": self.matrix.round(9).tolist(), "size": self.size}


def align_face(face: np.ndarray, size: int = 1024) -> FaceAlignment:
    """FFHQ alignment of a face given its 478 (or 468) FaceMesh points (N, 2) in image pixels.

    Raises ValueError for a wrong shape, non-finite points or a degenerate face
    (eyes and mouth coincide).
    """
    face = np.asarray(face, dtype=np.float64)
    if face.ndim != 2 or face.shape[0] < 468 or face.shape[1] != 2:
        raise ValueError(f"align_face needs (>=468, 2) FaceMesh points, got {face.shape}")
    if size < 8:
        raise ValueError(f"crop size must be >= 8 px, got {size}")
    if not np.isfinite(face).all():
        raise ValueError("align_face got non-finite landmarks")
    eye_left = face[list(RIGHT_EYE)].mean(axis=0)  # FFHQ's "left" is the image-left eye
    eye_right = face[list(LEFT_EYE)].mean(axis=0)
    mouth_avg = face[list(MOUTH_CORNERS)].mean(axis=0)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = float(np.hypot(*x))
    half = max(float(np.hypot(*eye_to_eye)) * 2.0, float(np.hypot(*eye_to_mouth)) * 1.8)
    if norm < 1e-6 or half < 1e-6:
        raise ValueError("align_face: degenerate face (eyes and mouth coincide)")
    x_axis = x / norm
    y_axis = np.array([-x_axis[1], x_axis[0]])
    centre = eye_avg + eye_to_mouth * 0.1
    # The square centre +- half * axes fills the crop's continuous extent [0, size]^2,
    # so the centre lands on the middle of the pixel grid, (size - 1) / 2.
    scale = size / (2.0 * half)
    linear = scale * np.stack([x_axis, y_axis])
    offset = (size - 1) / 2.0 - linear @ centre
    return FaceAlignment(matrix=np.column_stack([linear, offset]), size=size)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of an invertible (2, 3) affine matrix."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.column_stack([linear, -linear @ matrix[:, 2]])


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) matrix of ``outer(inner(p))``."""
    return np.column_stack([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2] + outer[:, 2]])
