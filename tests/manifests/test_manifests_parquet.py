import pandas as pd
import pyarrow.parquet as pq
import pytest

from manifests.parquet import check_row, count_rows, encode_rows, read_part, read_parts, write_rows
from manifests.schema import PAIR_OPS_SCHEMA, PAIRS_SCHEMA, PLAN_SCHEMA, REJECTS_SCHEMA
from manifests.storage import Store


def _plan_rows(n: int) -> list[dict]:
    return [{"shard_index": i // 3, "source_id": f"{i:016x}", "path": f"/p/{i}.jpg", "detections_part": 0,
             "person_index": i % 2, "edit_start": 4 * i, "edit_stop": 4 * i + 4, "views": 8} for i in range(n)]  # fmt: skip


def test_same_rows_give_the_same_bytes_and_read_back(tmp_path):
    store = Store(str(tmp_path))
    rows = _plan_rows(10)
    assert encode_rows(rows, PLAN_SCHEMA) == encode_rows([dict(r) for r in rows], PLAN_SCHEMA)
    write_rows(store, "plan/a.parquet", rows, PLAN_SCHEMA)
    assert read_part(store, "plan/a.parquet", PLAN_SCHEMA).to_pylist() == rows
    assert count_rows(store, "plan/a.parquet", PLAN_SCHEMA) == 10
    assert read_parts(store, "plan").num_rows == 10 and read_parts(store, "none", ["x"]).num_rows == 0


def test_rows_must_match_the_schema_exactly():
    row = _plan_rows(1)[0]
    with pytest.raises(ValueError, match=r"missing field\(s\) \['views'\]"):
        check_row({k: v for k, v in row.items() if k != "views"}, PLAN_SCHEMA)
    with pytest.raises(ValueError, match=r"extra field\(s\) \['oops'\]"):
        check_row({**row, "oops": 1}, PLAN_SCHEMA)
    with pytest.raises(ValueError, match="'source_id' must not be null"):
        check_row({**row, "source_id": None}, PLAN_SCHEMA)
    with pytest.raises(ValueError, match="do not convert"):
        encode_rows([{**row, "views": 10**6}], PLAN_SCHEMA)


def test_reading_with_another_schema_is_refused(tmp_path):
    store = Store(str(tmp_path))
    write_rows(store, "a.parquet", _plan_rows(2), PLAN_SCHEMA)
    with pytest.raises(ValueError, match="schema differs"):
        read_part(store, "a.parquet", REJECTS_SCHEMA)
    with pytest.raises(ValueError, match="schema differs"):
        count_rows(store, "a.parquet", REJECTS_SCHEMA)


def test_pandas_reads_each_partitioned_table_as_one_frame_with_one_subset_column(example_root):
    for folder, schema in (("pairs", PAIRS_SCHEMA), ("pair_ops", PAIR_OPS_SCHEMA)):
        frame = pd.read_parquet(example_root / "manifests" / folder)
        assert list(frame.columns) == schema.names
        assert isinstance(frame["subset"].dtype, pd.CategoricalDtype)
        assert set(frame["subset"]) == {"simulated", "professional"}
        alone = pd.read_parquet(example_root / "manifests" / folder / "subset=professional" / "part-000000.parquet")
        assert set(alone["subset"]) == {"professional"}
    table = pq.read_table(example_root / "manifests" / "pairs")
    assert table.num_rows == len(pd.read_parquet(example_root / "manifests" / "pairs"))
