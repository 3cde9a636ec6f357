"""CLI commands of the build job (registered by pipeline.cli)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add build / regenerate subcommands."""
