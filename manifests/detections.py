"""Parquet schema of ``manifests/detections.parquet``: one row per source photo.

Rows come from ``detectors.records.PortraitDetections.to_row()`` plus the ``source_id``
key. Point sets are flattened float32 lists (row-major: point, then coordinate); scalars
that must round-trip exactly are float64. Coordinates are full-resolution photo pixels
(x, y) with pixel centres at integers; boxes are (x0, y0, x1, y1) outer pixel edges.

Columns (version 2):

- ``source_id``: content id of the photo (sha256 prefix of its bytes).
- ``schema_version``: :data:`DETECTIONS_SCHEMA_VERSION` of the writer.
- ``image_width`` / ``image_height``: the decoded, upright photo.
- ``detect_width`` / ``detect_height``, ``scale``: the downscaled copy YOLO saw;
  ``scale`` = its long side / the photo's long side (1.0 when not downscaled).
- ``people_policy``: ``largest`` | ``each`` | ``reject`` (GateConfig) the verdicts used.
- ``persons``: one struct per person, YOLO persons by box area (largest first), then persons
  derived from faces, by area:

  - ``box`` (4), ``score``: YOLO's box and score; for a derived person the box derived from
    its face (``origin`` "face") and the face detector's score.
  - ``keypoints`` (17 x (x, y, conf)): YOLO's COCO keypoints; all zero for derived persons.
  - ``origin``: ``yolo`` (YOLO found the person) or ``face`` (box derived from a face that no
    YOLO person holds).
  - ``pose`` (33 x (x, y, z, visibility)) or null: the accepted pose, in MediaPipe's index order.
    From MediaPipe when ``pose_source`` is ``mediapipe``; from YOLO's COCO keypoints mapped to
    MediaPipe's order when ``yolo`` (``detectors.skeleton.coco_to_mediapipe``: visibility = YOLO
    confidence, z = 0, points YOLO has no joint for carry a neighbour's position and visibility
    0); null when ``none``.
  - ``pose_source``: ``mediapipe`` | ``yolo`` | ``none``.
  - ``pose_agreement``: share (0..1) of compared body joints (shoulders, elbows, hips, knees
    where YOLO's confidence >= 0.5) at which the last MediaPipe pose tried lies within
    ``detector.pose_joint_tolerance`` x the box diagonal of YOLO's joint; a MediaPipe pose passes
    with ``>= detector.pose_min_agreement`` over ``>= detector.pose_min_joints`` joints. Null when
    no MediaPipe pose was compared.
  - ``pose_check``: how the pose was decided, a code of ``detectors.reasons.POSE_CHECK_CODES``.
  - ``outline`` (K x (x, y), K >= 0): closed polygon of the person's own part of the selfie
    segmentation mask (largest connected piece), simplified; empty when none was found.

- ``faces``: one struct per face kept, in the order of their ``person_index``:
  ``person_index`` (into ``persons``), ``landmarks`` (478 x (x, y, z), FaceMesh with irises,
  z relative in x's pixel units), ``box`` (the landmarks' bounding box), ``detection_box``
  (the face detector's box), ``score`` (the face detector's score), ``yaw`` / ``pitch`` / ``roll``
  (degrees, detectors.headpose), ``inter_ocular`` (px), ``verdicts`` (the face gates).
- ``dropped_faces``: faces the face detector found that are not in ``faces``: ``box``,
  ``score`` and ``reason`` (``detectors.reasons.DROP_CODES``).
- ``verdicts``: the image gates (code, passed, value, threshold).
- ``models``: every model file used (name, absolute path, sha256).
- ``usable_faces``, ``reject_reason``: derived from the verdicts (checked on read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

DETECTIONS_SCHEMA_VERSION = 2
PERSON_KEYPOINTS = 17  # COCO keypoints (x, y, conf)
FACE_POINTS = 478  # MediaPipe face mesh with irises (x, y, z)
POSE_POINTS = 33  # MediaPipe pose (x, y, z, visibility)

_BOX = pa.list_(pa.float32(), 4)
_VERDICT = pa.struct([
    pa.field("code", pa.string(), nullable=False),
    pa.field("passed", pa.bool_(), nullable=False),
    pa.field("value", pa.float64(), nullable=False),
    pa.field("threshold", pa.float64(), nullable=False),
])
_PERSON = pa.struct([
    pa.field("box", _BOX, nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("keypoints", pa.list_(pa.float32(), PERSON_KEYPOINTS * 3), nullable=False),
    pa.field("origin", pa.string(), nullable=False),
    # Variable-length on disk (always POSE_POINTS * 4 values or null, checked on read): pyarrow 25
    # cannot read back a null fixed-size list nested in a list of structs.
    pa.field("pose", pa.list_(pa.float32()), nullable=True),
    pa.field("pose_source", pa.string(), nullable=False),
    pa.field("pose_agreement", pa.float64(), nullable=True),
    pa.field("pose_check", pa.string(), nullable=False),
    pa.field("outline", pa.list_(pa.float32()), nullable=False),
])
_FACE = pa.struct([
    pa.field("person_index", pa.int32(), nullable=False),
    pa.field("landmarks", pa.list_(pa.float32(), FACE_POINTS * 3), nullable=False),
    pa.field("box", _BOX, nullable=False),
    pa.field("detection_box", _BOX, nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("yaw", pa.float64(), nullable=False),
    pa.field("pitch", pa.float64(), nullable=False),
    pa.field("roll", pa.float64(), nullable=False),
    pa.field("inter_ocular", pa.float64(), nullable=False),
    pa.field("verdicts", pa.list_(_VERDICT), nullable=False),
])
_DROPPED_FACE = pa.struct([
    pa.field("box", _BOX, nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
])
_MODEL = pa.struct([
    pa.field("name", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
])

DETECTIONS_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("image_width", pa.int32(), nullable=False),
        pa.field("image_height", pa.int32(), nullable=False),
        pa.field("detect_width", pa.int32(), nullable=False),
        pa.field("detect_height", pa.int32(), nullable=False),
        pa.field("scale", pa.float64(), nullable=False),
        pa.field("people_policy", pa.string(), nullable=False),
        pa.field("persons", pa.list_(_PERSON), nullable=False),
        pa.field("faces", pa.list_(_FACE), nullable=False),
        pa.field("dropped_faces", pa.list_(_DROPPED_FACE), nullable=False),
        pa.field("verdicts", pa.list_(_VERDICT), nullable=False),
        pa.field("models", pa.list_(_MODEL), nullable=False),
        pa.field("usable_faces", pa.list_(pa.int32()), nullable=False),
        pa.field("reject_reason", pa.string(), nullable=True),
    ],
    metadata={"detections_schema_version": str(DETECTIONS_SCHEMA_VERSION)},
)


def detections_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows (each with ``source_id``) as a table with exactly ``DETECTIONS_SCHEMA``."""
    missing = [i for i, row in enumerate(rows) if not row.get("source_id")]
    if missing:
        raise ValueError(f"detections rows {missing[:5]} lack a source_id")
    table = pa.Table.from_pylist(list(rows), schema=DETECTIONS_SCHEMA)
    table.validate(full=True)
    return table


def detection_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of a detections table (schema checked) as plain Python dicts."""
    if not table.schema.remove_metadata().equals(DETECTIONS_SCHEMA.remove_metadata()):
        raise ValueError(f"table schema differs from DETECTIONS_SCHEMA:\n{table.schema}")
    return table.to_pylist()
