"""Chains (warps.chain) on the real fixture photos: every op moves its feature by its stated
amount, holds its fixed ring, does not fold; chains compose; clamping; sampling.

Face ops are solved with grid step 4 on the 512 px astronaut: its face is ~95 px wide, about
a fifth of a face in the pipeline's 1024 px crops, where the default step 8 is finer still
relative to the features.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

import warps.catalog as c
from warps.catalog import CATALOG, MissingLandmarks, OpCall, face_length
from warps.chain import (
    FoldError,
    StrengthSpec,
    WarpSettings,
    plan_chain,
    sample_chain,
    solve_op,
)

FINE = WarpSettings(grid_step=4)
ALL_OPS = sorted(CATALOG)


def scene(name, astronaut, bus_person):
    return astronaut if CATALOG[name].reads == "face478" else bus_person


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", ALL_OPS)
def test_op_lands_its_anchors_holds_its_ring_and_does_not_fold(name, strength, astronaut, bus_person):
    image, lm = scene(name, astronaut, bus_person)
    plan = plan_chain(image.shape[:2], lm, [OpCall(name, strength)], settings=FINE)
    (record,) = plan.records
    assert not record.clamped and record.applied_strength == strength
    assert record.min_jacobian >= FINE.min_jacobian
    carried = plan.field.forward_points(record.anchors_src)
    err = np.hypot(*(carried - record.anchors_dst).T)
    assert err[: record.moving].max() < 0.35
    assert err[record.moving :].max() < 0.5  # the fixed ring stays put


@pytest.fixture(scope="module")
def astronaut_1024(astronaut):
    """The astronaut at twice the size (1024 px, the pipeline's crop size), landmarks mapped."""
    image, lm = astronaut
    big = cv2.resize(image, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    return big, lm.mapped(lambda p: 2.0 * p + 0.5)


def _patches(gray, points):
    return np.stack([cv2.getRectSubPix(gray, (5, 5), (float(x), float(y))) for x, y in points])


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", ALL_OPS)
def test_op_moves_image_content_to_its_anchor_targets(name, strength, astronaut_1024, bus_person):
    image, lm = astronaut_1024 if CATALOG[name].reads == "face478" else bus_person
    plan = plan_chain(image.shape[:2], lm, [OpCall(name, strength)])
    (record,) = plan.records
    src, dst = record.anchors_src[: record.moving], record.anchors_dst[: record.moving]
    shift = np.hypot(*(dst - src).T)
    assert shift.max() >= 1.0
    far = shift >= 0.5 * shift.max()
    before, after = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (image, plan.field.apply(image)))
    moved = np.abs(_patches(after, dst[far]) - _patches(before, src[far])).mean()
    stayed = np.abs(_patches(after, src[far]) - _patches(before, src[far])).mean()
    # Content around each far-moving anchor reappears at its target, not where it was.
    assert moved < 0.5 * stayed, (moved, stayed)


def _uv(lm):
    return c.face_axes(lm.face)


def _centroid(points, idx):
    return points[list(idx)].mean(axis=0)


def _ratio_spread(groups_, axes):
    def measure(face, u, v):
        values = []
        for g in groups_:
            centred = face[list(g)] - face[list(g)].mean(axis=0)
            values += [np.sqrt(((centred @ ax) ** 2).mean()) for ax in axes(u, v)]
        return float(np.mean(values))

    return measure


def _gap_u(a, b):
    return lambda face, u, v: float((_centroid(face, b) - _centroid(face, a)) @ u)


def _pos_v(idx):
    return lambda face, u, v: float(_centroid(face, idx) @ v)


def _tilt(right, left):
    """Mean turn of the two groups' principal axes, counting the outer ends going up as +."""

    def axis_angle(points, u, v):
        local = (points - points.mean(axis=0)) @ np.stack([u, v]).T
        cov = local.T @ local
        return 0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])

    def measure(face, u, v):
        return float(axis_angle(face[list(right)], u, v) - axis_angle(face[list(left)], u, v)) / 2

    return measure


