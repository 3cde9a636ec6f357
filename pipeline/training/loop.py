"""Train the operation extractor on verified shards: gate, curriculum, evaluation, resume.

:func:`train` refuses to start unless :func:`pipeline.training.gate.check_gate` passes,
evaluates the held-out edits before the first step, trains ``config.steps`` steps (the
simulated subset first, the professional one from ``switch_step`` on), checkpoints every
``checkpoint_every`` steps, evaluates again and writes into ``out``:

    checkpoints/last.safetensors  model, optimizer, RNG, data position, logs (resume from here)
    model.safetensors             the trained weights (pipeline.training.checkpoint)
    train_log.csv                 every log_every steps: mean training terms, lr, s/step
    heldout_log.csv               every evaluation: held-out terms per subset
    metrics.json                  held-out terms before and after, steps, device, s/step (last)

With ``resume``, a checkpoint of the same settings (but for RESUMABLE_CHANGES) and the same
shards is continued: weights, optimizer, RNG and data position (pipeline.training.data), so
on CPU a resumed run ends with the same weights as an uninterrupted one (on CUDA,
grid_sample's backward accumulates atomically and is not bit-reproducible). A checkpoint of
other settings or shards is stale: the run starts over, saying why. Without ``resume`` an
existing checkpoint is an error.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import torch

from manifests.storage import dumps_json, write_file
from manifests.schema import SUBSETS
from pipeline.configtools import to_dict
from pipeline.seeding import derive_seed
from pipeline.training.checkpoint import checkpoint_state, load_checkpoint, save_checkpoint, save_model
from pipeline.training.config import TrainConfig
from pipeline.training.data import OP_NAMES, PositionTracker, StreamPosition, heldout_set, training_loader
from pipeline.training.gate import GateRefused, check_gate
from pipeline.training.index import read_shard_index
from pipeline.training.losses import TERMS, quad_losses, to_device
from pipeline.training.model import OpExtractor

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoints/last.safetensors"
MODEL_NAME = "model.safetensors"
METRICS_NAME = "metrics.json"
TRAIN_LOG_NAME = "train_log.csv"
HELDOUT_LOG_NAME = "heldout_log.csv"
TRAIN_LOG_FIELDS = ("step", "subset", "loss", "image", "op", "strength", "lr", "seconds_per_step")
HELDOUT_LOG_FIELDS = ("step", "subset", "quads", *TERMS)
#: Config fields a resumed run may change: they do not alter what is trained.
RESUMABLE_CHANGES = frozenset({"steps", "eval_every", "checkpoint_every", "log_every", "device", "threads"})


@dataclass(frozen=True)
class Phase:
    """Train on ``subset`` for steps ``[start, end)``."""

    subset: str
    start: int
    end: int


@dataclass(frozen=True)
class TrainResult:
    out: Path
    steps: int
    metrics: dict


def curriculum(present: list[str], config: TrainConfig) -> list[Phase]:
    """The reference's order: simulated for ``[0, switch_step)``, professional after; a
    subset missing from ``present`` hands its steps to the other (logged)."""
    spans = {"simulated": (0, min(config.switch_step, config.steps)), "professional": (config.switch_step, config.steps)}
    if len(present) == 1:
        missing = [s for s in SUBSETS if s not in present]
        log.info("curriculum: subset(s) %s absent; all %d steps train on %r", missing, config.steps, present[0])
        return [Phase(present[0], 0, config.steps)]
    return [Phase(s, *spans[s]) for s in SUBSETS if s in present and spans[s][0] < spans[s][1]]


def select_device(choice: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device is 'cuda' but torch sees no CUDA device")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def evaluate(model: OpExtractor, heldout: dict[str, dict], config: TrainConfig, device: torch.device) -> dict:
    """Mean of every term of :data:`TERMS` over each subset's held-out quadruples, plus ``quads``."""
    results = {}
    with torch.no_grad():
        for subset, data in heldout.items():
            count = len(data["ops"])
            sums = dict.fromkeys(TERMS, 0.0)
            for start in range(0, count, config.batch_size):
                chunk = to_device({k: v[start : start + config.batch_size] for k, v in data.items()}, device)
                for term, values in quad_losses(model, chunk, config).items():
                    sums[term] += float(values.sum())
            results[subset] = {"quads": count, **{term: sums[term] / count for term in TERMS}}
    return results


