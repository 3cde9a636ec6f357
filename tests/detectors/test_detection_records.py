"""PortraitDetections rows round-trip losslessly through an actual Parquet file."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from detectors.records import PortraitDetections
from manifests.detections import DETECTIONS_SCHEMA, detection_rows, detections_table


def test_rows_round_trip_through_parquet(tmp_path, astronaut_det, group_det, coffee_det):
    records = {"astronaut": astronaut_det, "group": group_det, "coffee": coffee_det}
    rows = [{"source_id": key, **record.to_row()} for key, record in records.items()]
    path = tmp_path / "detections.parquet"
    pq.write_table(detections_table(rows), path)
    table = pq.read_table(path)
    assert table.schema.equals(DETECTIONS_SCHEMA, check_metadata=False)
    back = detection_rows(table)
    assert [row["source_id"] for row in back] == list(records)
    for row, (key, record) in zip(back, records.items()):
        restored = PortraitDetections.from_row(row)
        assert restored.to_row() == record.to_row(), key
        assert restored.usable_faces() == record.usable_faces()
        for a, b in zip(restored.faces, record.faces):
            assert a.landmarks.tobytes() == b.landmarks.tobytes()


def test_rows_without_source_id_are_refused(astronaut_det):
    with pytest.raises(ValueError, match="source_id"):
        detections_table([astronaut_det.to_row()])


def test_unknown_schema_version_is_refused(astronaut_det):
    row = {**astronaut_det.to_row(), "schema_version": 999}
    with pytest.raises(ValueError, match="schema_version"):
        PortraitDetections.from_row(row)


def test_tampered_derived_columns_are_refused(group_det):
    row = {**group_det.to_row(), "usable_faces": [0, 1, 2, 3, 4, 5]}
    with pytest.raises(ValueError, match="disagree"):
        PortraitDetections.from_row(row)


def test_point_arrays_have_fixed_shapes(astronaut_det):
    row = astronaut_det.to_row()
    row["faces"][0]["landmarks"] = row["faces"][0]["landmarks"][:-3]
    with pytest.raises(ValueError, match="face landmarks"):
        PortraitDetections.from_row(row)


def test_rows_read_back_with_pandas_rebuild_the_record(tmp_path, astronaut_det, coffee_det):
    import pandas as pd

    rows = [{"source_id": name, **det.to_row()} for name, det in (("a", astronaut_det), ("c", coffee_det))]
    pq.write_table(detections_table(rows), tmp_path / "d.parquet")
    frame = pd.read_parquet(tmp_path / "d.parquet")
    for (_, row), det in zip(frame.iterrows(), (astronaut_det, coffee_det)):
        rebuilt = PortraitDetections.from_row(row.to_dict())
        assert rebuilt.usable_faces() == det.usable_faces()
        assert rebuilt.reject_reason() == det.reject_reason()


def test_persons_without_pose_and_derived_persons_round_trip(tmp_path, no_network, group):
    import pandas as pd

    from detectors.config import DetectorConfig, GateConfig
    from detectors.portrait import PortraitDetector

    with PortraitDetector(DetectorConfig(score_threshold=0.999), GateConfig()) as blind:
        derived = blind.detect(group)  # every person derived from a face: no pose, null agreement
    assert derived.persons and all(p.pose is None and p.pose_agreement is None for p in derived.persons)
    rows = [{"source_id": "d", **derived.to_row()}]
    pq.write_table(detections_table(rows), tmp_path / "d.parquet")
    back = PortraitDetections.from_row(detection_rows(pq.read_table(tmp_path / "d.parquet"))[0])
    assert back.to_row() == derived.to_row()
    via_pandas = PortraitDetections.from_row(pd.read_parquet(tmp_path / "d.parquet").iloc[0].to_dict())
    assert via_pandas.to_row() == derived.to_row()
    for a, b in zip(back.persons, derived.persons):
        assert a.origin == b.origin == "face" and a.outline.tobytes() == b.outline.tobytes()
