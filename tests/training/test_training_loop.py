"""`mirrorset train` end to end on real shards: held-out loss before/after, resume, curriculum."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from training_fixtures import held_out_edits, manifest_edits, verified_copy, write_shard_index, write_verify_report

from pipeline.cli import main
from pipeline.training.checkpoint import load_model_tensors
from pipeline.training.config import TrainConfig
from pipeline.training.loop import Phase, curriculum, train

#: Tiny and fast; two DataLoader workers so the worker split and resume rotation are exercised.
TINY = TrainConfig(
    steps=8, switch_step=4, batch_size=4, resolution=48, width=8, num_workers=2, shuffle_buffer=16,
    eval_quads=8, warmup_steps=2, log_every=2, checkpoint_every=100,
)  # fmt: skip


@pytest.fixture
def tiny(holdout: float) -> TrainConfig:
    return dataclasses.replace(TINY, holdout_fraction=holdout)


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_model_tensors(out / "model.safetensors")[0]


def test_short_cpu_run_lowers_the_held_out_loss(
    sample_build: Path, dataset: Path, tiny: TrainConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(["train", "--data", str(dataset), "--out", str(out), "--set", "train.steps=40", "--set", "train.lr=0.003",
                 *[f"--set=train.{k}={v}" for k, v in dataclasses.asdict(tiny).items() if k not in ("steps", "lr")]])  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    held = metrics["heldout"]["simulated"]
    held_out_views = sum(len(e["views"]) for e in held_out_edits(sample_build, tiny.seed, tiny.holdout_fraction).values())
    assert held["before"]["quads"] == held["after"]["quads"] == min(tiny.eval_quads, held_out_views)
    assert held["after"]["loss"] < 0.9 * held["before"]["loss"]  # measurably lower: by a tenth at least
    assert metrics["device"] == "cpu" and metrics["steps"] == 40 and metrics["seconds_per_step"] > 0
    assert [int(r["step"]) for r in rows(out / "train_log.csv")] == list(range(2, 41, 2))
    assert [int(r["step"]) for r in rows(out / "heldout_log.csv")] == [0, 40]
    assert "held-out loss" in capsys.readouterr().out
    assert main(["train", "--data", str(dataset), "--out", str(out)]) == 2  # a checkpoint is there: no --resume
    assert "pass --resume" in capsys.readouterr().err


def test_resumed_run_equals_an_uninterrupted_one(dataset: Path, tiny: TrainConfig, tmp_path: Path) -> None:
    """5 steps, then resume to 12 (and a checkpoint at 10 in both) == 12 steps at once: same
    weights, same training losses logged over the same steps (a log row averages the steps since
    the previous row or the resume). 5 is odd, so the resumed loader rotates its workers."""
    config = dataclasses.replace(tiny, steps=12, checkpoint_every=10)
    whole = train(dataset, dataset / "verify.json", tmp_path / "whole", config)
    first = train(dataset, dataset / "verify.json", tmp_path / "split", dataclasses.replace(config, steps=5))
    resumed = train(dataset, dataset / "verify.json", tmp_path / "split", config, resume=True)
    assert (first.steps, resumed.steps, resumed.metrics["resumed_from"]) == (5, 12, 5)
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logged = [{int(r["step"]): r["loss"] for r in rows(tmp_path / name / "train_log.csv")} for name in ("whole", "split")]
    assert list(logged[0]) == [2, 4, 6, 8, 10, 12] and list(logged[1]) == [2, 4, 5, 6, 8, 10, 12]
    assert all(logged[0][step] == logged[1][step] for step in (2, 4, 8, 10, 12))
    assert resumed.metrics["heldout"] == whole.metrics["heldout"]


def test_stale_checkpoint_is_not_continued(
    dataset: Path, tiny: TrainConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Resuming with other settings starts over, as a fresh run of those settings would."""
    first = dataclasses.replace(tiny, steps=4)
    train(dataset, dataset / "verify.json", tmp_path / "stale", first)
    changed = dataclasses.replace(first, lr=0.01)
    with caplog.at_level(logging.WARNING):
        result = train(dataset, dataset / "verify.json", tmp_path / "stale", changed, resume=True)
    assert "is stale (trained with other settings of ['lr']): starting over" in caplog.text
    assert result.metrics["resumed_from"] is None
    fresh = train(dataset, dataset / "verify.json", tmp_path / "fresh", changed)
    a, b = weights(tmp_path / "stale"), weights(tmp_path / "fresh")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_curriculum_switches_from_simulated_to_professional(sample_build: Path, tiny: TrainConfig, tmp_path: Path) -> None:
    """Two small simulated datasets stand in: the sample build's first shard with a training
    edit as 'professional', the other shards as 'simulated'."""
    edits = manifest_edits(sample_build)
    held = held_out_edits(sample_build, tiny.seed, tiny.holdout_fraction)
    moved = min(e["shard"] for g, e in edits.items() if g not in held)
    assert any(e["shard"] != moved for g, e in edits.items() if g not in held)
    root = verified_copy(sample_build, tmp_path / "two")
    professional = root / "shards" / "professional"
    professional.mkdir()
    (root / "shards" / "simulated" / f"{moved}.tar").rename(professional / f"{moved}.tar")
    for subset in ("simulated", "professional"):
        write_shard_index(root, subset)
    write_verify_report(root, ("simulated", "professional"))
    result = train(root, root / "verify.json", tmp_path / "out", tiny)
    assert [(r["step"], r["subset"]) for r in rows(tmp_path / "out" / "train_log.csv")] == [
        ("2", "simulated"), ("4", "simulated"), ("6", "professional"), ("8", "professional"),
    ]  # fmt: skip
    with_held_out = {"professional" if e["shard"] == moved else "simulated" for e in held.values()}
    assert set(result.metrics["heldout"]) == with_held_out


def test_curriculum_without_a_subset(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert curriculum(["simulated"], TINY) == [Phase("simulated", 0, 8)]
    assert "subset(s) ['professional'] absent; all 8 steps train on 'simulated'" in caplog.text
    assert curriculum(["professional"], TINY) == [Phase("professional", 0, 8)]
    both = ["simulated", "professional"]
    assert curriculum(both, TINY) == [Phase("simulated", 0, 4), Phase("professional", 4, 8)]
    assert curriculum(both, dataclasses.replace(TINY, switch_step=20)) == [Phase("simulated", 0, 8)]
    assert curriculum(both, dataclasses.replace(TINY, switch_step=0)) == [Phase("professional", 0, 8)]