BOTH_AXES = lambda u, v: (u, v)  # noqa: E731
U_AXIS = lambda u, v: (u,)  # noqa: E731
V_AXIS = lambda u, v: (v,)  # noqa: E731
HALF_R = (148, 176, 149, 171)
HALF_L = (377, 400, 378, 396)

#: name -> (measure(face, u, v), kind, expected as a function of m and the original face).
#: "ratio": after / before == 1 + m; "delta": after - before == expected(m, face).
FACE_EXPECTATIONS = {
    "eye_size": (_ratio_spread((c.RIGHT_EYE_ALL, c.LEFT_EYE_ALL), BOTH_AXES), "ratio", None),
    "eye_distance": (_gap_u(c.RIGHT_EYE_ALL, c.LEFT_EYE_ALL), "ratio", None),
    "nose_bridge_width": (_ratio_spread((c.RIGHT_NOSE_BRIDGE + c.LEFT_NOSE_BRIDGE,), U_AXIS), "ratio", None),
    "nasal_alae": (_gap_u(c.RIGHT_ALA, c.LEFT_ALA), "ratio", None),
    "nose_length": (_pos_v(c.NOSE_TIP), "delta", lambda m, f: m * face_length(f, "nose_length")),
    "mouth_vertical": (_pos_v(c.LIPS), "delta", lambda m, f: -m * face_length(f, "philtrum")),
    "lip_thickness": (lambda f, u, v: float((_centroid(f, c.UPPER_LIP_INNER) - _centroid(f, c.UPPER_LIP_OUTER)) @ v),
                      "ratio", None),  # fmt: skip
    "mouth_width": (_gap_u((61,), (291,)), "ratio", None),
    "eye_height": (_ratio_spread((c.RIGHT_EYE_ALL, c.LEFT_EYE_ALL), V_AXIS), "ratio", None),
    "eye_tilt": (_tilt(c.RIGHT_EYE_ALL, c.LEFT_EYE_ALL), "delta", lambda m, f: np.arctan(m)),
    "brow_height": (_pos_v(c.RIGHT_EYEBROW + c.LEFT_EYEBROW), "delta", lambda m, f: -m * face_length(f, "brow_eye_gap")),
    "brow_tilt": (_tilt(c.RIGHT_EYEBROW, c.LEFT_EYEBROW), "delta", lambda m, f: np.arctan(m)),
    "nose_tip": (_pos_v(c.NOSE_TIP), "delta", lambda m, f: -m * face_length(f, "nose_length")),
    "nose_size": (_ratio_spread((c.NOSE_TIP + c.RIGHT_ALA + c.LEFT_ALA + (5, 195, 45, 275),), BOTH_AXES), "ratio", None),
    "smile_corners": (_pos_v(c.MOUTH_CORNERS), "delta", lambda m, f: -m * face_length(f, "mouth_width")),
    "cheekbones": (_gap_u(c.RIGHT_CHEEKBONE, c.LEFT_CHEEKBONE), "ratio", None),
    "cheek_fullness": (_gap_u(c.RIGHT_CHEEK, c.LEFT_CHEEK), "ratio", None),
    "forehead_height": (_pos_v(c.FOREHEAD_TOP), "delta", lambda m, f: -m * face_length(f, "forehead")),
    "chin_width": (_gap_u(HALF_R, HALF_L), "ratio", None),
    "chin_height": (_pos_v(c.CHIN), "delta", lambda m, f: m * face_length(f, "lower_face")),
    "jawline": (_gap_u(c.RIGHT_JAW, c.LEFT_JAW), "ratio", None),
    "temples": (_gap_u(c.RIGHT_TEMPLE, c.LEFT_TEMPLE), "ratio", None),
}


def test_every_face_op_has_a_feature_measurement():
    assert set(FACE_EXPECTATIONS) == {n for n, s in CATALOG.items() if s.reads == "face478"}


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", sorted(FACE_EXPECTATIONS))
def test_face_op_changes_its_feature_by_the_stated_amount(name, strength, astronaut_1024):
    image, lm = astronaut_1024
    measure, kind, expected = FACE_EXPECTATIONS[name]
    m = CATALOG[name].signed_magnitude(strength)
    u, v = _uv(lm)
    plan = plan_chain(image.shape[:2], lm, [OpCall(name, strength)], settings=FINE)
    before, after = measure(lm.face, u, v), measure(plan.landmarks_after.face, u, v)
    if kind == "ratio":
        assert after / before == pytest.approx(1 + m, abs=0.15 * abs(m))
    else:
        want = expected(m, lm.face)
        assert after - before == pytest.approx(want, abs=0.15 * abs(want))


