"""TrainConfig: the train: section of params.yaml, overrides, validation, the documented section."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from pipeline.configtools import ConfigError
from pipeline.training.config import TrainConfig, load_train_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def documented_section() -> dict:
    """The ```yaml block of docs/training.md that starts with ``train:``."""
    blocks = re.findall(r"```yaml\n(train:.*?)```", DOCS.read_text(), flags=re.S)
    assert len(blocks) == 1
    return yaml.safe_load(blocks[0])["train"]


def test_documented_section_lists_exactly_the_defaults(tmp_path: Path) -> None:
    section = documented_section()
    assert list(section) == [f.name for f in dataclasses.fields(TrainConfig)]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 3, "train": section}))
    assert load_train_config(path) == TrainConfig()


def test_repository_params_yaml_gives_the_defaults() -> None:
    assert load_train_config() == TrainConfig()


def test_section_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("simulated:\n  views: 4\ntrain:\n  steps: 50\n  device: cpu\n")
    config = load_train_config(path, {"train.batch_size": 2, "train.lr": 1})
    assert (config.steps, config.device, config.batch_size, config.lr) == (50, "cpu", 2, 1.0)
    path.write_text("seed: 1\n")
    assert load_train_config(path) == TrainConfig()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.stepz": 5}, r"train: unknown key\(s\) \['stepz'\]"),
        ({"steps": 5}, "expected 'train.KEY'"),
        ({"train.resolution": 50}, "multiple of 16"),
        ({"train.holdout_fraction": 0.0}, r"holdout_fraction must be in \(0, 1\)"),
        ({"train.device": "tpu"}, "is not one of"),
        ({"train.steps": "many"}, "expected int"),
        ({"train.image_loss_weight": 0, "train.op_loss_weight": 0, "train.strength_loss_weight": 0}, "not all 0"),
    ],
)
def test_bad_values_are_clear_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, overrides)
