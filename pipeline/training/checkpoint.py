"""Checkpoints and model files as safetensors (never pickles), written atomically.

A checkpoint holds tensors ``model.<name>``, ``optimizer.<param index>.<key>`` (AdamW's
step, exp_avg, exp_avg_sq) and ``rng.torch`` (plus ``rng.cuda.<device>`` on CUDA), and
string metadata: ``format``, ``param_groups`` (JSON) and ``state`` (JSON: step, data
position, metrics so far, config). A model file holds ``model.<name>`` tensors only, with
metadata ``format``, ``op_names`` and ``config`` (JSON) to rebuild the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from manifests.storage import write_file

CHECKPOINT_FORMAT = "mirrorset-train-checkpoint-v1"
MODEL_FORMAT = "mirrorset-op-extractor-v1"


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Model, optimizer and RNG state plus the JSON-able ``state`` to ``path``."""
    tensors = _model_tensors(model)
    saved = optimizer.state_dict()
    for index, values in saved["state"].items():
        for key, value in values.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {index}.{key} is a {type(value).__name__}, not a tensor")
            tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for device, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{device}"] = rng
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "param_groups": json.dumps(saved["param_groups"]),
        "state": json.dumps(state, sort_keys=True),
    }
    write_file(str(path), save_tensors(tensors, metadata))


def checkpoint_state(path: str | Path) -> dict:
    """The ``state`` saved with a checkpoint, read from its header only."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads(_metadata(f, path, CHECKPOINT_FORMAT)["state"])


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore ``model``, ``optimizer`` and the RNGs from ``path``; returns the saved ``state``."""
    tensors, metadata = _read(path, CHECKPOINT_FORMAT)
    model.load_state_dict(_prefixed(tensors, "model."))
    groups = json.loads(metadata["param_groups"])
    for group in groups:
        group.update({k: tuple(v) for k, v in group.items() if k != "params" and isinstance(v, list)})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in _prefixed(tensors, "optimizer.").items():
        index, _, key = name.partition(".")
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    return json.loads(metadata["state"])


def save_model(path: str | Path, model: torch.nn.Module, op_names: tuple[str, ...], config: dict[str, Any]) -> None:
    """The trained weights with what it takes to rebuild and read the network."""
    metadata = {"format": MODEL_FORMAT, "op_names": json.dumps(list(op_names)), "config": json.dumps(config, sort_keys=True)}
    write_file(str(path), save_tensors(_model_tensors(model), metadata))


def load_model_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict, metadata) of a model file written by :func:`save_model`."""
    tensors, metadata = _read(path, MODEL_FORMAT)
    return _prefixed(tensors, "model."), metadata


def _model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _read(path: str | Path, expected: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        metadata = _metadata(f, path, expected)
        return {key: f.get_tensor(key) for key in f.keys()}, metadata


def _metadata(f: Any, path: str | Path, expected: str) -> dict[str, str]:
    metadata = f.metadata() or {}
    if metadata.get("format") != expected:
        raise ValueError(f"{path}: format {metadata.get('format')!r}, expected {expected!r}")
    return metadata