def test_body_ops_change_their_feature_by_the_stated_amount(bus_person):
    image, lm = bus_person
    shape = image.shape[:2]
    sw = float(np.hypot(*(lm.pose[11] - lm.pose[12])))
    wide = plan_chain(shape, lm, [OpCall("shoulder_width", 100)], settings=FINE).landmarks_after
    assert np.hypot(*(wide.pose[11] - wide.pose[12])) / sw == pytest.approx(1.12, abs=0.01)
    square = plan_chain(shape, lm, [OpCall("square_shoulders", 100)], settings=FINE).landmarks_after
    rise = (lm.pose[[11, 12], 1] - square.pose[[11, 12], 1]).mean()
    assert rise == pytest.approx(0.6 * 0.06 * sw, rel=0.1)
    leg = float(np.hypot(*(lm.pose[[23, 24]].mean(0) - lm.pose[[27, 28]].mean(0))))
    longer = plan_chain(shape, lm, [OpCall("leg_length", 100)], settings=FINE).landmarks_after
    drop = longer.pose[[27, 28], 1].mean() - lm.pose[[27, 28], 1].mean()
    assert drop == pytest.approx(0.08 * leg, rel=0.05)
    np.testing.assert_allclose(longer.pose[[23, 24]], lm.pose[[23, 24]], atol=0.05)
    for name, m in (("arm_slimming", 0.20), ("waist_slimming", 0.15)):
        (record,) = plan_chain(shape, lm, [OpCall(name, 100)], settings=FINE).records
        edges = record.anchors_src[: record.moving].reshape(-1, 2, 2)  # (left, right) pairs
        plan = plan_chain(shape, lm, [OpCall(name, 100)], settings=FINE)
        carried = plan.field.forward_points(edges.reshape(-1, 2)).reshape(-1, 2, 2)
        ratio = np.hypot(*(carried[:, 0] - carried[:, 1]).T) / np.hypot(*(edges[:, 0] - edges[:, 1]).T)
        np.testing.assert_allclose(ratio, 1 - m, atol=0.02)


def test_strength_zero_is_the_exact_identity(astronaut):
    image, lm = astronaut
    plan = plan_chain(image.shape[:2], lm, [OpCall("eye_size", 0), OpCall("mouth_width", 0)])
    assert plan.field.is_identity
    assert np.array_equal(plan.field.apply(image), image)
    np.testing.assert_array_equal(plan.landmarks_after.face, lm.face)
    assert [(r.applied_strength, r.clamped, r.moving) for r in plan.records] == [(0, False, 0)] * 2
    assert plan.region.is_empty and not plan.region.mask.any()


def test_zero_strength_op_inside_a_chain_changes_nothing(astronaut):
    image, lm = astronaut
    alone = plan_chain(image.shape[:2], lm, [OpCall("nose_length", 60)])
    padded = plan_chain(image.shape[:2], lm, [OpCall("eye_size", 0), OpCall("nose_length", 60)])
    assert np.array_equal(alone.field.apply(image), padded.field.apply(image))


def test_chain_equals_its_ops_applied_in_turn_on_carried_landmarks(astronaut):
    image, lm = astronaut
    shape = image.shape[:2]
    calls = [OpCall("eye_size", 80), OpCall("mouth_width", -60), OpCall("nose_length", 50)]
    plan = plan_chain(shape, lm, calls)
    # Smoothed photo: one resampling vs three then differ by interpolation blur only negligibly.
    smooth = cv2.GaussianBlur(image, (0, 0), 3)
    sequential, carried = smooth, lm
    for call, record in zip(calls, plan.records):
        field, anchors = solve_op(shape, CATALOG[call.name], carried, call.strength, WarpSettings())
        np.testing.assert_allclose(anchors.src, record.anchors_src)  # op k+1 reads carried landmarks
        sequential = field.apply(sequential)
        carried = carried.mapped(field.forward_points)
    np.testing.assert_allclose(plan.landmarks_after.face, carried.face, atol=1e-9)
    # The composed backward map takes the carried landmarks back to where they started.
    np.testing.assert_allclose(plan.field.sample(carried.face), lm.face, atol=0.3)
    diff = np.abs(plan.field.apply(smooth).astype(np.int16) - sequential)
    assert (plan.region.mask > 0).sum() > 500
    assert diff.max() <= 3 and diff.mean() < 0.05


