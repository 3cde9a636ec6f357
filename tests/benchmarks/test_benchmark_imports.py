"""Every benchmark's imports resolve, including those inside functions.

Benchmarks import the pipeline lazily (inside their functions, so `mirrorset --help` stays
fast), and they are too slow for the test suite: a renamed function would otherwise break a
benchmark silently until someone runs it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = sorted(p for p in (Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.stem)
def test_every_import_of_the_benchmark_resolves(path: Path) -> None:
    missing = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            module = importlib.import_module(node.module)
            missing += [f"{node.module}.{a.name}" for a in node.names if not _importable(module, a.name)]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
    assert not missing, f"{path.name} imports names that do not exist: {missing}"


def _importable(module: object, name: str) -> bool:
    """``from module import name`` works: an attribute, or a submodule of a package."""
    if hasattr(module, name):
        return True
    return hasattr(module, "__path__") and importlib.util.find_spec(f"{module.__name__}.{name}") is not None


def test_every_benchmark_is_a_cli_command() -> None:
    from pipeline.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    benchmarks = next(a for a in commands.choices["bench"]._actions if a.dest == "benchmark")  # noqa: SLF001
    assert {p.stem for p in BENCHMARKS} <= set(benchmarks.choices)
