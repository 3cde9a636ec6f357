"""Parquet schema of ``manifests/detections.parquet``: one row per source photo.

Rows come from ``detectors.records.PortraitDetections.to_row()`` plus the ``source_id``
key. Point sets are flattened fixed-size float32 lists (row-major: point, then
coordinate); scalars that must round-trip exactly are float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

DETECTIONS_SCHEMA_VERSION = 1
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
])
_FACE = pa.struct([
    pa.field("person_index", pa.int32(), nullable=False),
    pa.field("landmarks", pa.list_(pa.float32(), FACE_POINTS * 3), nullable=False),
    pa.field("box", _BOX, nullable=False),
    pa.field("score", pa.float64(), nullable=False),
    pa.field("yaw", pa.float64(), nullable=False),
    pa.field("pitch", pa.float64(), nullable=False),
    pa.field("roll", pa.float64(), nullable=False),
    pa.field("inter_ocular", pa.float64(), nullable=False),
    pa.field("verdicts", pa.list_(_VERDICT), nullable=False),
])
_POSE = pa.struct([
    pa.field("person_index", pa.int32(), nullable=False),
    pa.field("landmarks", pa.list_(pa.float32(), POSE_POINTS * 4), nullable=False),
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
        pa.field("poses", pa.list_(_POSE), nullable=False),
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
