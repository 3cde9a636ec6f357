"""Reason codes (stable strings stored in manifests): quality gates, dropped faces, pose checks."""

from __future__ import annotations

# Quality gates.
NO_PERSON = "no_person"
TOO_MANY_PEOPLE = "too_many_people"
NO_FACE = "no_face"
FACE_TOO_SMALL = "face_too_small"
FACE_CUT_BY_BORDER = "face_cut_by_border"
HEAD_YAW = "head_yaw"
HEAD_PITCH = "head_pitch"
TOO_BLURRY = "too_blurry"

IMAGE_CODES = (NO_PERSON, TOO_MANY_PEOPLE, NO_FACE)
FACE_CODES = (FACE_TOO_SMALL, FACE_CUT_BY_BORDER, HEAD_YAW, HEAD_PITCH, TOO_BLURRY)

# Why a face found by the face detector has no mesh in the record (``DroppedFace.reason``).
#: FaceMesh's face-presence score on the detection's crop was below ``face_min_confidence``.
NO_MESH = "no_mesh"
#: The mesh covers a face already kept from a higher-scoring detection (mesh boxes overlap).
DUPLICATE_FACE = "duplicate_face"
#: More faces than ``max_faces``; the smallest (by inter-ocular distance) are dropped.
OVER_MAX_FACES = "over_max_faces"

DROP_CODES = (NO_MESH, DUPLICATE_FACE, OVER_MAX_FACES)

# How a person's pose was decided (``Person.pose_check``).
#: MediaPipe's pose on the person crop agrees with YOLO's keypoints: pose_source "mediapipe".
POSE_AGREES = "agrees"
#: It disagreed (or was missing); the re-run on the tight crop with other people masked agrees.
POSE_AGREES_MASKED = "agrees_after_masking"
#: Both MediaPipe runs disagreed with YOLO or found nothing; YOLO's joints are used ("yolo")
#: when at least ``pose_min_joints`` body joints are confident, else no pose ("none").
POSE_DISAGREES = "disagrees"
#: Fewer than ``pose_min_joints`` confident YOLO body joints: a MediaPipe pose cannot be checked,
#: so none is kept ("none").
POSE_UNVERIFIABLE = "unverifiable"
#: The person box was derived from a face (YOLO saw no body): no pose ("none").
POSE_FACE_ONLY = "face_only_person"
#: The people policy does not examine this person (``largest``: persons after the first).
POSE_NOT_EXAMINED = "not_examined"

POSE_CHECK_CODES = (POSE_AGREES, POSE_AGREES_MASKED, POSE_DISAGREES, POSE_UNVERIFIABLE, POSE_FACE_ONLY,
                    POSE_NOT_EXAMINED)
