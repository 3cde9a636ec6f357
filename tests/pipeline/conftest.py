"""Detections of real photos, made once per session for the recipe, plan and shard tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.records import PortraitDetections
from pipeline.imageio import load_image
from pipeline.sample_corpus import sample_paths

SAMPLES = {photo.name: photo.path for photo in sample_paths()}


@pytest.fixture(scope="session")
def detected() -> dict[str, tuple]:
    """name -> (RGB photo, PortraitDetections, source id) for astronaut, zidane and bus.jpg."""
    from detectors.runtime import load_portrait_detector
    from pipeline.config import MirrorsetConfig
    from pipeline.imageio import content_id

    config = MirrorsetConfig()
    detector = load_portrait_detector(config.detector, config.gates)
    try:
        found = {}
        for name in ("astronaut", "zidane", "bus"):
            photo = load_image(SAMPLES[name])
            found[name] = (photo, detector.detect(photo), content_id(Path(SAMPLES[name]).read_bytes()))
        return found
    finally:
        detector.close()


def roundtrip(detections: PortraitDetections) -> PortraitDetections:
    """The detections as a worker reads them back from Parquet."""
    return PortraitDetections.from_row(detections.to_row())
