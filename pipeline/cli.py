"""The `mirrorset` command line: one entry point, subcommands registered by each package.

Each package exposes ``register(subparsers)`` for its commands and
``register_bench(bench_subparsers)`` for its benchmarks; handlers import heavy
libraries lazily so `mirrorset --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = ("warps.cli", "detectors.cli", "pipeline.commands", "manifests.cli", "pipeline.training.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mirrorset",
        description="Build strictly aligned before/after pairs for exemplar-based "
        "structural portrait retouching.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = sub.add_parser("bench", help="run a benchmark; the last line printed is one JSON object")
    bench_sub = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "register"):
            module.register(sub)
        if hasattr(module, "register_bench"):
            module.register_bench(bench_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
