"""Reason codes of the quality gates (stable strings stored in manifests)."""

from __future__ import annotations

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
