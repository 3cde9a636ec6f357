"""Fixtures of the training tests: a small real dataset built once per session.

``sample_build``: the built-in sample photos, 4 views per edit, 1 edit per face, pairs at
most 384 px, 2 photos per shard (training_fixtures.SAMPLE_SETTINGS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from training_fixtures import SAMPLE_SETTINGS, holdout_fraction, verified_copy

from pipeline.build import build
from pipeline.config import MirrorsetConfig, with_overrides


@pytest.fixture(autouse=True)
def _offline(offline: object) -> None:
    """Training runs with every connection off this machine refused (tests/conftest.py)."""


@pytest.fixture
def opencv_one_thread() -> Iterator[None]:
    """OpenCV on one thread, as train() runs it around its forked DataLoader workers."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(previous)


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's small sample build (read-only for tests: copy before changing it)."""
    out = tmp_path_factory.mktemp("train-sample") / "dataset"
    build("sample", str(out), with_overrides(MirrorsetConfig(), SAMPLE_SETTINGS), progress=False)
    return out


@pytest.fixture
def dataset(sample_build: Path, tmp_path: Path) -> Path:
    """A private verified copy of the sample build's shards."""
    return verified_copy(sample_build, tmp_path / "dataset")


@pytest.fixture(scope="session")
def holdout(sample_build: Path) -> float:
    """A holdout_fraction that holds out two of the sample build's edits."""
    return holdout_fraction(sample_build, 2)
