"""Faces over the whole photo, scored against hand annotations (tests/fixtures/detect_annotations.json)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import reasons
from detectors.association import associate, derived_person_box
from detectors.config import DetectorConfig, GateConfig
from detectors.evaluation import load_annotations, score_faces
from detectors.face_detection import suppress, tile_starts
from detectors.portrait import PortraitDetector
from pipeline.imageio import load_image

ANNOTATIONS = {a.name: a for a in load_annotations()}


def _face_score(annotation, record):
    return score_faces(
        annotation,
        np.array([f.box for f in record.faces]).reshape(-1, 4),
        np.array([f.landmarks[1, :2] for f in record.faces]).reshape(-1, 2),
    )


@pytest.mark.parametrize("name", ["t1", "bus", "zidane"])
def test_every_face_of_the_group_photos_is_found(detector, name):
    annotation = ANNOTATIONS[name]
    record = detector.detect(load_image(annotation.file()))
    score = _face_score(annotation, record)
    required = sum(f.required for f in annotation.faces)
    assert (score.true_positives, score.false_negatives, score.false_positives) == (required, 0, 0)
    # One face per person, each inside its person's box.
    assert len({f.person_index for f in record.faces}) == len(record.faces)
    for face in record.faces:
        box = record.persons[face.person_index].box
        assert box[0] <= face.landmarks[1, 0] <= box[2] and box[1] <= face.landmarks[1, 1] <= box[3]


@pytest.mark.parametrize("name", ["mask_black", "mask_blue", "mask_green", "mask_white"])
def test_no_face_in_photos_of_masks(detector, name):
    record = detector.detect(load_image(ANNOTATIONS[name].file()))
    assert record.faces == () and record.reject_reason() == reasons.NO_PERSON


def test_a_profile_face_is_dropped_with_its_reason(detector):
    record = detector.detect(load_image(ANNOTATIONS["zidane"].file()))
    profile = next(f for f in ANNOTATIONS["zidane"].faces if not f.required).nose
    dropped = [d for d in record.dropped_faces if d.box[0] <= profile[0] <= d.box[2] and d.box[1] <= profile[1] <= d.box[3]]
    assert [d.reason for d in dropped] == [reasons.NO_MESH]


def test_faces_whose_persons_yolo_misses_are_kept_with_derived_persons(no_network, group):
    # A person threshold YOLO's scores never reach: YOLO misses every body, the faces stay.
    with PortraitDetector(DetectorConfig(score_threshold=0.999), GateConfig()) as blind:
        record = blind.detect(group)
    score = _face_score(ANNOTATIONS["t1"], record)
    assert (score.true_positives, score.false_positives) == (6, 0)
    assert [p.origin for p in record.persons] == ["face"] * 6
    for face in record.faces:
        person = record.persons[face.person_index]
        assert np.all(person.box[:2] <= face.box[:2]) and np.all(face.box[2:] <= person.box[2:])
        assert person.pose_source == "none" and person.pose_check == reasons.POSE_FACE_ONLY
        assert np.all(person.keypoints == 0) and len(person.outline) >= 3
    assert record.reject_reason() is None and len(record.usable_faces()) >= 3


def test_a_face_in_a_neighbours_box_goes_to_its_own_head():
    # Person 0's big box holds both faces; its YOLO head keypoints sit on face 0 only.
    keypoints = np.zeros((2, 17, 3))
    keypoints[0, :3] = [[100, 100, 0.9], [95, 95, 0.9], [105, 95, 0.9]]
    keypoints[1, :3] = [[300, 120, 0.9], [295, 115, 0.9], [305, 115, 0.9]]
    noses = np.array([[101.0, 101.0], [301.0, 121.0]])
    face_boxes = np.array([[80.0, 80, 120, 125], [280, 100, 320, 145]])
    people = np.array([[0.0, 0, 400, 600], [250, 60, 360, 600]])
    assert associate(noses, face_boxes, people, keypoints) == [0, 1]
    # Without person 1, face 1 is too far from person 0's head to be its face.
    assert associate(noses, face_boxes, people[:1], keypoints[:1]) == [0, None]


def test_derived_person_box_hangs_below_the_face_inside_the_image():
    box = derived_person_box(np.array([100.0, 50, 140, 100]), (300, 200))
    assert box.tolist() == [50.0, 20.0, 190.0, 199.5]


def test_tiles_cover_with_overlap_and_nms_keeps_the_best():
    starts = tile_starts(1024, 512, 160)
    assert starts[0] == 0 and starts[-1] == 512 and all(b - a <= 512 - 160 for a, b in zip(starts, starts[1:]))
    assert tile_starts(400, 512, 160) == [0]
    boxes = [np.array([0.0, 0, 10, 10]), np.array([1.0, 1, 11, 11]), np.array([2.0, 2, 6, 6]), np.array([50.0, 50, 60, 60])]
    assert suppress(boxes, [0.7, 0.9, 0.8, 0.6], 0.3) == [1, 3]  # 0 overlaps 1; 2 lies inside 1
