from pathlib import Path

import pyarrow.parquet as pq
import pytest

from manifests import schema
from manifests.parquet import read_table, write_table


def test_pair_and_group_keys_have_fixed_format_without_dots():
    assert schema.group_key("0123abcd0123abcd", 1, 2) == "0123abcd0123abcd-f01-e02"
    key = schema.pair_key("0123abcd0123abcd", 1, 2, 7)
    assert key == "0123abcd0123abcd-f01-e02-v07"
    assert "." not in key
    assert schema.check_key(key) == key


@pytest.mark.parametrize("bad", ["a.b", "a/b", "", "-a", "a-"])
def test_keys_refuse_dots_slashes_and_empty_ids(bad):
    with pytest.raises(ValueError, match="source_id"):
        schema.pair_key(bad, 0, 0, 0)


def test_key_indices_are_range_checked():
    with pytest.raises(ValueError, match="view"):
        schema.pair_key("abc", 0, 0, 100)
    with pytest.raises(ValueError, match="face_index"):
        schema.group_key("abc", -1, 0)


def test_shard_names_and_paths():
    assert schema.shard_name("simulated", 123) == "simulated-000123"
    assert schema.parse_shard_name("professional-000007") == ("professional", 7)
    out = Path("/data/out")
    assert schema.shard_tar_path(out, "simulated", 3) == out / "shards/simulated/simulated-000003.tar"
    assert schema.pairs_part_path(out, "simulated", 3) == out / "manifests/pairs/subset=simulated/part-000003.parquet"
    assert schema.marker_path(out, "simulated", 3) == out / "_markers/simulated-000003.json"
    assert schema.partial_path(out / "a.tar") == out / ".a.tar.partial"
    with pytest.raises(ValueError, match="unknown subset"):
        schema.shard_name("train", 0)
    with pytest.raises(ValueError, match="shard index"):
        schema.shard_name("simulated", 1_000_000)
    with pytest.raises(ValueError, match="not a shard name"):
        schema.parse_shard_name("simulated-12")


def test_member_suffixes_are_in_tar_order_and_map_to_sha_columns():
    suffixes = schema.member_suffixes("jpeg")
    assert suffixes == ("after.jpg", "before.jpg", "json", "mask.png")
    assert list(suffixes) == sorted(suffixes)
    assert schema.member_sha_columns("webp")["before.webp"] == "sha256_before"
    with pytest.raises(ValueError, match="unknown image format"):
        schema.image_ext("gif")


def test_detections_schema_is_reexported():
    from manifests.detections import DETECTIONS_SCHEMA

    assert schema.DETECTIONS_SCHEMA is DETECTIONS_SCHEMA


def test_sources_and_rejects_round_trip(tmp_path):
    sources = [
        {"source_id": "0123abcd0123abcd", "path": "a.jpg", "width": 640, "height": 480,
         "bytes": 12345, "sha256": "ab" * 32, "status": "accepted", "reason": None},
        {"source_id": "ffffffffffffffff", "path": "b.jpg", "width": None, "height": None,
         "bytes": 10, "sha256": "cd" * 32, "status": "rejected", "reason": "decode_error"},
    ]
    sources.append({"source_id": "eeeeeeeeeeeeeeee", "path": "gone.jpg", "width": None, "height": None,
                    "bytes": None, "sha256": None, "status": "rejected", "reason": "unreadable"})
    rejects = [{"source_id": "eeeeeeeeeeeeeeee", "path": "gone.jpg", "stage": "ingest", "reason": "unreadable",
                "detail": None}]
    for name, rows, sch in (("s", sources, schema.SOURCES_SCHEMA), ("r", rejects, schema.REJECTS_SCHEMA)):
        path = tmp_path / f"{name}.parquet"
        write_table(path, rows, sch)
        table = read_table(path, sch)
        assert table.schema.equals(sch, check_metadata=True)
        assert table.to_pylist() == rows


def test_pairs_round_trip_keeps_exact_types(build):
    out, rows = build
    part = schema.pairs_part_path(out, "simulated", 0)
    table = read_table(part, schema.PAIRS_SCHEMA)
    assert table.schema.equals(schema.PAIRS_SCHEMA, check_metadata=True)
    assert [f.type for f in table.schema] == [f.type for f in schema.PAIRS_SCHEMA]
    assert table.to_pylist() == [r for r in rows if r["shard"] == "simulated-000000"]
    metadata = pq.ParquetFile(part).schema_arrow.metadata
    assert metadata[b"mirrorset.schema_version"] == str(schema.SCHEMA_VERSION).encode()
