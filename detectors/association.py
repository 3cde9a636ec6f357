"""Faces to persons: which YOLO person a face belongs to, and a box for a face no person holds.

A face can belong to a YOLO person when the face's nose tip (mesh point 1) lies inside the
person's box and, if YOLO saw any of the person's face keypoints (nose, eyes, ears with
confidence >= ``KEYPOINT_MIN_CONF``), the nearest of them is within ``HEAD_REACH`` face
sizes of the nose tip (so a face in the background of a large box is not that person's).
The cost of a pair is that distance (for a person with no confident face keypoint, the
distance to the top-centre of its box, plus one box height, so it loses to any person whose
head YOLO saw). Pairs are taken greedily, cheapest first, one face per person.
"""

from __future__ import annotations

import numpy as np

from detectors.skeleton import KEYPOINT_MIN_CONF

MESH_NOSE_TIP = 1
#: COCO nose, eyes and ears.
FACE_KEYPOINTS = (0, 1, 2, 3, 4)
HEAD_REACH = 1.5
#: A derived person box, in face-box widths (left/right of the face centre) and heights (above, below).
DERIVED_HALF_WIDTH = 1.75
DERIVED_ABOVE = 0.6
DERIVED_BELOW = 5.5


def associate(noses: np.ndarray, face_boxes: np.ndarray, person_boxes: np.ndarray,
              person_keypoints: np.ndarray) -> list[int | None]:
    """For each face (nose tip (F, 2), box (F, 4)) the index of its person among (P, 4) boxes
    with (P, 17, 3) keypoints, or None; see the module docstring."""
    pairs = []
    for f, (nose, face_box) in enumerate(zip(noses, face_boxes)):
        size = max(float(face_box[2] - face_box[0]), float(face_box[3] - face_box[1]))
        for p, (box, keypoints) in enumerate(zip(person_boxes, person_keypoints)):
            if not (box[0] <= nose[0] <= box[2] and box[1] <= nose[1] <= box[3]):
                continue
            seen = [k for k in FACE_KEYPOINTS if keypoints[k, 2] >= KEYPOINT_MIN_CONF]
            if seen:
                cost = min(float(np.hypot(*(keypoints[k, :2] - nose))) for k in seen)
                if cost > HEAD_REACH * size:
                    continue
            else:
                top = np.array([(box[0] + box[2]) / 2, box[1]])
                cost = float(np.hypot(*(top - nose))) + float(box[3] - box[1])
            pairs.append((cost, f, p))
    owner: list[int | None] = [None] * len(noses)
    taken: set[int] = set()
    for _, f, p in sorted(pairs):
        if owner[f] is None and p not in taken:
            owner[f] = p
            taken.add(p)
    return owner


def derived_person_box(face_box: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """A person box (4,) for a face box (4,) that no YOLO person holds: ``DERIVED_HALF_WIDTH``
    face widths either side of the face centre, from ``DERIVED_ABOVE`` face heights above the
    face to ``DERIVED_BELOW`` below it (a standing body), clipped to the image's outer edges."""
    w, h = image_size
    x0, y0, x1, y1 = (float(v) for v in face_box)
    cx, fw, fh = (x0 + x1) / 2, x1 - x0, y1 - y0
    return np.array([
        max(-0.5, cx - DERIVED_HALF_WIDTH * fw), max(-0.5, y0 - DERIVED_ABOVE * fh),
        min(w - 0.5, cx + DERIVED_HALF_WIDTH * fw), min(h - 0.5, y1 + DERIVED_BELOW * fh),
    ])
