"""The query examples in docs/manifests.md and in the dataset card run, and return what they say."""

import re
from pathlib import Path

import duckdb
import pandas as pd

DOCS = Path(__file__).resolve().parents[2] / "docs" / "manifests.md"


def _blocks(text: str, language: str, root: Path) -> list[str]:
    return [b.replace("ROOT", str(root)) for b in re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)]


def test_pandas_examples_run_and_filter_as_described(example_root):
    section = DOCS.read_text().split("## Querying", 1)[1]
    namespace: dict = {}
    for block in _blocks(section, "python", example_root):
        exec(compile(block, str(DOCS), "exec"), namespace)
    ops = pd.read_parquet(example_root / "manifests" / "pair_ops")
    wanted = set(ops[(ops.name == "eye_size") & (ops.strength > 50)].pair_id)
    assert wanted and set(namespace["strong"].pair_id) == wanted
    assert namespace["per_op"].sum() == len(ops)
    assert namespace["views"].group_id.nunique() == 1 and len(namespace["views"]) > 1
    assert (namespace["visible"].max_disp_px >= 2).all() and set(namespace["visible"].split) <= {"train"}
    assert namespace["reasons"].sum() == len(pd.read_parquet(example_root / "manifests" / "rejects"))


def test_sql_examples_run_in_duckdb(example_root):
    section = DOCS.read_text().split("## Querying", 1)[1]
    card = (example_root / "README.md").read_text()
    blocks = _blocks(section, "sql", example_root) + _blocks(card, "sql", example_root)
    assert len(blocks) == 4
    ops = pd.read_parquet(example_root / "manifests" / "pair_ops")
    expected_strong = int(((ops.name == "eye_size") & (ops.strength > 50)).sum())
    results = [duckdb.sql(block).fetchall() for block in blocks]
    assert len(results[0]) == expected_strong == len(results[3])
    assert all(results)


def test_card_pandas_example_runs(example_root):
    card = (example_root / "README.md").read_text()
    namespace: dict = {}
    exec(compile(_blocks(card, "python", example_root)[0], "README.md", "exec"), namespace)
    assert len(namespace["pairs_of_strong"]) == len(namespace["strong"]) > 0
