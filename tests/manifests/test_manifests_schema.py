import re
from pathlib import Path

import pyarrow as pa
import pytest

from manifests import schema
from manifests.columns import COLUMN_DOCS
from manifests.detections import DETECTIONS_SCHEMA
from manifests.schema import (
    MAX_EDITS,
    MAX_PERSONS,
    MAX_VIEWS,
    check_key,
    group_key,
    member_sha_columns,
    member_suffixes,
    pair_key,
    parse_shard_name,
    shard_name,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "manifests.md"
TABLES = {
    "sources": schema.SOURCES_SCHEMA, "rejects": schema.REJECTS_SCHEMA, "plan": schema.PLAN_SCHEMA,
    "pairs": schema.PAIRS_SCHEMA, "pair_ops": schema.PAIR_OPS_SCHEMA, "detections": DETECTIONS_SCHEMA,
}  # fmt: skip


def test_keys_have_room_for_the_reference_scale_and_no_dots():
    assert MAX_EDITS >= 10**5 and MAX_VIEWS >= 10**4 and MAX_PERSONS >= 10
    key = pair_key("professional", "0123abcd0123abcd", MAX_PERSONS - 1, MAX_EDITS - 1, MAX_VIEWS - 1)
    assert key == "professional-0123abcd0123abcd-p99-e99999-v9999"
    assert "." not in key and check_key(key) == key
    assert key.startswith(group_key("professional", "0123abcd0123abcd", 99, 99_999) + "-v")


@pytest.mark.parametrize(
    "args",
    [("simulated", "abc", 0, MAX_EDITS, 0), ("simulated", "abc", 0, 0, MAX_VIEWS), ("simulated", "abc", MAX_PERSONS, 0, 0),
     ("simulated", "a.b", 0, 0, 0), ("portrait", "abc", 0, 0, 0), ("simulated", "abc", 0, -1, 0),
     ("simulated", "abc", True, 0, 0)],
)  # fmt: skip
def test_pair_key_refuses_what_does_not_fit(args):
    with pytest.raises(ValueError):
        pair_key(*args)


@pytest.mark.parametrize("key", ["a.b", "-a", "a-", "a--b", "", "a/b", "a b"])
def test_check_key_refuses_separators(key):
    with pytest.raises(ValueError):
        check_key(key)


def test_shard_names_round_trip_and_paths_use_them():
    assert shard_name("professional", 42) == "professional-000042"
    assert parse_shard_name("professional-000042") == ("professional", 42)
    for bad in ("simulated-42", "simulated_000042", "other-000001", "simulated-0000x1"):
        with pytest.raises(ValueError):
            parse_shard_name(bad)
    assert schema.shard_tar_path("simulated", 3) == "shards/simulated/simulated-000003.tar"
    assert schema.pairs_part_path("simulated", 3) == "manifests/pairs/subset=simulated/part-000003.parquet"
    assert schema.pair_ops_part_path("professional", 3) == "manifests/pair_ops/subset=professional/part-000003.parquet"
    assert schema.marker_path("simulated", 3) == "_markers/simulated-000003.json"
    assert schema.rejects_part_path("simulated", 3) == "manifests/rejects/simulated-000003.parquet"
    assert schema.plan_path("simulated", 1) == "manifests/plan/subset=simulated/gen-000001.parquet"
    assert schema.shard_index_path("professional") == "shards/professional/index.json"


def test_member_suffixes_and_sha_columns_per_format():
    assert member_suffixes("jpeg") == ("after.jpg", "before.jpg", "json", "mask.png", "opmask.png", "regions.png",
                                       "strength.png")
    assert list(member_suffixes("png")) == sorted(member_suffixes("png"))
    assert member_sha_columns("webp") == {
        "after.webp": "sha256_after", "before.webp": "sha256_before", "json": "sha256_json",
        "mask.png": "sha256_mask", "opmask.png": "sha256_opmask", "regions.png": "sha256_regions",
        "strength.png": "sha256_strength",
    }  # fmt: skip
    assert set(member_sha_columns("jpeg").values()) <= set(schema.PAIRS_SCHEMA.names)
    with pytest.raises(ValueError, match="unknown image format"):
        member_suffixes("gif")


def test_subset_columns_share_the_hive_partition_type():
    for table in (schema.PAIRS_SCHEMA, schema.PAIR_OPS_SCHEMA):
        assert table.field("subset").type == pa.dictionary(pa.int32(), pa.string())
    for field in schema.QA_FIELDS:
        assert schema.PAIRS_SCHEMA.field(field.name).nullable


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_column_is_documented_once_in_code_and_in_the_docs(table):
    assert list(COLUMN_DOCS[table]) == TABLES[table].names
    text = DOCS.read_text()
    section = text.split(f"<!-- table:{table} -->", 1)[1].split("<!-- /table -->", 1)[0]
    documented = re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.M)
    assert documented == TABLES[table].names
