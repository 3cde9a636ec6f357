"""Simulated synthesis on a real portrait: alignment, determinism, exact reproducibility, rejects."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from detectors.records import PortraitDetections
from pipeline.alignment import align_face
from pipeline.config import MirrorsetConfig, OutputConfig, SimulatedConfig
from pipeline.imageio import load_image
from pipeline.synthesis import base_frame, make_edit, synthesize_source
from warps.augment import SpatialTransform, apply_image, transform_points
from warps.chain import OpCall
from warps.landmarks import Landmarks

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "landmarks_astronaut.json"
CONFIG = MirrorsetConfig(simulated=SimulatedConfig(views=3, edits_per_face=1), output=OutputConfig(image_format="png"))


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, PortraitDetections]:
    from detectors.portrait import PortraitDetector

    photo = load_image(ASTRONAUT)
    with PortraitDetector() as detector:
        return photo, detector.detect(photo)


def test_ffhq_alignment_levels_and_centres_the_eyes() -> None:
    face = np.array(json.loads(FIXTURE.read_text())["face"])
    alignment = align_face(face, 1024)
    crop = alignment.to_crop(face)
    right_eye = crop[[33, 133, 159, 145]].mean(axis=0)
    left_eye = crop[[263, 362, 386, 374]].mean(axis=0)
    assert abs(right_eye[1] - left_eye[1]) < 6.0  # eyes level (FFHQ tilts by the mouth too)
    assert right_eye[0] < 511.5 < left_eye[0]
    assert abs((right_eye[0] + left_eye[0]) / 2 - 511.5) < 10
    assert 150 < left_eye[0] - right_eye[0] < 400
    np.testing.assert_allclose(transform_points(alignment.inverse, crop), face, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        align_face(np.zeros((478, 2)), 1024)


def test_pairs_are_deterministic_and_rows_match_members(astronaut: tuple) -> None:
    photo, detections = astronaut
    kwargs = dict(source_id="88431cd9653ccd53", path=str(ASTRONAUT), shard="simulated-000000", config=CONFIG)
    first = synthesize_source(photo, detections, **kwargs)
    second = synthesize_source(photo, detections, **kwargs)
    assert len(first.samples) == 3 and not first.rejects
    assert first.samples == second.samples and first.rows == second.rows
    keys = [s["__key__"] for s in first.samples]
    assert keys == sorted(keys) == [r["key"] for r in first.rows]
    for sample, row in zip(first.samples, first.rows):
        assert row["sha256_before"] == hashlib.sha256(sample["before.png"]).hexdigest()
        assert row["sha256_json"] == hashlib.sha256(sample["json"]).hexdigest()
    other = synthesize_source(photo, detections, **{**kwargs, "config": dataclasses.replace(CONFIG, seed=1)})
    assert other.samples[0]["after.png"] != first.samples[0]["after.png"]


def test_record_reproduces_the_pair_exactly(astronaut: tuple) -> None:
    photo, detections = astronaut
    output = synthesize_source(photo, detections, source_id="88431cd9653ccd53", path="p", shard="s", config=CONFIG)
    sample = output.samples[1]
    record = json.loads(sample["json"])
    base = base_frame(photo, CONFIG.simulated.base_long_side)
    alignment = align_face(base.from_photo(detections.faces[0].landmarks[:, :2]), CONFIG.simulated.crop_size)
    np.testing.assert_allclose(alignment.matrix, record["crop"]["matrix"], atol=1e-8)
    landmarks = Landmarks(face=alignment.to_crop(base.from_photo(detections.faces[0].landmarks[:, :2])))
    calls = [OpCall(op["name"], op["requested_strength"]) for op in record["ops"]]
    edit = make_edit(base.image, alignment, landmarks, calls, CONFIG)
    view = SpatialTransform.from_record(record["aug"])
    decode = lambda data: cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)  # noqa: E731
    np.testing.assert_array_equal(decode(sample["before.png"]), apply_image(view, base.image))
    np.testing.assert_array_equal(decode(sample["after.png"]), apply_image(view, edit.after))
    # The edit moved pixels, and only near the face: outside the field's box the images agree.
    x0, y0, x1, y1 = edit.field.roi
    outside = np.ones(base.image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(edit.after[outside], base.image[outside])
    assert np.abs(edit.after.astype(int) - base.image).max() > 20


def test_an_unusable_face_becomes_a_reject_row(astronaut: tuple) -> None:
    photo, detections = astronaut
    row = detections.to_row()
    row["faces"][0]["landmarks"] = [0.0] * len(row["faces"][0]["landmarks"])
    broken = PortraitDetections.from_row(row)
    output = synthesize_source(photo, broken, source_id="88431cd9653ccd53", path="p.png", shard="s", config=CONFIG)
    assert output.samples == [] and output.rows == []
    assert [(r["stage"], r["reason"], r["path"]) for r in output.rejects] == [("synthesis", "degenerate_face", "p.png")]
