"""CLI commands of the `manifests` package (registered by pipeline.cli):
``mirrorset verify OUT [--json]`` and ``mirrorset stats OUT [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the verify and stats subcommands."""
    verify = sub.add_parser(
        "verify",
        help="re-hash every shard member against the manifests; writes OUT/verify.json, "
        "exits 1 on any problem",
    )
    verify.add_argument("out", help="build output directory")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    verify.set_defaults(handler=_verify)

    stats = sub.add_parser("stats", help="counts per subset, op, strength bucket, format, reject reason")
    stats.add_argument("out", help="build output directory")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(handler=_stats)


def _missing(out: str) -> bool:
    if Path(out).is_dir():
        return False
    print(f"mirrorset: output directory {out} does not exist", file=sys.stderr)
    return True


def _verify(args: argparse.Namespace) -> int:
    from manifests.verify import verify

    if _missing(args.out):
        return 2
    report = verify(args.out)
    if args.json:
        print(json.dumps(report.to_dict(), sort_keys=True))
    else:
        print(f"verify {args.out}: {report.summary()}")
    return 0 if report.ok else 1


def _stats(args: argparse.Namespace) -> int:
    from manifests.stats import format_stats, stats

    if _missing(args.out):
        return 2
    result = stats(args.out)
    print(json.dumps(result) if args.json else format_stats(result))
    return 0
