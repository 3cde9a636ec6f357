"""PortraitDetector on real photos: persons, 478-point faces, poses, association, input conversions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from detectors import reasons
from detectors.config import DetectorConfig, GateConfig
from detectors.modelfiles import embedded_yolo_weights
from manifests.digests import file_sha256
from detectors.portrait import PortraitDetector
from pipeline.imageio import decode_image

# Hand-annotated on skimage's astronaut.png (pixel centres at integers), +-1 px.
ASTRONAUT_PUPILS = np.array([[205.0, 100.0], [245.0, 103.0]])  # image-left eye, image-right eye
ASTRONAUT_NOSE_TIP = np.array([224.0, 127.0])
ASTRONAUT_MOUTH_CORNERS = np.array([[203.0, 140.0], [244.0, 141.0]])
TOLERANCE_PX = 5.0
# Mesh indices: iris centres, nose tip, mouth corners.
IRISES, NOSE_TIP, MOUTH_CORNERS = [468, 473], 1, [61, 291]


def _mesh_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(*(a[:, :2] - b[:, :2]).T)


def test_astronaut_one_person_one_face_where_features_are(astronaut_det):
    assert len(astronaut_det.persons) == 1
    assert len(astronaut_det.faces) == 1 and len(astronaut_det.poses) == 1
    face = astronaut_det.faces[0]
    assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
    assert face.person_index == 0 and face.score > 0.5
    assert np.all(np.hypot(*(face.landmarks[IRISES, :2] - ASTRONAUT_PUPILS).T) < TOLERANCE_PX)
    assert np.hypot(*(face.landmarks[NOSE_TIP, :2] - ASTRONAUT_NOSE_TIP)) < TOLERANCE_PX
    assert np.all(np.hypot(*(face.landmarks[MOUTH_CORNERS, :2] - ASTRONAUT_MOUTH_CORNERS).T) < TOLERANCE_PX)
    box = astronaut_det.persons[0].box
    assert box[0] <= face.box[0] and box[1] <= face.box[1] and face.box[2] <= box[2] and face.box[3] <= box[3]
    assert astronaut_det.usable_faces() == (0,) and astronaut_det.reject_reason() is None
    assert abs(face.yaw) < 10 and abs(face.roll) < 10


def test_astronaut_pose_has_33_points_on_the_body(astronaut_det):
    pose = astronaut_det.poses[0]
    assert pose.landmarks.shape == (33, 4) and pose.person_index == 0
    nose = pose.landmarks[0]
    assert nose[3] > 0.5 and np.hypot(*(nose[:2] - ASTRONAUT_NOSE_TIP)) < 15
    shoulders = pose.landmarks[[11, 12]]
    assert np.all(shoulders[:, 1] > ASTRONAUT_MOUTH_CORNERS[:, 1].max())  # below the mouth


def test_group_photo_faces_inside_their_person_boxes(group_det):
    assert len(group_det.persons) >= 5
    assert len(group_det.faces) >= 5
    assert len({f.person_index for f in group_det.faces}) == len(group_det.faces)
    for face in group_det.faces:
        box = group_det.persons[face.person_index].box
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        assert box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
    areas = [p.area for p in group_det.persons]
    assert areas == sorted(areas, reverse=True)


def test_no_person_photo_is_rejected_with_reason(coffee_det):
    assert coffee_det.persons == () and coffee_det.faces == () and coffee_det.poses == ()
    assert coffee_det.usable_faces() == ()
    assert coffee_det.reject_reason() == reasons.NO_PERSON


def test_exif_rotated_copy_detects_the_same_face(detector, astronaut, astronaut_det):
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, 1)))  # what a camera held sideways stores
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif.tobytes())
    upright = decode_image(buffer.getvalue())
    rotated_det = detector.detect(upright)
    assert len(rotated_det.faces) == 1
    assert np.median(_mesh_error(rotated_det.faces[0].landmarks, astronaut_det.faces[0].landmarks)) < 1.0


def test_grayscale_copy_detects_the_same_face(detector, astronaut, astronaut_det):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).convert("L").save(buffer, "PNG")
    grey = decode_image(buffer.getvalue())
    assert grey.shape == astronaut.shape and grey.dtype == np.uint8
    grey_det = detector.detect(grey)
    assert len(grey_det.faces) == 1
    error = _mesh_error(grey_det.faces[0].landmarks, astronaut_det.faces[0].landmarks)
    assert error.mean() < 2.0 and error.max() < 5.0


def test_downscaled_detection_maps_back_to_full_resolution(group, no_network):
    # t1.jpg is 1280 px wide; at 640 the person detector sees exactly what it sees at full
    # size (its own 640 px letterbox), so any mapping error (e.g. half a pixel) would show.
    gate_config = GateConfig(people_policy="each")
    with PortraitDetector(DetectorConfig(detect_long_side=640), gate_config) as small:
        small_det = small.detect(group)
    with PortraitDetector(DetectorConfig(detect_long_side=1280), gate_config) as full:
        group_det = full.detect(group)
    assert small_det.scale == pytest.approx(0.5) and small_det.detect_size == (640, 443)
    assert group_det.scale == 1.0 and group_det.detect_size == (1280, 886)
    assert len(small_det.persons) == len(group_det.persons)
    for a, b in zip(small_det.persons, group_det.persons):
        assert np.abs(a.box - b.box).max() < 0.01
        assert np.abs(a.keypoints - b.keypoints).max() < 0.01
    assert [f.person_index for f in small_det.faces] == [f.person_index for f in group_det.faces]
    for a, b in zip(small_det.faces, group_det.faces):
        assert _mesh_error(a.landmarks, b.landmarks).max() < 1.0


def test_model_ids_name_the_weights_used(astronaut_det):
    names = [m.name for m in astronaut_det.models]
    assert names[0] == "yolo11n-pose"
    assert astronaut_det.models[0].sha256 == file_sha256(embedded_yolo_weights())
    assert names[1:] == ["face_detection_full_range_sparse", "face_landmark_with_attention", "pose_landmark_full",
                         "selfie_segmentation"]
    assert all(len(m.sha256) == 64 for m in astronaut_det.models)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((32, 32), np.uint8),
        np.zeros((32, 32, 4), np.uint8),
        np.zeros((32, 32, 3), np.float32),
        np.zeros((32, 32, 3), np.uint16),
        np.zeros((0, 32, 3), np.uint8),
    ],
    ids=["grey2d", "rgba", "float", "uint16", "empty"],
)
def test_detect_rejects_anything_but_rgb_uint8(detector, bad):
    with pytest.raises(ValueError):
        detector.detect(bad)


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "models" / "person.pt"
    with pytest.raises(FileNotFoundError, match="person.pt"):
        PortraitDetector(DetectorConfig(weights=str(missing))).load()


def test_detect_before_load_is_an_error(astronaut):
    with pytest.raises(RuntimeError, match="before load"):
        PortraitDetector().detect(astronaut)
