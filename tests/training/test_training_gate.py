"""The training gate: verified, unchanged shards or no training (check_gate and the CLI)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.training.gate import check_gate

from training_fixtures import write_shard_index, write_verify_report

SUBSETS = ("simulated", "professional")


def tars(root: Path) -> list[Path]:
    return sorted((root / "shards" / "simulated").glob("*.tar"))


def refuse(root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    """Run `mirrorset train` on ``root``; it must refuse (exit 3) and train nothing."""
    out = tmp_path / "train-out"
    assert main(["train", "--data", str(root), "--out", str(out), "--set", "train.steps=1"]) == 3
    assert not out.exists()
    return capsys.readouterr().err


def test_verified_shards_pass(dataset: Path) -> None:
    assert check_gate(dataset, dataset / "verify.json", SUBSETS) == []


def test_missing_shard_is_refused(dataset: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gone = tars(dataset)[1]
    gone.unlink()
    problems = check_gate(dataset, dataset / "verify.json", SUBSETS)
    assert problems == [f"shards/simulated/{gone.name}: shard missing on disk"]
    err = refuse(dataset, capsys, tmp_path)
    assert "refusing to start" in err and f"{gone.name}: shard missing on disk" in err


def test_corrupted_shard_is_refused(dataset: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tar = tars(dataset)[0]
    data = bytearray(tar.read_bytes())
    data[5000] ^= 0xFF  # same size, one byte flipped inside the first member
    tar.write_bytes(bytes(data))
    problems = check_gate(dataset, dataset / "verify.json", SUBSETS)
    assert len(problems) == 1 and problems[0].startswith(f"shards/simulated/{tar.name}: modified after verification")
    assert "modified after verification" in refuse(dataset, capsys, tmp_path)


def test_rebuilt_index_disagrees_with_the_report(dataset: Path) -> None:
    """A shard rewritten and re-indexed after verification: checksum differs from the report."""
    tar = tars(dataset)[0]
    stat = tar.stat()
    data = bytearray(tar.read_bytes())
    data[5000] ^= 0xFF
    tar.write_bytes(bytes(data))
    os.utime(tar, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with its old mtime
    write_shard_index(dataset, "simulated")
    problems = check_gate(dataset, dataset / "verify.json", SUBSETS)
    assert len(problems) == 1
    assert "sha256 is" in problems[0] and "in the shard index but" in problems[0]


def test_shard_added_after_verification(dataset: Path) -> None:
    extra = dataset / "shards" / "simulated" / "simulated-000099.tar"
    extra.write_bytes(tars(dataset)[0].read_bytes())
    write_shard_index(dataset, "simulated")
    assert check_gate(dataset, dataset / "verify.json", SUBSETS) == [
        "shards/simulated/simulated-000099.tar: in the shard index of 'simulated' but not in the verify report"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ok": False}, "did not pass"),
        ({"mode": "quick"}, "mode 'quick'; training needs a full verification"),
        ({"mode": None}, "mode None"),
        ({"problems": [{"code": "checksum"}]}, "did not pass"),
        ({"shards": [{"subset": "simulated", "url": "x.tar"}]}, "shards[0].sha256 must be a str"),
    ],
)
def test_report_that_does_not_qualify(dataset: Path, change: dict, expected: str) -> None:
    path = dataset / "verify.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    problems = check_gate(dataset, path, SUBSETS)
    assert len(problems) == 1 and expected in problems[0]


def test_missing_or_unreadable_report(dataset: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert check_gate(dataset, dataset / "nope.json", SUBSETS) == [f"verify report {dataset / 'nope.json'} does not exist"]
    (dataset / "verify.json").write_text("{not json")
    assert "is unreadable" in check_gate(dataset, dataset / "verify.json", SUBSETS)[0]
    (dataset / "verify.json").unlink()
    assert "verify.json does not exist" in refuse(dataset, capsys, tmp_path)


def test_absent_subset_and_missing_index(dataset: Path) -> None:
    """No professional subset is fine; a reported subset without its index is not; no index at all is not."""
    assert check_gate(dataset, dataset / "verify.json", ("professional", "simulated")) == []
    (dataset / "shards" / "simulated" / "index.json").unlink()
    problems = check_gate(dataset, dataset / "verify.json", SUBSETS)
    index = dataset / "shards" / "simulated" / "index.json"
    assert problems == [f"the verify report lists {len(tars(dataset))} shard(s) of subset 'simulated', but {index} does not exist"]
    write_verify_report(dataset, ())
    assert check_gate(dataset, dataset / "verify.json", SUBSETS) == [
        f"no shard index in {dataset / 'shards'} for any of the subsets {list(SUBSETS)}"
    ]


def test_bad_index_is_a_problem(dataset: Path) -> None:
    index = dataset / "shards" / "simulated" / "index.json"
    data = json.loads(index.read_text())
    data["shardlist"][0]["url"] = "../../../etc/passwd"
    index.write_text(json.dumps(data))
    problems = check_gate(dataset, dataset / "verify.json", SUBSETS)
    assert len(problems) == 1 and "leaves the dataset root" in problems[0]
