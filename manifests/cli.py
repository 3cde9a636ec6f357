"""CLI commands of the `manifests` package (registered by pipeline.cli): ``verify``, ``stats``,
``card``, ``preview`` and the ``bench verify`` benchmark."""

from __future__ import annotations

import argparse
import json
import sys

VERIFY_HELP = """\
Check a dataset root (a folder or an s3:// / gs:// URI): every committed shard is read once,
its tar and every member hashed and compared with the commit marker and the pairs manifest;
keys, pair_ops rows, the plan, the shard index and dataset.json are checked too. Shards are
checked in parallel (Ray workers when --workers > 1). Writes a JSON report (ROOT/verify.json,
or --report PATH for a read-only dataset) and exits 1 on any problem.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the verify, stats, card and preview subcommands."""
    verify = sub.add_parser("verify", help="check every shard and manifest; exits 1 on any problem",
                            description=VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    verify.add_argument("root", help="dataset root: a folder or an s3:// / gs:// URI")
    verify.add_argument("--subset", action="append", choices=["simulated", "professional"],
                        help="check only this subset (repeatable; default: all it holds)")  # fmt: skip
    verify.add_argument("--shards", help="comma-separated shard names (simulated-000003) or indices (with one --subset)")
    mode = verify.add_mutually_exclusive_group()
    mode.add_argument("--sample", type=int, metavar="N", help="fully check N shards chosen deterministically")
    mode.add_argument("--quick", action="store_true", help="sizes, markers and Parquet footers only; no tar is read")
    verify.add_argument("--report", metavar="PATH", help="where to write the JSON report (default ROOT/verify.json)")
    verify.add_argument("--workers", type=int, default=1, help="shards checked in parallel (> 1 uses Ray; default 1)")
    verify.add_argument("--json", action="store_true", help="print the whole report as JSON")
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(handler=_verify)

    stats = sub.add_parser("stats", help="counts per subset, op, group, strength, format, reject reason; QA percentiles")
    stats.add_argument("root", help="dataset root: a folder or URI")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(handler=_stats)

    card = sub.add_parser("card", help="write ROOT/README.md (dataset card), ROOT/plots/*.png and ROOT/croissant.json")
    card.add_argument("root", help="dataset root: a folder or URI")
    card.add_argument("--name", default="mirrorset", help="the dataset's name in the card and croissant.json")
    card.set_defaults(handler=_card)

    preview = sub.add_parser("preview", help="contact sheet PNG: before | after | 4x difference | mask per pair")
    preview.add_argument("root", help="dataset root: a folder or URI")
    preview.add_argument("--n", type=int, default=16, help="pairs to show (default 16)")
    preview.add_argument("--op", help="only pairs whose op chain holds this op")
    preview.add_argument("--subset", choices=["simulated", "professional"], help="only this subset")
    preview.add_argument("--source", help="only pairs of this photo (its source_id)")
    preview.add_argument("--cell", type=int, default=192, help="side of each image cell in pixels (default 192)")
    preview.add_argument("--out", help="PNG path (default ROOT/preview.png)")
    preview.set_defaults(handler=_preview)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    """Add the `verify` benchmark."""
    from benchmarks.verify import add_arguments

    bench = bench_sub.add_parser("verify", help="verify throughput against the disk's sequential read on the same files")
    add_arguments(bench)
    bench.set_defaults(handler=_bench)


def _fail(command: str, exc: Exception) -> int:
    print(f"mirrorset {command}: {exc}", file=sys.stderr)
    return 2


def _verify(args: argparse.Namespace) -> int:
    from manifests.verify import verify

    try:
        report = verify(
            args.root, subsets=args.subset, shards=args.shards.split(",") if args.shards else None,
            sample=args.sample, quick=args.quick, report_path=args.report, workers=args.workers,
            progress=not args.quiet,
        )  # fmt: skip
    except (FileNotFoundError, ValueError, PermissionError, OSError) as exc:
        return _fail("verify", exc)
    print(json.dumps(report.to_dict(), sort_keys=True) if args.json else report.summary())
    return 0 if report.ok else 1


def _stats(args: argparse.Namespace) -> int:
    from manifests.stats import format_stats, stats

    try:
        result = stats(args.root)
    except (FileNotFoundError, ValueError) as exc:
        return _fail("stats", exc)
    print(json.dumps(result, sort_keys=True) if args.json else format_stats(result))
    return 0


def _card(args: argparse.Namespace) -> int:
    from manifests.card import write_card
    from manifests.croissant import write_croissant
    from manifests.storage import Store

    try:
        store = Store(args.root)
        written = write_card(store, name=args.name)
        write_croissant(store, name=args.name)
    except (FileNotFoundError, ValueError) as exc:
        return _fail("card", exc)
    print("\n".join(store.uri(rel) for rel in [*written, "croissant.json"]))
    return 0


def _preview(args: argparse.Namespace) -> int:
    from manifests.preview import write_preview

    try:
        print(write_preview(args.root, args.out, n=args.n, op=args.op, subset=args.subset, cell=args.cell,
                            source=args.source))
    except (FileNotFoundError, ValueError) as exc:
        return _fail("preview", exc)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from benchmarks.verify import run

    return run(args)
