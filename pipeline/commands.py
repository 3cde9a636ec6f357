"""CLI commands of the build job (registered by pipeline.cli): build, regenerate, bench pipeline."""

from __future__ import annotations

import argparse
import sys

BUILD_HELP = """\
Build the dataset: ingest photos, detect faces (models loaded once per worker), synthesize
self-augmented before/after pairs, write WebDataset shards and Parquet manifests.
Rerunning the same command into the same --out resumes: finished shards are kept, the
rest is rebuilt with the same bytes. A different config or source for an existing --out
is refused. Settings come from params.yaml (or --config); the flags below override them.
"""

REGENERATE_HELP = """\
Delete and rebuild shards of a finished build from its manifests and recorded config
(OUT/config.json); the result is byte-identical to the original shards.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add build / regenerate subcommands."""
    build = sub.add_parser("build", help="build a dataset from photos", description=BUILD_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    build.add_argument("--source",
                       help="a folder of photos (local or s3://...), a .parquet/.csv list with a 'path' column, or "
                       "'sample' (the built-in corpus of photos shipped by installed packages); default: the one "
                       "recorded in OUT")  # fmt: skip
    build.add_argument("--out", required=True, help="dataset root: a folder or an s3:// / gs:// URI (reused to resume)")
    build.add_argument("--subset", default="simulated", choices=["simulated", "professional", "all"],
                       help="which subset to build (default simulated; all = both, into one root)")  # fmt: skip
    build.add_argument("--stage", default="all", choices=["ingest", "detect", "shards", "all"],
                       help="run one step only (as the DVC stages do); default all")  # fmt: skip
    build.add_argument("--replace", action="store_true",
                       help="if OUT holds outputs of the chosen steps made with another config or source, delete "
                       "them (and what depends on them) and rebuild; other subsets are kept")  # fmt: skip
    build.add_argument("--allow-version-change", action="store_true",
                       help="continue a build made with other library versions or model files (config.json "
                       "'stack'); by default that is refused")  # fmt: skip
    build.add_argument("--retry-rejects", action="store_true",
                       help="try again the photos and edits an earlier run rejected as internal_error or timeout")
    build.add_argument("--config", help="YAML config file (default: the repository's params.yaml)")
    _cluster_flags(build)
    build.add_argument("--limit", type=int, help="use only the first N source paths (sorted)")
    build.add_argument("--seed", type=int, help="global seed every random choice derives from")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
        help="override one config value (YAML syntax), e.g. --set simulated.edits_per_face=4 "
        "--set gates.people_policy=each; repeatable",
    )  # fmt: skip
    build.set_defaults(handler=_build)

    regen = sub.add_parser("regenerate", help="rebuild shards of a finished build, byte-identically",
                           description=REGENERATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    regen.add_argument("--out", required=True, help="the build's output folder")
    regen.add_argument("--subset", default="simulated", choices=["simulated", "professional"], help="subset to regenerate")
    regen.add_argument("--shards", help="comma-separated shard indices or names (default: all)")
    _cluster_flags(regen)
    regen.add_argument("--quiet", action="store_true", help="no progress bars")
    regen.set_defaults(handler=_regenerate)


def register_bench(bench_sub: argparse._SubParsersAction) -> None:
    """Add the `pipeline`, `fidelity`, `compositing`, `plan` and `framing` benchmarks."""
    from benchmarks import compositing, fidelity, framing, pipeline, plan

    for name, module, text in (
        ("pipeline", pipeline, "build throughput vs the irreducible floor, scaling, memory"),
        ("fidelity", fidelity, "per-pair QA cost vs making a pair; --identity: identity_sim levels"),
        ("compositing", compositing, "composed multi-op edits vs the reference's difference-mask compositing"),
        ("plan", plan, "shard layout at reference scale: shards, samples per shard, photos per 10k samples"),
        ("framing", framing, "face size and edit size in the simulated pairs, whole-photo vs face-centred framing"),
    ):
        bench = bench_sub.add_parser(name, help=text)
        module.add_arguments(bench)
        bench.set_defaults(handler=module.run)


def _cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int,
                        help="parallel workers (1 runs in-process; more, or --address, use Ray)")  # fmt: skip
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a private local Ray)")


def _parse_settings(settings: list[str]) -> dict[str, object]:
    """``["a.b=3", "c=x"]`` -> ``{"a.b": 3, "c": "x"}`` (values parsed as YAML scalars)."""
    import yaml

    parsed = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def _build(args: argparse.Namespace) -> int:
    from manifests.lock import LockHeld, LockLost
    from pipeline.backends import WorkersUnavailable
    from pipeline.build import ConfigMismatch, build
    from pipeline.config import load_config, with_overrides
    from pipeline.tasks import TasksFailed

    subsets = ["simulated", "professional"] if args.subset == "all" else [args.subset]
    try:
        config = with_overrides(
            load_config(args.config),
            {**_parse_settings(args.settings), "seed": args.seed, "limit": args.limit,
             "cluster.num_workers": args.workers, "cluster.address": args.address},
        )  # fmt: skip
        report = build(args.source, args.out, config, subsets=subsets, stage=args.stage, replace=args.replace,
                       allow_version_change=args.allow_version_change, retry_rejects=args.retry_rejects,
                       progress=not args.quiet)  # fmt: skip
    except (ConfigMismatch, FileNotFoundError, ValueError, LockHeld) as exc:
        print(f"mirrorset build: {exc}", file=sys.stderr)
        return 2
    except (TasksFailed, WorkersUnavailable, LockLost) as exc:
        print(f"mirrorset build: {exc}", file=sys.stderr)
        return 1
    lines = [f"{report.sources} source paths, {report.accepted} accepted, {report.detected} detected"]
    for s in report.subsets:
        lines.append(
            f"{s.subset}: {s.pairs} pairs of {s.planned} planned in {s.shards} shard(s) "
            f"({s.shards_skipped} already done); {s.rejects} synthesis reject rows"
        )
    if report.subsets:
        lines += [
            f"dataset: {report.out}",
            "open it with pandas:",
            "  import pandas as pd",
            f"  pairs = pd.read_parquet('{report.out}/manifests/pairs')",
            f"  rejects = pd.read_parquet('{report.out}/manifests/rejects')",
            f"shards: {report.out}/shards/<subset>/*.tar (webdataset; index.json beside them); "
            f"check with: mirrorset verify {report.out}",
        ]
    print("\n".join(lines))
    return 0


def _regenerate(args: argparse.Namespace) -> int:
    from manifests.lock import LockHeld, LockLost
    from manifests.schema import parse_shard_name
    from pipeline.backends import WorkersUnavailable
    from pipeline.build import regenerate
    from pipeline.config import ClusterConfig
    from pipeline.tasks import TasksFailed

    shards = None
    if args.shards:
        shards = [
            int(item) if item.strip().isdigit() else parse_shard_name(item.strip())[1]
            for item in args.shards.split(",")
        ]
    workers = args.workers or 1
    try:
        summaries = regenerate(args.out, args.subset, shards, progress=not args.quiet,
                               cluster=ClusterConfig(num_workers=workers, address=args.address))  # fmt: skip
    except (FileNotFoundError, ValueError, LockHeld) as exc:
        print(f"mirrorset regenerate: {exc}", file=sys.stderr)
        return 2
    except (TasksFailed, WorkersUnavailable, LockLost) as exc:
        print(f"mirrorset regenerate: {exc}", file=sys.stderr)
        return 1
    print(f"regenerated {len(summaries)} shard(s), {sum(s.pairs for s in summaries)} pairs in {args.out}")
    return 0