def test_clamping_is_recorded_when_an_op_would_fold(astronaut, monkeypatch):
    image, lm = astronaut
    shape = image.shape[:2]
    huge = dataclasses.replace(CATALOG["chin_height"], magnitude_pos=2.0)
    monkeypatch.setitem(CATALOG, "chin_height", huge)
    plan = plan_chain(shape, lm, [OpCall("chin_height", 100)])
    (record,) = plan.records
    assert record.clamped and record.requested_strength == 100
    assert 0 < record.applied_strength < 100
    assert record.min_jacobian >= WarpSettings().min_jacobian
    # Largest passing integer: one more folds.
    over, _ = solve_op(shape, huge, lm, record.applied_strength + 1, WarpSettings())
    assert over.min_jacobian() < WarpSettings().min_jacobian
    assert record.to_record()["clamped"] is True


def test_op_that_folds_at_strength_one_raises(astronaut, monkeypatch):
    image, lm = astronaut
    monkeypatch.setitem(CATALOG, "eye_size", dataclasses.replace(CATALOG["eye_size"], magnitude_neg=300.0))
    with pytest.raises(FoldError, match="eye_size folds even at strength -1"):
        plan_chain(image.shape[:2], lm, [OpCall("eye_size", -100)])


def test_missing_landmarks_and_bad_calls_raise(astronaut, bus_person):
    image, lm = bus_person
    with pytest.raises(MissingLandmarks, match="face mesh"):
        plan_chain(image.shape[:2], lm, [OpCall("waist_slimming", 50), OpCall("eye_size", 50)])
    with pytest.raises(TypeError, match="OpCall"):
        plan_chain(image.shape[:2], lm, [("eye_size", 50)])
    with pytest.raises(ValueError, match="min_jacobian"):
        WarpSettings(min_jacobian=0.0)


def test_body_and_face_ops_chain_on_one_portrait(astronaut):
    image, lm = astronaut
    plan = plan_chain(image.shape[:2], lm, [OpCall("square_shoulders", 70), OpCall("eye_size", 60)])
    assert [r.applied_strength for r in plan.records] == [70, 60]
    assert plan.landmarks_after.person_box is not None and plan.landmarks_after.pose is not None


def test_sample_chain_is_deterministic_and_within_bounds():
    draws = [sample_chain(np.random.default_rng(7), "simulated") for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(11)
    seen, signs = set(), set()
    for _ in range(400):
        calls = sample_chain(rng, "simulated")
        names = [call.name for call in calls]
        assert 1 <= len(calls) <= 3 and len(set(names)) == len(names)
        assert all(20 <= abs(call.strength) <= 100 for call in calls)
        seen |= set(names)
        signs |= {np.sign(call.strength) for call in calls}
    assert seen == {s.name for s in c.ops_for_subset("simulated")} and signs == {-1, 1}


def test_sample_chain_parameters():
    rng = np.random.default_rng(3)
    extremes = sample_chain(rng, "professional", min_ops=3, max_ops=3, strengths=StrengthSpec(100, 100))
    assert len(extremes) == 3 and all(abs(call.strength) == 100 for call in extremes)
    for _ in range(100):
        calls = sample_chain(rng, "professional", reads=("face478",))
        assert all(CATALOG[call.name].reads == "face478" for call in calls)
    with pytest.raises(ValueError, match="min_ops"):
        sample_chain(rng, "simulated", min_ops=2, max_ops=9)
    with pytest.raises(ValueError, match="min_magnitude"):
        StrengthSpec(0, 100)
    with pytest.raises(ValueError, match="unknown subset"):
        sample_chain(rng, "both")
