"""Fixtures of the warps tests: every usable face of the sample corpus, planned the way the
build plans it (base frame, FFHQ-aligned 1024^2 crop frame; pipeline.synthesis), from
tests/fixtures/landmarks_faces.json (made by tests/fixtures/make_landmarks.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.alignment import FaceAlignment, align_face
from pipeline.imageio import load_image
from pipeline.sample_corpus import sample_paths
from pipeline.framing import photo_frame as base_frame
from tests.conftest import FIXTURES
from warps.catalog import OpCall
from warps.chain import ChainPlan, WarpSettings, plan_chain
from warps.field import WarpField
from warps.landmarks import Landmarks

CROP_SIZE = 1024


@dataclass(frozen=True, eq=False)
class SampleFace:
    """One usable sample face: ``base`` image (the photo scaled as the build scales it),
    its crop-frame ``alignment`` and ``landmarks`` in the crop frame."""

    name: str
    base: np.ndarray
    alignment: FaceAlignment
    landmarks: Landmarks

    def plan(self, calls: list[OpCall], settings: WarpSettings = WarpSettings()) -> tuple[ChainPlan, WarpField]:
        """The chain planned in the crop frame and its field pasted into the base frame."""
        plan = plan_chain((CROP_SIZE, CROP_SIZE), self.landmarks, calls, settings=settings, window=True)
        return plan, plan.field.reframe(self.alignment.matrix, self.base.shape[:2])


@pytest.fixture(scope="session")
def sample_faces() -> list[SampleFace]:
    """All usable faces of the sample corpus (6 faces on 4 photos)."""
    record = json.loads((FIXTURES / "landmarks_faces.json").read_text())
    paths = {Path(p.path).name: p.path for p in sample_paths()}
    photos: dict[str, np.ndarray] = {}
    faces = []
    for entry in record["faces"]:
        photo = photos.setdefault(entry["image"], load_image(paths[entry["image"]]))
        assert [photo.shape[1], photo.shape[0]] == entry["image_size"]
        base = base_frame(photo, CROP_SIZE)
        points = base.from_photo(np.array(entry["face"]))
        alignment = align_face(points, CROP_SIZE)
        name = f"{entry['image']}#{entry['face_index']}"
        faces.append(SampleFace(name, base.image, alignment, Landmarks(face=alignment.to_crop(points))))
    return faces
