"""CLI commands of the `warps` package (registered by pipeline.cli)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands."""
