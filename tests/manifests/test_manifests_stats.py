import json

import numpy as np
import pandas as pd
import pytest

from manifests.stats import DISTRIBUTION_COLUMNS, bucket_label, photos_per_window, stats
from manifests.storage import Store
from pipeline.cli import main


@pytest.fixture(scope="module")
def summary(example_root):
    return stats(str(example_root))


@pytest.fixture(scope="module")
def frames(example_root):
    tables = ("pairs", "pair_ops", "rejects", "sources")
    return {t: pd.read_parquet(example_root / "manifests" / t) for t in tables}


def test_counts_agree_with_pandas(summary, frames):
    pairs, ops, rejects = frames["pairs"], frames["pair_ops"], frames["rejects"]
    assert summary["pairs"] == len(pairs) and summary["photos"] == pairs.source_id.nunique()
    assert summary["sources"] == frames["sources"].status.value_counts().to_dict()
    expected_rejects = {}
    for (stage, reason), n in rejects.groupby(["stage", "reason"]).size().items():
        expected_rejects.setdefault(stage, {})[reason] = int(n)
    assert summary["rejects"] == expected_rejects
    for subset, s in summary["subsets"].items():
        mine, my_ops = pairs[pairs.subset == subset], ops[ops.subset == subset]
        assert (s["pairs"], s["groups"], s["shards"]) == (len(mine), mine.group_id.nunique(), mine.shard.nunique())
        assert s["splits"] == mine.split.value_counts().to_dict()
        assert s["op_groups"] == my_ops.group.value_counts().to_dict()
        for name, op in s["ops"].items():
            rows = my_ops[my_ops.name == name]
            assert (op["count"], op["clamped"]) == (len(rows), int(rows.clamped.sum()))
            buckets = {}
            for value in rows.applied_strength:
                label = bucket_label(int(np.sign(value) * -(-abs(int(value)) // 20)))
                buckets[label] = buckets.get(label, 0) + 1
            assert op["strength_buckets"] == buckets
        views = mine.groupby("group_id").size().value_counts().to_dict()
        assert s["views_per_group"] == {str(k): v for k, v in views.items()}


def test_distributions_are_numpy_percentiles_of_the_non_null_values(summary, frames):
    pairs = frames["pairs"]
    for subset, s in summary["subsets"].items():
        mine = pairs[pairs.subset == subset]
        for column in DISTRIBUTION_COLUMNS:
            values = mine[column].dropna().to_numpy(dtype=np.float64)
            dist = s["qa"][column]
            assert (dist["count"], dist["nulls"]) == (len(values), len(mine) - len(values))
            if len(values):
                for p in (1, 5, 25, 50, 75, 95, 99):
                    assert dist[f"p{p}"] == pytest.approx(np.percentile(values, p), rel=1e-5, abs=1e-6)
                assert dist["mean"] == pytest.approx(values.mean(), rel=1e-5)
            else:
                assert dist["p50"] is None and dist["mean"] is None
        exploded = mine.explode("ops")
        for name, dist in s["max_disp_px_by_op"].items():
            values = exploded[exploded.ops.map(lambda o: o["name"]) == name].max_disp_px.to_numpy(np.float64)
            assert dist["count"] == len(values)
            assert dist["p50"] == pytest.approx(np.median(values), rel=1e-5)
    assert summary["qa"]["max_disp_px"]["count"] == len(pairs)


def test_distinct_photos_per_window_follow_shard_order(example_root, frames):
    store = Store(str(example_root))
    for subset in ("simulated", "professional"):
        order = pd.read_parquet(example_root / "manifests" / "pairs" / f"subset={subset}").source_id.tolist()
        blocks = [order[i : i + 5] for i in range(0, len(order) - 4, 5)]
        counts = [len(set(b)) for b in blocks]
        got = photos_per_window(store, subset, window=5)
        assert got == {"window": 5, "windows": len(counts), "min": min(counts), "median": float(np.median(counts)),
                       "max": max(counts)}  # fmt: skip
        whole = photos_per_window(store, subset)
        assert (whole["window"], whole["min"]) == (len(order), len(set(order)))


def test_cli_prints_json_and_a_table(example_root, capsys):
    assert main(["stats", str(example_root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] > 0
    assert main(["stats", str(example_root)]) == 0
    out = capsys.readouterr().out
    assert "max_disp_px" in out and "simulated:" in out and "professional:" in out
