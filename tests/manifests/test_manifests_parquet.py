import pandas as pd
import pyarrow.parquet as pq
import pytest

from manifests import parquet
from manifests.parquet import ParquetPartWriter, read_table, write_table
from manifests.schema import PAIRS_SCHEMA, REJECTS_SCHEMA, pairs_dir, partial_path


def test_same_rows_give_identical_bytes(build, tmp_path):
    _, rows = build
    a, b = tmp_path / "x" / "a.parquet", tmp_path / "y" / "b.parquet"
    write_table(a, rows, PAIRS_SCHEMA)
    write_table(b, rows, PAIRS_SCHEMA)
    assert a.read_bytes() == b.read_bytes()
    changed = [dict(rows[0], view=rows[0]["view"] + 1)] + rows[1:]
    write_table(b, changed, PAIRS_SCHEMA)
    assert a.read_bytes() != b.read_bytes()


def test_streaming_writer_splits_row_groups_and_matches_write_table(build, tmp_path, monkeypatch):
    _, rows = build
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 3)
    with ParquetPartWriter(tmp_path / "s.parquet", PAIRS_SCHEMA) as writer:
        for row in rows:
            writer.write(row)
    write_table(tmp_path / "t.parquet", rows, PAIRS_SCHEMA)
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_row_groups == -(-len(rows) // 3)
    assert (tmp_path / "s.parquet").read_bytes() == (tmp_path / "t.parquet").read_bytes()
    assert read_table(tmp_path / "s.parquet", PAIRS_SCHEMA).to_pylist() == rows


def test_missing_and_extra_fields_are_named_with_the_row_id(build, tmp_path):
    _, rows = build
    tmp_path = tmp_path / "bad"
    missing = {k: v for k, v in rows[1].items() if k != "seed"}
    with pytest.raises(ValueError, match=r"row 1 \(pair_id='.*'\).*missing field\(s\) \['seed'\]"):
        write_table(tmp_path / "m.parquet", [rows[0], missing], PAIRS_SCHEMA)
    extra = dict(rows[0], colour="red")
    with pytest.raises(ValueError, match=r"extra field\(s\) \['colour'\]"):
        write_table(tmp_path / "e.parquet", [extra], PAIRS_SCHEMA)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_nulls_and_bad_types_are_refused(build, tmp_path):
    _, rows = build
    tmp_path = tmp_path / "bad"
    with pytest.raises(ValueError, match="'sha256_mask' must not be null"):
        write_table(tmp_path / "n.parquet", [dict(rows[0], sha256_mask=None)], PAIRS_SCHEMA)
    with pytest.raises(ValueError, match="do not convert to the schema"):
        write_table(tmp_path / "t.parquet", [dict(rows[0], view=70000)], PAIRS_SCHEMA)
    with pytest.raises(ValueError, match="do not convert to the schema"):
        write_table(tmp_path / "f.parquet", [dict(rows[0], aug_matrix=[1.0, 0.0])], PAIRS_SCHEMA)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_writer_that_raises_midway_leaves_no_file(build, tmp_path):
    _, rows = build
    path = tmp_path / "part.parquet"
    with pytest.raises(RuntimeError, match="worker died"):
        with ParquetPartWriter(path, PAIRS_SCHEMA) as writer:
            writer.write(rows[0])
            assert partial_path(path).exists()
            raise RuntimeError("worker died")
    assert not path.exists()
    assert not partial_path(path).exists()


def test_empty_table_is_a_valid_file(tmp_path):
    path = tmp_path / "rejects.parquet"
    assert write_table(path, [], REJECTS_SCHEMA) == 0
    assert read_table(path, REJECTS_SCHEMA).num_rows == 0


def test_read_table_checks_the_schema(build):
    out, _ = build
    with pytest.raises(ValueError, match="schema differs"):
        read_table(out / "manifests" / "rejects.parquet", PAIRS_SCHEMA)


def test_pandas_reads_pairs_dir_with_one_clean_subset_column(build):
    out, rows = build
    df = pd.read_parquet(pairs_dir(out))
    assert list(df.columns).count("subset") == 1
    assert len(df) == len(rows)
    expected = {r["pair_id"]: r["subset"] for r in rows}
    assert dict(zip(df["pair_id"], df["subset"].astype(str))) == expected
    assert set(df["subset"].astype(str)) == {"simulated", "professional"}
    professional = pd.read_parquet(pairs_dir(out), filters=[("subset", "==", "professional")])
    assert set(professional["image_format"]) == {"png"}
    assert len(professional) == sum(r["subset"] == "professional" for r in rows)
    one_part = pd.read_parquet(out / "manifests/pairs/subset=simulated/part-000001.parquet")
    assert set(one_part["subset"].astype(str)) == {"simulated"}
