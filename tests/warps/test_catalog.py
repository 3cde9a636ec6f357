"""The operation catalog (warps.catalog) and Landmarks (warps.landmarks) on real landmarks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import cv2
import numpy as np
import pytest

import warps.catalog as catalog
from warps.catalog import CATALOG, MissingLandmarks, OpCall, op_anchors, ops_for_subset
from warps.landmarks import Landmarks

SIMULATED = {"eye_size", "eye_distance", "nose_bridge_width", "nasal_alae", "nose_length", "mouth_vertical",
             "lip_thickness", "mouth_width"}  # fmt: skip
FACE_SHAPE = {"chin_width", "chin_height", "jawline", "temples"}
BODY = {"square_shoulders", "shoulder_width", "arm_slimming", "leg_length", "waist_slimming"}


def test_professional_subset_has_27_ops_in_the_reference_groups():
    pro = ops_for_subset("professional")
    assert len(pro) == 27 and len(CATALOG) == 27
    groups = {g: {s.name for s in pro if s.group == g} for g in ("face", "face_shape", "body")}
    assert len(groups["face"]) == 18 and SIMULATED <= groups["face"]
    assert {s.name for s in ops_for_subset("simulated")} == SIMULATED
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


def test_feature_groups_are_disjoint_named_mesh_indices():
    seen: set[int] = set()
    for name, indices in catalog.FEATURE_GROUPS.items():
        assert indices and all(0 <= i < 478 for i in indices), name
        assert not seen & set(indices), name
        seen |= set(indices)
    assert set(catalog.FACE_OVAL) <= seen  # the oval is split among the groups


@pytest.mark.parametrize("name", sorted(n for n, s in CATALOG.items() if s.reads == "face478"))
def test_face_op_moves_only_points_of_the_groups_it_names(name):
    spec = CATALOG[name]
    moving = set(catalog.moving_indices(spec.motion))
    assert moving and spec.moves and set(spec.moves) <= set(catalog.FEATURE_GROUPS)
    held = {i for g, idx in catalog.FEATURE_GROUPS.items() if g not in spec.moves for i in idx}
    assert not moving & held, sorted(moving & held)
    assert not moving & set(spec.fixed)
    assert all(0 <= i < 478 for i in moving | set(spec.fixed))
    assert set(catalog.held_indices(spec, tuple(moving))) == (held | set(spec.fixed)) - moving


def test_body_ops_name_no_face_groups():
    assert all(not CATALOG[n].moves for n in BODY)


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


def test_face_anchors_hold_the_groups_near_the_op_and_move_only_moving_points(astronaut):
    _, lm = astronaut
    spec = CATALOG["eye_size"]
    a = op_anchors(spec, lm, 100)
    moving = catalog.moving_indices(spec.motion)
    np.testing.assert_array_equal(a.src[: a.moving], lm.face[list(moving)])
    np.testing.assert_array_equal(a.src[a.moving :], a.dst[a.moving :])
    assert np.all(np.hypot(*(a.dst[: a.moving] - a.src[: a.moving]).T) > 0)
    # Held: every point of an unmoved group within the op's reach, nothing beyond it.
    held = lm.face[list(catalog.held_indices(spec, moving))]
    reach = np.hypot(*(held[:, None] - a.src[None, : a.moving]).transpose(2, 0, 1)).min(axis=1)
    fixed = {tuple(p) for p in a.src[a.moving :]}
    assert {tuple(p) for p in held[reach <= a.falloff.outer]} == fixed
    assert a.hold is not None and len(a.hold.polygons) >= 4  # brows, nose, cheeks, temples ...


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
    no_box = dataclasses.replace(body_lm, person_box=None)
    with pytest.raises(MissingLandmarks, match="person box"):
        op_anchors(CATALOG["waist_slimming"], no_box, 50)
    no_outline = dataclasses.replace(body_lm, outline=None)
    with pytest.raises(MissingLandmarks, match="outline"):
        op_anchors(CATALOG["waist_slimming"], no_outline, 50)
    # The astronaut's hips and legs are out of frame (visibility < 0.5).
    with pytest.raises(MissingLandmarks, match="leg_length needs pose joints"):
        op_anchors(CATALOG["leg_length"], face_lm, 50)
    with pytest.raises(MissingLandmarks, match="waist_slimming: no limb"):
        op_anchors(CATALOG["waist_slimming"], face_lm, 50)
    # Someone standing over the whole body: nothing it edits may move.
    x0, y0, x1, y1 = body_lm.person_box
    covered = dataclasses.replace(body_lm, hold=((np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) + [[-5, -5], [5, -5], [5, 5], [-5, 5]]),))
    with pytest.raises(MissingLandmarks, match="covered by or next to another person"):
        op_anchors(CATALOG["arm_slimming"], covered, 50)


@pytest.mark.parametrize("name", sorted(BODY))
def test_body_ops_move_points_of_the_silhouette(name, bus_person):
    """Silhouette points (on the outline polygon) move; pose joints may move with them."""
    _, lm = bus_person
    a = op_anchors(CATALOG[name], lm, 100)
    outline = lm.outline.astype(np.float32).reshape(-1, 1, 2)
    on_outline = [abs(cv2.pointPolygonTest(outline, (float(x), float(y)), True)) < 1.0 for x, y in a.src[: a.moving]]
    assert sum(on_outline) >= 2, name
    assert a.falloff is not None and a.hold is not None and len(a.hold.polygons) == len(lm.hold)


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


def test_landmarks_mapped_moves_every_point_and_the_box(bus_person):
    _, lm = bus_person
    moved = lm.mapped(lambda p: p * 2.0 + (3.0, -1.0))
    np.testing.assert_allclose(moved.pose, lm.pose * 2 + (3, -1))
    np.testing.assert_allclose(moved.person_box, lm.person_box * 2 + (3, -1, 3, -1))
    np.testing.assert_allclose(moved.outline, lm.outline * 2 + (3, -1))
    for a, b in zip(moved.hold, lm.hold, strict=True):
        np.testing.assert_allclose(a, b * 2 + (3, -1))
    np.testing.assert_array_equal(moved.pose_visibility, lm.pose_visibility)


def test_landmarks_validate_polygons():
    with pytest.raises(ValueError, match=r"Landmarks.outline: expected a polygon"):
        Landmarks(outline=[[0, 0], [1, 1]])
    with pytest.raises(ValueError, match=r"Landmarks.hold\[1\]: expected a polygon"):
        Landmarks(hold=([[0, 0], [1, 0], [1, 1]], [[0, 0]]))
    assert Landmarks.from_dict({"hold": None}).hold == ()
