"""Head pose (yaw, pitch, roll in degrees) from the 3-D face mesh, no external face model.

The mesh's own (x, y, z) points give the head's axes: x from the right cheek (mesh point
234) to the left cheek (454), y from the forehead (10) to the chin (152), made orthogonal
(Gram-Schmidt); the forward axis n = y x x points out of the face towards the camera.
Image frame: x right, y down, z away from the camera (MediaPipe's depth sign).

Signs: yaw > 0 when the nose turns towards image right, pitch > 0 when the face tilts
up, roll > 0 when the eye line turns clockwise on screen. A frontal face is (0, 0, 0);
a horizontally mirrored face has the opposite yaw and roll.
"""

from __future__ import annotations

import numpy as np

RIGHT_CHEEK, LEFT_CHEEK, FOREHEAD, CHIN = 234, 454, 10, 152


def head_pose(mesh: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a (478, 3) mesh in pixel units (x, y, z)."""
    if mesh.ndim != 2 or mesh.shape[0] <= LEFT_CHEEK or mesh.shape[1] != 3:
        raise ValueError(f"expected a (478, 3) mesh, got {mesh.shape}")
    points = mesh.astype(np.float64)
    across = points[LEFT_CHEEK] - points[RIGHT_CHEEK]
    down = points[CHIN] - points[FOREHEAD]
    x_axis = across / np.linalg.norm(across)
    down = down - down.dot(x_axis) * x_axis
    y_axis = down / np.linalg.norm(down)
    forward = np.cross(y_axis, x_axis)  # towards the camera: z < 0 for a frontal face
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arctan2(-forward[1], np.hypot(forward[0], forward[2])))
    roll = np.degrees(np.arctan2(x_axis[1], x_axis[0]))
    return float(yaw), float(pitch), float(roll)
