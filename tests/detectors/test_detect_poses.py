"""Each person's skeleton is that person's: checked against YOLO, re-run masked, or replaced."""

from __future__ import annotations

import numpy as np

from detectors import reasons
from detectors.evaluation import load_annotations, score_poses
from detectors.skeleton import CHECKED_JOINTS, MEDIAPIPE_FROM_COCO, coco_to_mediapipe, pose_agreement
from pipeline.imageio import load_image

ANNOTATIONS = {a.name: a for a in load_annotations()}


def _joints_ok(name, record):
    score = score_poses(ANNOTATIONS[name], np.array([p.box for p in record.persons]).reshape(-1, 4),
                        [p.pose for p in record.persons])
    return score.joints_ok, score.joints


def test_zidane_each_pose_on_its_own_person(detector):
    record = detector.detect(load_image(ANNOTATIONS["zidane"].file()))
    assert _joints_ok("zidane", record) == (4, 4)
    first, second = record.persons
    assert first.pose_source in ("mediapipe", "yolo") and second.pose_source in ("mediapipe", "yolo")
    # The two skeletons are apart: no person carries the other's shoulders.
    assert np.hypot(*(first.pose[11, :2] - second.pose[11, :2])) > 200


def test_a_pose_on_the_wrong_person_is_flagged_and_replaced(detector, monkeypatch):
    rgb = load_image(ANNOTATIONS["zidane"].file())
    honest = detector.detect(rgb)
    other = honest.persons[1].pose.astype(np.float64)
    # MediaPipe returning the neighbour's skeleton whatever it is asked (the failure of issue 8).
    monkeypatch.setattr(detector.pose, "detect", lambda rgb, roi, painted=None: other.copy())
    record = detector.detect(rgb)
    first = record.persons[0]
    assert first.pose_check == reasons.POSE_DISAGREES and first.pose_source == "yolo"
    assert first.pose_agreement is not None and first.pose_agreement < detector.config.pose_min_agreement
    assert np.allclose(first.pose, coco_to_mediapipe(first.keypoints))
    assert _joints_ok("zidane", record)[0] >= 2  # person 0's own shoulders still right (YOLO's)
    # Its agreement with its own YOLO joints is what exposed it.
    assert pose_agreement(other, first.keypoints, first.box, 0.1).share < 0.5


def test_bus_poses_agree_with_the_annotated_joints(detector):
    record = detector.detect(load_image(ANNOTATIONS["bus"].file()))
    assert _joints_ok("bus", record) == (8, 8)
    for person in record.persons:
        assert (person.pose is None) == (person.pose_source == "none")
        if person.pose_source == "mediapipe":
            assert person.pose_check in (reasons.POSE_AGREES, reasons.POSE_AGREES_MASKED)
            assert person.pose_agreement >= 0.75


def test_coco_keypoints_fill_mediapipe_order():
    keypoints = np.column_stack([np.arange(17) * 10.0, np.arange(17) * 20.0, np.linspace(0.1, 0.9, 17)])
    pose = coco_to_mediapipe(keypoints)
    assert pose.shape == (33, 4)
    for mp_index, coco in MEDIAPIPE_FROM_COCO.items():
        assert pose[mp_index].tolist() == [keypoints[coco, 0], keypoints[coco, 1], 0.0, keypoints[coco, 2]]
    others = sorted(set(range(33)) - set(MEDIAPIPE_FROM_COCO))
    assert len(others) == 16 and np.all(pose[others, 3] == 0)
    assert pose[19, :2].tolist() == keypoints[9, :2].tolist()  # left index finger at the left wrist
    assert {mp for mp, _ in CHECKED_JOINTS} == {11, 12, 13, 14, 23, 24, 25, 26}