def train(
    data_root: str | Path, report_path: str | Path, out: str | Path, config: TrainConfig, *, resume: bool = False
) -> TrainResult:
    """Train as the module docstring says. Raises GateRefused when the shards are not
    verified, FileExistsError when ``out`` holds a checkpoint and ``resume`` is false,
    ValueError for no held-out edit or a malformed sample.

    Runs with ``config.threads`` torch threads and OpenCV on one thread (its pool does not
    survive the DataLoader's fork), and restores both counts after."""
    problems = check_gate(data_root, report_path, SUBSETS)
    if problems:
        raise GateRefused(problems)
    previous = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(config.threads or previous[0])
    cv2.setNumThreads(1)
    try:
        return _train(Path(data_root), Path(out), config, resume)
    finally:
        torch.set_num_threads(previous[0])
        cv2.setNumThreads(previous[1])


def _train(data_root: Path, out: Path, config: TrainConfig, resume: bool) -> TrainResult:
    checkpoint = out / CHECKPOINT_NAME
    if checkpoint.is_file() and not resume:
        raise FileExistsError(f"{checkpoint} exists: pass --resume to continue it, or choose another --out")
    urls = _shard_urls(data_root)
    phases = curriculum(list(urls), config)
    run = _Run(out, config, select_device(config.device), _fingerprint(data_root, list(urls)))
    heldout = {s: data for s in urls if (data := heldout_set(urls[s], config)) is not None}
    if not heldout:
        raise ValueError("no held-out edit in any subset; raise train.holdout_fraction")
    log.info("device %s; held-out quadruples %s", run.device, {s: len(d["ops"]) for s, d in heldout.items()})
    stale = _stale_reason(checkpoint_state(checkpoint), config, run.fingerprint) if checkpoint.is_file() else None
    resumed_from = None
    if checkpoint.is_file() and stale is None:
        run.restore()
        resumed_from = run.step
        log.info("resumed from %s at step %d", checkpoint, run.step)
    else:
        if stale:
            log.warning("%s is stale (%s): starting over", checkpoint, stale)
        run.before = evaluate(run.model, heldout, config, run.device)
        run.heldout_rows = _heldout_rows(0, run.before)
        log.info("held-out before training: %s", _summary(run.before))
    for phase in phases:
        if run.step < phase.end:
            run.train_phase(phase, urls[phase.subset], heldout)
    after = evaluate(run.model, heldout, config, run.device)
    log.info("held-out after %d steps: %s", run.step, _summary(after))
    if resumed_from is None or run.step > resumed_from:
        run.heldout_rows += _heldout_rows(run.step, after)
    run.save()
    save_model(out / MODEL_NAME, run.model, OP_NAMES, to_dict(config))
    metrics = {
        "device": str(run.device),
        "steps": run.step,
        "resumed_from": resumed_from,
        "seconds_per_step": run.train_seconds / run.steps_run if run.steps_run else None,
        "heldout": {s: {"before": run.before[s], "after": after[s]} for s in after},
    }
    write_file(str(out / METRICS_NAME), dumps_json(metrics))
    return TrainResult(out=out, steps=run.step, metrics=metrics)


