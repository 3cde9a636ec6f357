"""Quality gates and head pose on real photos: each gate is configuration with its reason code."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors import reasons
from detectors.config import DetectorConfig, GateConfig
from detectors.headpose import head_pose
from detectors.portrait import PortraitDetector
from pipeline.configtools import ConfigError, from_dict


@pytest.fixture(scope="module")
def redetect(no_network):
    """detect(rgb, gate_config) with the default detector config, models loaded once per gate config."""
    loaded: dict[GateConfig, PortraitDetector] = {}

    def run(rgb: np.ndarray, gate_config: GateConfig):
        if gate_config not in loaded:
            loaded[gate_config] = PortraitDetector(DetectorConfig(), gate_config)
            loaded[gate_config].load()
        return loaded[gate_config].detect(rgb)

    yield run
    for detector in loaded.values():
        detector.close()


def _codes(face) -> dict[str, bool]:
    return {v.code: v.passed for v in face.verdicts}


def test_every_face_gate_is_reported(astronaut_det):
    face = astronaut_det.faces[0]
    assert tuple(v.code for v in face.verdicts) == reasons.FACE_CODES
    assert all(_codes(face).values())
    assert 30 < face.inter_ocular < 60  # the astronaut's pupils are about 40 px apart


def test_small_face_threshold_rejects(redetect, astronaut):
    det = redetect(astronaut, GateConfig(min_inter_ocular_px=100.0))
    assert not _codes(det.faces[0])[reasons.FACE_TOO_SMALL]
    assert det.reject_reason() == reasons.FACE_TOO_SMALL


def test_blurred_photo_is_too_blurry(redetect, astronaut):
    det = redetect(cv2.GaussianBlur(astronaut, (0, 0), 3.0), GateConfig())
    assert det.faces and det.reject_reason() == reasons.TOO_BLURRY
    sharp = redetect(astronaut, GateConfig())
    blur_value = {v.code: v.value for v in det.faces[0].verdicts}[reasons.TOO_BLURRY]
    sharp_value = {v.code: v.value for v in sharp.faces[0].verdicts}[reasons.TOO_BLURRY]
    assert blur_value < sharp_value / 10


def test_face_near_the_border_is_cut(redetect, astronaut):
    # Crop so the face's chin leaves the frame at the bottom edge.
    det = redetect(np.ascontiguousarray(astronaut[:150]), GateConfig())
    assert len(det.faces) == 1
    assert not _codes(det.faces[0])[reasons.FACE_CUT_BY_BORDER]
    assert det.reject_reason() == reasons.FACE_CUT_BY_BORDER


def test_yaw_gate_uses_the_configured_limit(redetect, group):
    strict = redetect(group, GateConfig(people_policy="each", max_abs_yaw_deg=5.0))
    loose = redetect(group, GateConfig(people_policy="each", max_abs_yaw_deg=60.0))
    turned = [i for i, f in enumerate(loose.faces) if abs(f.yaw) > 5.0]
    assert turned
    for i in turned:
        assert not _codes(strict.faces[i])[reasons.HEAD_YAW] and _codes(loose.faces[i])[reasons.HEAD_YAW]


def test_people_policies(redetect, group, group_det):
    rejected = redetect(group, GateConfig(people_policy="reject"))
    assert rejected.reject_reason() == reasons.TOO_MANY_PEOPLE and rejected.usable_faces() == ()
    largest = redetect(group, GateConfig(people_policy="largest", min_inter_ocular_px=0.0, max_abs_yaw_deg=90.0,
                                         max_abs_pitch_deg=90.0))
    assert len(largest.persons) == len(group_det.persons) and len(largest.faces) == len(group_det.faces)
    # Faces are searched over the whole photo under every policy; "largest" uses person 0's only.
    assert [largest.faces[i].person_index for i in largest.usable_faces()] == [0]
    assert [p.pose_check for p in largest.persons[1:]] == [reasons.POSE_NOT_EXAMINED] * (len(largest.persons) - 1)
    assert len(group_det.usable_faces()) >= 2  # "each": several faces pass the default gates


def test_mirrored_faces_have_opposite_yaw_and_roll(detector, group, group_det):
    mirrored = detector.detect(np.ascontiguousarray(group[:, ::-1]))
    width = group.shape[1]
    compared = 0
    for face in group_det.faces:
        centre = (width - 1 - (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2)
        twin = min(mirrored.faces, key=lambda f: np.hypot((f.box[0] + f.box[2]) / 2 - centre[0],
                                                          (f.box[1] + f.box[3]) / 2 - centre[1]))
        if abs(face.yaw) > 10:
            assert np.sign(twin.yaw) == -np.sign(face.yaw)
            assert twin.yaw == pytest.approx(-face.yaw, abs=8)
            compared += 1
    assert compared >= 2


def test_head_pose_of_a_mesh_turned_in_3d(astronaut_det):
    mesh = astronaut_det.faces[0].landmarks.astype(np.float64)
    yaw0, pitch0, roll0 = head_pose(mesh)
    centre = mesh.mean(axis=0)
    angle = np.radians(20)
    about_y = np.array([[np.cos(angle), 0, -np.sin(angle)], [0, 1, 0], [np.sin(angle), 0, np.cos(angle)]])
    yaw, pitch, _ = head_pose((mesh - centre) @ about_y.T + centre)
    assert yaw - yaw0 == pytest.approx(20, abs=2)  # nose turned towards image right: yaw grows


def test_gate_and_detector_configs_come_from_plain_dicts():
    gates = from_dict(GateConfig, {"people_policy": "each", "max_abs_yaw_deg": 25})
    assert gates.people_policy == "each" and gates.max_abs_yaw_deg == 25.0
    detector = from_dict(DetectorConfig, {"detect_long_side": 800, "weights": None})
    assert detector.detect_long_side == 800 and detector.weights is None
    with pytest.raises(ConfigError):
        from_dict(GateConfig, {"people_policy": "everyone"})
    with pytest.raises(ConfigError):
        from_dict(DetectorConfig, {"nms_iou": 1.5})
