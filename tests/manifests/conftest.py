"""Fixtures of the manifests tests; builders live in manifests_builders.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from manifests_builders import write_build


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture
def build(tmp_path: Path, astronaut: np.ndarray) -> tuple[Path, list[dict]]:
    out = tmp_path / "out"
    return out, write_build(out, astronaut)
