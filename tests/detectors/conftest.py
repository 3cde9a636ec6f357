"""Shared fixtures: real photos from installed packages and one detector loaded per session, offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from detectors.config import DetectorConfig, GateConfig
from detectors.portrait import PortraitDetector
from detectors.records import PortraitDetections
from pipeline.imageio import load_image


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, package
    return Path(spec.origin).parent / relative


ASTRONAUT = package_file("skimage", "data/astronaut.png")
GROUP = package_file("insightface", "data/images/t1.jpg")
COFFEE = package_file("skimage", "data/coffee.png")


@pytest.fixture(scope="session")
def no_network(offline: object) -> None:
    """Models load and run with every connection off this machine refused (tests/conftest.py)."""


@pytest.fixture(scope="session")
def detector(no_network) -> PortraitDetector:
    """Default models, people policy "each" so every person's face and pose are kept."""
    with PortraitDetector(DetectorConfig(), GateConfig(people_policy="each")) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return ASTRONAUT


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return load_image(ASTRONAUT)


@pytest.fixture(scope="session")
def group() -> np.ndarray:
    return load_image(GROUP)


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    return load_image(COFFEE)


@pytest.fixture(scope="session")
def astronaut_det(detector: PortraitDetector, astronaut: np.ndarray) -> PortraitDetections:
    return detector.detect(astronaut)


@pytest.fixture(scope="session")
def group_det(detector: PortraitDetector, group: np.ndarray) -> PortraitDetections:
    return detector.detect(group)


@pytest.fixture(scope="session")
def coffee_det(detector: PortraitDetector, coffee: np.ndarray) -> PortraitDetections:
    return detector.detect(coffee)
