"""``mirrorset train`` (registered by pipeline.cli through :func:`register`)."""

from __future__ import annotations

import argparse
import logging
import sys

TRAIN_HELP = """\
Train the retouching-operation extractor on a verified dataset. Refuses to start (exit 3)
unless the verify report exists, passed in full mode and still matches the shard indexes
and the tars on disk. Settings come from the train: section of params.yaml (or --config);
--set train.KEY=VALUE overrides one. Writes checkpoints/last.safetensors, model.safetensors,
train_log.csv, heldout_log.csv and metrics.json (held-out loss before and after) to --out.
Exit codes: 0 done, 1 training failed, 2 bad arguments, config or --out, 3 refused by the gate.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the train subcommand."""
    train = sub.add_parser("train", help="train the operation extractor on verified shards",
                           description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    train.add_argument("--data", required=True, help="dataset root (the build's --out)")
    train.add_argument("--report", help="verify report (default: DATA/verify.json)")
    train.add_argument("--out", default="out/train", help="where checkpoints, model and metrics go (default: out/train)")
    train.add_argument("--config", help="YAML config file (default: the repository's params.yaml)")
    train.add_argument(
        "--set", action="append", default=[], metavar="train.KEY=VALUE", dest="settings",
        help="override one train setting (YAML syntax), e.g. --set train.steps=20; repeatable",
    )  # fmt: skip
    train.add_argument("--resume", action="store_true",
                       help="continue OUT/checkpoints/last.safetensors if it exists and was made with the same "
                       "settings and shards; start over if it is stale")  # fmt: skip
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.commands import _parse_settings
    from pipeline.configtools import ConfigError
    from pipeline.training.config import load_train_config
    from pipeline.training.gate import GateRefused
    from pipeline.training.loop import train

    logging.basicConfig(level=logging.INFO, format="mirrorset train: %(message)s", stream=sys.stderr)
    report = args.report or str(Path(args.data) / "verify.json")
    try:
        config = load_train_config(args.config, _parse_settings(args.settings))
    except (ConfigError, ValueError) as exc:
        print(f"mirrorset train: {exc}", file=sys.stderr)
        return 2
    try:
        result = train(args.data, report, args.out, config, resume=args.resume)
    except GateRefused as exc:
        listed = "\n".join(f"  - {p}" for p in exc.problems)
        print(
            f"mirrorset train: refusing to start: the shards in {args.data} are not verified:\n{listed}\n"
            f"run `mirrorset verify {args.data}` (full mode) after the build, then train again",
            file=sys.stderr,
        )
        return 3
    except FileExistsError as exc:
        print(f"mirrorset train: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"mirrorset train: {exc}", file=sys.stderr)
        return 1
    for subset, values in result.metrics["heldout"].items():
        print(
            f"{subset}: held-out loss {values['before']['loss']:.4f} before, {values['after']['loss']:.4f} "
            f"after {result.steps} steps ({values['after']['quads']} quadruples)"
        )
    print(f"model: {result.out}/model.safetensors; metrics: {result.out}/metrics.json")
    return 0
