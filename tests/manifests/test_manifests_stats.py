import json
from collections import Counter

import numpy as np

from manifests.stats import bucket_label, format_stats, stats, strength_buckets
from pipeline.cli import main


def test_strength_buckets_are_signed_and_20_wide():
    strengths = np.array([0, 1, 20, 21, 100, -1, -20, -21, -100])
    assert strength_buckets(strengths).tolist() == [0, 1, 1, 2, 5, -1, -1, -2, -5]
    assert [bucket_label(b) for b in (0, 1, 5, -2)] == ["0", "+1..+20", "+81..+100", "-21..-40"]


def test_stats_match_counts_from_the_rows(build):
    out, rows = build
    s = stats(out)
    assert s["pairs"] == len(rows)
    assert s["subsets"] == {
        "professional": {"pairs": 2, "groups": 1},
        "simulated": {"pairs": 7, "groups": 3},
    }
    assert s["image_formats"] == {"jpeg": 7, "png": 2}
    ops = [op for r in rows for op in r["ops"]]
    assert {name: c["count"] for name, c in s["ops"].items()} == dict(Counter(op["name"] for op in ops))
    assert {name: c["clamped"] for name, c in s["ops"].items()} == {
        name: sum(op["clamped"] for op in ops if op["name"] == name) for name in s["ops"]
    }
    expected_buckets = Counter(bucket_label(int(b)) for b in strength_buckets([op["applied_strength"] for op in ops]))
    assert s["strength_buckets"] == dict(expected_buckets)
    assert sum(s["strength_buckets"].values()) == len(ops)
    assert s["ops_per_pair"] == {str(k): v for k, v in sorted(Counter(len(r["ops"]) for r in rows).items())}
    assert s["views_per_group"] == {"2": 3, "3": 1}
    assert s["sources"] == {"accepted": 4, "rejected": 2}
    assert s["rejects"] == {"detect": {"no_face": 1}, "ingest": {"too_small": 1, "undecodable": 1}}
    table = format_stats(s)
    assert all(name in table for name in s["ops"])
    assert "undecodable" in table


def test_stats_cli_prints_json(build, capsys):
    out, rows = build
    assert main(["stats", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == json.loads(json.dumps(stats(out)))
    assert printed["pairs"] == len(rows)