class _Run:
    """The state of one training run: model, optimizer, step, data position, logs."""

    def __init__(self, out: Path, config: TrainConfig, device: torch.device, fingerprint: str) -> None:
        self.out, self.config, self.device, self.fingerprint = out, config, device, fingerprint
        torch.manual_seed(derive_seed(config.seed, "init"))
        self.model = OpExtractor(len(OP_NAMES), config.width).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.position: tuple[str, StreamPosition] | None = None
        self.before: dict = {}
        self.train_rows: list[dict] = []
        self.heldout_rows: list[dict] = []
        self.train_seconds, self.steps_run = 0.0, 0

    def restore(self) -> None:
        state = load_checkpoint(self.out / CHECKPOINT_NAME, self.model, self.optimizer)
        self.step, self.before = state["step"], state["heldout_before"]
        self.position = (state["subset"], StreamPosition.from_dict(state["position"]))
        self.train_rows, self.heldout_rows = state["train_log"], state["heldout_log"]

    def save(self) -> None:
        subset, position = self.position or ("", StreamPosition())
        state = {
            "step": self.step,
            "subset": subset,
            "position": position.to_dict(),
            "heldout_before": self.before,
            "config": to_dict(self.config),
            "dataset": self.fingerprint,
            "train_log": self.train_rows,
            "heldout_log": self.heldout_rows,
        }
        save_checkpoint(self.out / CHECKPOINT_NAME, self.model, self.optimizer, state)
        _write_csv(self.out / TRAIN_LOG_NAME, TRAIN_LOG_FIELDS, self.train_rows)
        _write_csv(self.out / HELDOUT_LOG_NAME, HELDOUT_LOG_FIELDS, self.heldout_rows)

    def train_phase(self, phase: Phase, urls: list[str], heldout: dict[str, dict]) -> None:
        """Steps up to ``phase.end`` on ``phase.subset``, continuing its stream where it stopped."""
        config = self.config
        start = self.position[1] if self.position and self.position[0] == phase.subset else StreamPosition()
        tracker = PositionTracker(start, max(1, config.num_workers))
        log.info("training on %r for steps [%d, %d)", phase.subset, self.step, phase.end)
        sums, logged_at, window = dict.fromkeys(("loss", "image", "op", "strength"), 0.0), self.step, 0.0
        batches = iter(training_loader(urls, phase.subset, config, start))
        while self.step < phase.end:
            tick = time.perf_counter()
            raw = next(batches, None)
            if raw is None:
                raise ValueError(f"subset {phase.subset!r} yields no training quadruple (all edits held out?)")
            terms = self._update(raw)
            tracker.consumed(raw)
            self.position = (phase.subset, tracker.position())
            for key in sums:
                sums[key] += float(terms[key].detach().mean())
            window += time.perf_counter() - tick
            if self.step % config.log_every == 0 or self.step == phase.end:
                done = self.step - logged_at
                self.train_seconds, self.steps_run = self.train_seconds + window, self.steps_run + done
                row = {"step": self.step, "subset": phase.subset, "lr": self._lr(self.step - 1)}
                self.train_rows.append(row | {k: v / done for k, v in sums.items()} | {"seconds_per_step": window / done})
                log.info("step %d %s: loss %.4f (%.3f s/step)", self.step, phase.subset, sums["loss"] / done, window / done)
                sums, logged_at, window = dict.fromkeys(sums, 0.0), self.step, 0.0
            if config.eval_every and self.step % config.eval_every == 0 and self.step < config.steps:
                self.heldout_rows += _heldout_rows(self.step, evaluate(self.model, heldout, config, self.device))
            if self.step % config.checkpoint_every == 0 and self.step < config.steps:
                self.save()

    def _lr(self, step: int) -> float:
        """Linear warm-up over ``warmup_steps``, then constant (no dependence on ``steps``)."""
        warmup = self.config.warmup_steps
        return self.config.lr * min(1.0, (step + 1) / warmup) if warmup else self.config.lr

    def _update(self, raw: dict) -> dict[str, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(self.step)
        terms = quad_losses(self.model, to_device(raw, self.device), self.config)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].mean().backward()
        self.optimizer.step()
        self.step += 1
        return terms


def _shard_urls(root: Path) -> dict[str, list[str]]:
    """Absolute shard paths per present subset (curriculum order)."""
    urls = {}
    for subset in SUBSETS:
        shards = read_shard_index(root, subset)
        if shards:
            urls[subset] = [str((root / s.url).resolve()) for s in shards]
    return urls


def _fingerprint(root: Path, subsets: list[str]) -> str:
    """sha256 over the (url, sha256, nsamples) of every indexed shard trained on."""
    listing = {s: [[x.url, x.sha256, x.nsamples] for x in read_shard_index(root, s) or ()] for s in subsets}
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()


def _stale_reason(state: dict[str, Any], config: TrainConfig, fingerprint: str) -> str | None:
    """Why a checkpoint with ``state`` cannot be continued by a run of ``config`` on the shards
    with ``fingerprint``; None if it can."""
    saved, now = state["config"], to_dict(config)
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        return f"trained with other settings of {changed}"
    if state["dataset"] != fingerprint:
        return "trained on other shards (the shard indexes changed)"
    if state["step"] > config.steps:
        return f"at step {state['step']}, beyond train.steps = {config.steps}"
    return None


def _heldout_rows(step: int, results: dict) -> list[dict]:
    return [{"step": step, "subset": subset, **values} for subset, values in results.items()]


def _summary(results: dict) -> str:
    return "; ".join(
        f"{s}: loss {r['loss']:.4f} (image {r['image']:.4f} vs identity {r['image_identity']:.4f}, "
        f"op {r['op']:.4f}, strength {r['strength']:.4f}) on {r['quads']} quads"
        for s, r in results.items()
    )


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_file(str(path), buffer.getvalue().encode("utf-8"))
