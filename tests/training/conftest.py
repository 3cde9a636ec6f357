"""Fixtures of the training tests: a small real dataset built once per session.

``sample_build``: the built-in sample photos, 4 views per edit, 1 edit per face, pairs at
most 384 px, 2 photos per shard (training_fixtures.SAMPLE_SETTINGS).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from training_fixtures import SAMPLE_SETTINGS, verified_copy

from pipeline.build import build
from pipeline.config import MirrorsetConfig, with_overrides


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's small sample build (read-only for tests: copy before changing it)."""
    out = tmp_path_factory.mktemp("train-sample") / "dataset"
    build("sample", out, with_overrides(MirrorsetConfig(), SAMPLE_SETTINGS), progress=False)
    return out


@pytest.fixture
def dataset(sample_build: Path, tmp_path: Path) -> Path:
    """A private verified copy of the sample build's shards."""
    return verified_copy(sample_build, tmp_path / "dataset")
