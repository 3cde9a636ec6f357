"""Fixtures for the cluster tests: the repo's cluster/ folder and one real Ray head per module."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

from tests.cluster.ray_head import RayHead, ray_head

CLUSTER_DIR = Path(__file__).resolve().parents[2] / "cluster"
RUN_STAGE = CLUSTER_DIR / "run_stage.py"


@functools.cache
def load_run_stage() -> ModuleType:
    """cluster/run_stage.py as a module (cluster/ is a folder of files, not a package)."""
    spec = importlib.util.spec_from_file_location("run_stage", RUN_STAGE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_stage"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def head() -> Iterator[RayHead]:
    with ray_head() as started:
        yield started
