"""The operation catalog (warps.catalog) and Landmarks (warps.landmarks) on real landmarks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import warps.catalog as catalog
from warps.catalog import CATALOG, MissingLandmarks, OpCall, op_anchors, ops_for_subset
from warps.landmarks import Landmarks

#: DATASET-FACTS.md: the reference's eight simulated ops and their magnitudes at +100 / -100.
REFERENCE_SIMULATED = {
    "eye_size": (0.25, 0.20),
    "eye_distance": (0.15, 0.15),
    "nose_bridge_width": (0.30, 0.25),
    "nasal_alae": (0.25, 0.25),
    "nose_length": (0.15, 0.15),
    "mouth_vertical": (0.8, 0.8),
    "lip_thickness": (0.40, 0.30),
    "mouth_width": (0.25, 0.25),
}
FACE_SHAPE = {"chin_width", "chin_height", "jawline", "temples"}
BODY = {"square_shoulders", "shoulder_width", "arm_slimming", "leg_length", "waist_slimming"}


def test_simulated_subset_is_the_reference_table():
    simulated = {s.name: (s.magnitude_pos, s.magnitude_neg) for s in ops_for_subset("simulated")}
    assert simulated == REFERENCE_SIMULATED
    assert all(CATALOG[n].subsets == ("simulated", "professional") for n in REFERENCE_SIMULATED)


def test_professional_subset_has_27_ops_in_the_reference_groups():
    pro = ops_for_subset("professional")
    assert len(pro) == 27 and len(CATALOG) == 27
    groups = {g: {s.name for s in pro if s.group == g} for g in ("face", "face_shape", "body")}
    assert len(groups["face"]) == 18 and set(REFERENCE_SIMULATED) <= groups["face"]
    assert groups["face_shape"] == FACE_SHAPE
    assert groups["body"] == BODY
    assert all((s.reads == "pose33") == (s.name in BODY) for s in pro)
    assert all(s.magnitude_pos > 0 and s.magnitude_neg > 0 and s.description for s in pro)


def test_unknown_subset_raises():
    with pytest.raises(ValueError, match="unknown subset"):
        ops_for_subset("ffhq")


def test_index_groups_equal_mediapipe_sets():
    from mediapipe.python.solutions import face_mesh_connections as fmc

    def flat(pairs):
        return tuple(sorted({i for pair in pairs for i in pair}))

    for name in ("FACE_OVAL", "LEFT_EYE", "RIGHT_EYE", "LEFT_IRIS", "RIGHT_IRIS", "LEFT_EYEBROW",
                 "RIGHT_EYEBROW", "LIPS", "NOSE"):  # fmt: skip
        assert getattr(catalog, name) == flat(getattr(fmc, f"FACEMESH_{name}")), name
    lips = set(catalog.LIPS)
    split = (catalog.UPPER_LIP_OUTER + catalog.UPPER_LIP_INNER + catalog.LOWER_LIP_OUTER
             + catalog.LOWER_LIP_INNER + catalog.MOUTH_CORNERS)  # fmt: skip
    assert sorted(split) == sorted(lips)


def test_warps_does_not_import_mediapipe():
    code = "import sys, warps.catalog, warps.chain, warps.region, warps.cli; print('mediapipe' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(n for n, s in CATALOG.items() if s.reads == "face478"))
def test_face_op_moving_and_fixed_indices_are_disjoint_and_valid(name):
    spec = CATALOG[name]
    motion = spec.motion
    moving = set(getattr(motion, "points", ())) | {i for g in getattr(motion, "groups", ()) for i in g}
    assert moving and spec.fixed
    assert not moving & set(spec.fixed)
    assert all(0 <= i < 478 for i in moving | set(spec.fixed))


def test_opcall_validation():
    assert OpCall("eye_size", np.int64(-40)).strength == -40
    with pytest.raises(ValueError, match="known ops: .*eye_size"):
        OpCall("eye_sise", 10)
    for bad in (101, -101, 12.5, True, "50"):
        with pytest.raises(ValueError, match="strength"):
            OpCall("eye_size", bad)


def test_signed_magnitude_is_linear_with_the_signed_ends():
    spec = CATALOG["eye_size"]
    assert spec.signed_magnitude(100) == 0.25
    assert spec.signed_magnitude(-100) == -0.20
    assert spec.signed_magnitude(50) == 0.125
    assert spec.signed_magnitude(0) == 0.0


def test_anchors_hold_the_fixed_ring_and_move_only_moving_points(astronaut):
    _, lm = astronaut
    a = op_anchors(CATALOG["eye_size"], lm, 100)
    assert a.src.shape == a.dst.shape == (a.moving + len(CATALOG["eye_size"].fixed), 2)
    np.testing.assert_array_equal(a.src[a.moving:], a.dst[a.moving:])
    assert np.all(np.hypot(*(a.dst[: a.moving] - a.src[: a.moving]).T) > 0)


def test_face_axes_follow_the_eye_line(astronaut):
    _, lm = astronaut
    u, v = catalog.face_axes(lm.face)
    assert u[0] > 0.9 and v[1] > 0.9  # an upright frontal face: u ~ +x, v ~ +y
    assert abs(u @ v) < 1e-12


def test_missing_landmarks_raise_clear_errors(astronaut, bus_person):
    _, face_lm = astronaut
    _, body_lm = bus_person
    with pytest.raises(MissingLandmarks, match="eye_size reads the face mesh"):
        op_anchors(CATALOG["eye_size"], body_lm, 50)
    with pytest.raises(MissingLandmarks, match="pose"):
        op_anchors(CATALOG["arm_slimming"], Landmarks(face=face_lm.face), 50)
    no_box = Landmarks(pose=body_lm.pose, pose_visibility=body_lm.pose_visibility)
    with pytest.raises(MissingLandmarks, match="person box"):
        op_anchors(CATALOG["waist_slimming"], no_box, 50)
    # The astronaut's hips and legs are out of frame (visibility < 0.5).
    with pytest.raises(MissingLandmarks, match="leg_length needs pose joints"):
        op_anchors(CATALOG["leg_length"], face_lm, 50)
    with pytest.raises(MissingLandmarks, match="none of its limbs"):
        op_anchors(CATALOG["waist_slimming"], face_lm, 50)


def test_body_anchors_skip_invisible_limbs(astronaut, bus_person):
    # The astronaut shows one upper arm (12 -> 14); the bus person shows all four segments.
    portrait = op_anchors(CATALOG["arm_slimming"], astronaut[1], 100)
    full = op_anchors(CATALOG["arm_slimming"], bus_person[1], 100)
    assert portrait.moving == 2 * 3 and full.moving == 4 * 2 * 3


# --- Landmarks -----------------------------------------------------------------------------
def test_landmarks_validate_shapes_naming_the_field(astronaut):
    _, lm = astronaut
    with pytest.raises(ValueError, match=r"Landmarks.face: expected shape \(478, 2\)"):
        Landmarks(face=lm.face[:468])
    with pytest.raises(ValueError, match="Landmarks.pose_visibility"):
        Landmarks(pose=lm.pose)
    with pytest.raises(ValueError, match="Landmarks.pose_visibility: values"):
        Landmarks(pose=lm.pose, pose_visibility=lm.pose_visibility * 2)
    with pytest.raises(ValueError, match="Landmarks.person_box"):
        Landmarks(person_box=[10, 10, 5, 20])
    with pytest.raises(ValueError, match="Landmarks.face: contains non-finite"):
        Landmarks(face=np.where(np.arange(478)[:, None] == 3, np.nan, lm.face))


def test_landmarks_are_read_only_copies(astronaut):
    _, lm = astronaut
    source = lm.face.copy()
    copy = Landmarks(face=source)
    source[0] = -1
    assert copy.face[0, 0] != -1
    with pytest.raises(ValueError):
        copy.face[0, 0] = 5.0


def test_landmarks_mapped_moves_every_point_and_the_box(astronaut):
    _, lm = astronaut
    moved = lm.mapped(lambda p: p * 2.0 + (3.0, -1.0))
    np.testing.assert_allclose(moved.face, lm.face * 2 + (3, -1))
    np.testing.assert_allclose(moved.pose, lm.pose * 2 + (3, -1))
    np.testing.assert_allclose(moved.person_box, lm.person_box * 2 + (3, -1, 3, -1))
    np.testing.assert_array_equal(moved.pose_visibility, lm.pose_visibility)
