"""``TrainConfig``: every knob of ``mirrorset train``, read from the ``train:`` section of
params.yaml through :func:`pipeline.configtools.from_dict` (the build's machinery).

The defaults below are the only copy: a missing key keeps them. They describe a short
run that finishes in well under a minute on CPU on the built-in sample; a real run
raises ``steps``, ``resolution`` and ``batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.config import DEFAULT_PARAMS
from pipeline.configtools import ConfigError, from_dict

#: The params.yaml section this config is read from; ``--set`` keys start with it.
SECTION = "train"


@dataclass(frozen=True)
class TrainConfig:
    """Training of the operation extractor (docs/training.md explains each field).

    Steps count optimizer updates. The curriculum trains on the simulated subset for
    steps ``[0, switch_step)`` and on the professional subset from ``switch_step`` on;
    an absent subset is skipped with a log line. ``holdout_fraction`` of the edits
    (by ``group_id``) never reach training; up to ``eval_quads`` quadruples of them are
    evaluated before training, every ``eval_every`` steps (0 = never in between) and
    after. ``region_weight`` multiplies the image loss inside the query's edit region.
    ``threads``: torch threads of the training process (0 = as torch is set, by default one per core);
    DataLoader workers always use one.
    """

    seed: int = 0
    steps: int = 200
    switch_step: int = 100
    batch_size: int = 8
    resolution: int = 96
    width: int = 16
    lr: float = 0.002
    weight_decay: float = 0.0001
    warmup_steps: int = 20
    region_weight: float = 100.0
    image_loss_weight: float = 1.0
    op_loss_weight: float = 1.0
    strength_loss_weight: float = 1.0
    num_workers: int = 2
    shuffle_buffer: int = 64
    holdout_fraction: float = 0.2
    eval_quads: int = 64
    eval_every: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "width", "shuffle_buffer", "eval_quads", "checkpoint_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("seed", "switch_step", "warmup_steps", "num_workers", "eval_every", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.resolution < 32 or self.resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16 and >= 32, got {self.resolution}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if not self.region_weight >= 1:
            raise ValueError(f"region_weight must be >= 1, got {self.region_weight}")
        weights = (self.image_loss_weight, self.op_loss_weight, self.strength_loss_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise ValueError(f"loss weights must be >= 0 and not all 0, got {weights}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")


def load_train_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The ``train:`` section of the YAML file at ``path`` (default: the repository's
    params.yaml; a missing section keeps every default), with ``overrides`` such as
    ``{"train.steps": 20}`` applied. Unknown keys and bad values raise ConfigError."""
    path = Path(path) if path is not None else DEFAULT_PARAMS
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    section = data.get(SECTION) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{SECTION}: expected a mapping, got {type(section).__name__}")
    section = dict(section)
    for dotted, value in (overrides or {}).items():
        prefix, _, key = dotted.partition(".")
        if prefix != SECTION or not key or "." in key:
            raise ConfigError(f"override {dotted!r}: expected '{SECTION}.KEY'")
        section[key] = value
    return from_dict(TrainConfig, section, SECTION)
