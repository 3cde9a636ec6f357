"""Chains (warps.chain) on the real fixture photos: the image shows every op's planned motion,
anchors land, Jacobian limits hold or the op is clamped with the reason recorded; chains
compose; sampling.

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
import warps.chain as chain
from warps.catalog import CATALOG, MissingLandmarks, OpCall
from warps.chain import (
    FoldError,
    StrengthSpec,
    WarpSettings,
    jacobian_violation,
    plan_chain,
    sample_chain,
    solve_op,
)
from warps.field import WarpField
from warps.landmarks import Landmarks

FINE = WarpSettings(grid_step=4)
ALL_OPS = sorted(CATALOG)


def scene(name, astronaut, bus_person):
    return astronaut if CATALOG[name].reads == "face478" else bus_person


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", ALL_OPS)
def test_op_lands_its_anchors_and_keeps_the_jacobian_limits(name, strength, astronaut, bus_person):
    image, lm = scene(name, astronaut, bus_person)
    plan = plan_chain(image.shape[:2], lm, [OpCall(name, strength)], settings=FINE)
    (record,) = plan.records
    assert record.clamped == (record.applied_strength != strength) == (record.clamp_reason is not None)
    assert record.clamp_reason in (None, "fold", "stretch", "pinch")
    assert abs(record.applied_strength) >= 20  # clamping never takes most of an op away here
    jac = plan.field.jacobian
    assert jac.fold_count == 0 and FINE.min_jacobian <= jac.min_jacobian and jac.max_jacobian <= FINE.max_jacobian
    carried = plan.field.forward_points(record.anchors_src)
    err = np.hypot(*(carried - record.anchors_dst).T)
    assert np.median(err[: record.moving]) < 0.35
    assert np.median(err[record.moving :]) < 0.5  # held anchors stay put


@pytest.fixture(scope="module")
def astronaut_1024(astronaut):
    """The astronaut at twice the size (1024 px, the pipeline's crop size), landmarks mapped."""
    image, lm = astronaut
    big = cv2.resize(image, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    return big, lm.mapped(lambda p: 2.0 * p + 0.5)


def _found_shift(before: np.ndarray, after: np.ndarray, src: np.ndarray, planned: np.ndarray) -> np.ndarray:
    """Where the 11x11 patch of ``before`` at ``src`` reappears in ``after`` (template
    matching over a window twice the planned shift, sub-pixel by a parabola fit), as a shift."""
    half, reach = 5, int(np.ceil(2 * np.hypot(*planned))) + 2
    x, y = int(round(src[0])), int(round(src[1]))
    patch = before[y - half : y + half + 1, x - half : x + half + 1]
    window = after[y - half - reach : y + half + reach + 1, x - half - reach : x + half + reach + 1]
    score = cv2.matchTemplate(window, patch, cv2.TM_SQDIFF_NORMED)
    iy, ix = np.unravel_index(np.argmin(score), score.shape)

    def refine(lo: float, mid: float, hi: float) -> float:
        denom = lo - 2 * mid + hi
        return 0.0 if denom <= 0 else 0.5 * (lo - hi) / denom

    dx = refine(*score[iy, ix - 1 : ix + 2]) if 0 < ix < score.shape[1] - 1 else 0.0
    dy = refine(*score[iy - 1 : iy + 2, ix]) if 0 < iy < score.shape[0] - 1 else 0.0
    return np.array([ix + dx - reach + (x - src[0]), iy + dy - reach + (y - src[1])])


@pytest.mark.parametrize("strength", [100, -100])
@pytest.mark.parametrize("name", ALL_OPS)
def test_the_image_shows_the_planned_motion(name, strength, astronaut_1024, bus_person):
    """Measured on the pixels (template matching), not on the controls: the content around
    each far-moving anchor reappears shifted by about the planned amount."""
    image, lm = astronaut_1024 if CATALOG[name].reads == "face478" else bus_person
    plan = plan_chain(image.shape[:2], lm, [OpCall(name, strength)])
    (record,) = plan.records
    src, dst = record.anchors_src[: record.moving], record.anchors_dst[: record.moving]
    planned = dst - src
    shift = np.hypot(*planned.T)
    assert shift.max() >= 1.0
    before, after = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (image, plan.field.apply(image)))
    far = np.flatnonzero(shift >= 0.5 * shift.max())
    found = np.array([_found_shift(before, after, src[i], planned[i]) for i in far])
    error = np.hypot(*(found - planned[far]).T)
    # The shift found is nearer the planned one than no shift (or a wrong direction, or
    # several times it). Template matching locks to about a pixel on skin and reads a
    # scaled feature's edge short (lip_thickness: ~60 % of the carried motion), so no
    # finer bound; the controls' own landing is checked above on the field.
    assert np.median(error) <= 0.6 * np.median(shift[far]) + 0.5, (np.median(error), np.median(shift[far]))


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
    assert record.clamped and record.requested_strength == 100 and record.clamp_reason in ("fold", "stretch")
    assert 0 < record.applied_strength < 100
    assert record.min_jacobian >= WarpSettings().min_jacobian
    # Largest passing integer: one more breaks a limit.
    over, _ = solve_op(shape, huge, lm, record.applied_strength + 1, WarpSettings())
    assert jacobian_violation(over, WarpSettings()) is not None
    assert record.to_record()["clamped"] is True and record.to_record()["clamp_reason"] == record.clamp_reason


def test_clamping_is_recorded_when_an_op_would_pinch(astronaut, monkeypatch):
    """The maximum-Jacobian limit: shrinking the eyes compresses them (det > 1). The search
    solves far fewer strengths than a bisection from 100 (9)."""
    image, lm = astronaut
    tight = WarpSettings(max_jacobian=1.3)
    assert plan_chain(image.shape[:2], lm, [OpCall("eye_size", -100)]).field.jacobian.max_jacobian > 1.3
    solved = []
    monkeypatch.setattr(chain, "solve_op", lambda *a, **k: solved.append(a[3]) or solve_op(*a, **k))
    plan = plan_chain(image.shape[:2], lm, [OpCall("eye_size", -100)], settings=tight)
    assert len(solved) <= 5, solved
    (record,) = plan.records
    assert record.clamped and record.clamp_reason == "pinch" and -100 < record.applied_strength < 0
    assert record.max_jacobian <= tight.max_jacobian
    over, _ = solve_op(image.shape[:2], CATALOG["eye_size"], lm, record.applied_strength - 1, tight)
    assert jacobian_violation(over, tight) == "pinch"


def test_an_op_solved_once_is_reused_until_the_byte_budget_drops_it(astronaut, monkeypatch):
    """The same op, strength and landmarks again: no solve, the same read-only field (a clamp
    included); over the byte budget the field is solved again, the clamp found is not searched."""
    image, lm = astronaut
    tight = WarpSettings(max_jacobian=1.3)
    calls = [OpCall("eye_size", -100), OpCall("nose_length", 60)]
    solved = []
    monkeypatch.setattr(chain, "solve_op", lambda *a, **k: solved.append(a[3]) or solve_op(*a, **k))
    first = plan_chain(image.shape[:2], lm, calls, settings=tight)
    assert first.records[0].clamped and len(solved) >= 3
    solved.clear()
    again = plan_chain(image.shape[:2], lm, calls[:1], settings=tight)
    assert solved == [] and again.op_fields[0] is first.op_fields[0] and not again.op_fields[0].map_x.flags.writeable
    assert again.records[0].applied_strength == first.records[0].applied_strength
    monkeypatch.setattr(chain, "SOLVED_CACHE_BYTES", 0)
    chain._SOLVED.clear()
    third = plan_chain(image.shape[:2], lm, calls[:1], settings=tight)
    assert solved == [first.records[0].applied_strength] and len(chain._SOLVED) == 0
    np.testing.assert_array_equal(third.op_fields[0].map_x, first.op_fields[0].map_x)


def test_op_that_folds_at_strength_one_raises(astronaut, monkeypatch):
    image, lm = astronaut
    monkeypatch.setitem(CATALOG, "eye_size", dataclasses.replace(CATALOG["eye_size"], magnitude_neg=300.0))
    with pytest.raises(FoldError, match="eye_size breaks the Jacobian limits even at strength -1"):
        plan_chain(image.shape[:2], lm, [OpCall("eye_size", -100)])


def test_a_field_that_cannot_carry_the_landmarks_is_a_fold_not_a_crash(astronaut, monkeypatch):
    """When forward_points cannot invert an op's field at a landmark, the chain raises
    FoldError (a recorded rejection), not the RuntimeError that became an internal error."""
    image, lm = astronaut

    def diverges(self, points, **_):
        raise RuntimeError("forward_points did not converge for 1 point(s) (residual 1.36 px after 50 steps)")

    monkeypatch.setattr(WarpField, "forward_points", diverges)
    with pytest.raises(FoldError, match="eye_size at 100: cannot carry the landmarks through its field"):
        plan_chain(image.shape[:2], lm, [OpCall("eye_size", 100), OpCall("mouth_width", 100)])


def test_missing_landmarks_and_bad_calls_raise(astronaut, bus_person):
    image, lm = bus_person
    with pytest.raises(MissingLandmarks, match="face mesh"):
        plan_chain(image.shape[:2], lm, [OpCall("waist_slimming", 50), OpCall("eye_size", 50)])
    with pytest.raises(TypeError, match="OpCall"):
        plan_chain(image.shape[:2], lm, [("eye_size", 50)])
    with pytest.raises(ValueError, match="min_jacobian"):
        WarpSettings(min_jacobian=0.0)
    with pytest.raises(ValueError, match="max_jacobian"):
        WarpSettings(max_jacobian=1.0)


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


def test_landmarks_digest_names_every_array_and_its_place(astronaut):
    """The solve cache's key: equal landmarks share it; a point moved by 1e-9 px or an added
    hold polygon gives another."""
    _, lm = astronaut
    same = Landmarks(face=lm.face.copy())
    assert Landmarks(face=lm.face).digest == same.digest
    moved = lm.face.copy()
    moved[10, 0] += 1e-9
    assert Landmarks(face=moved).digest != same.digest
    assert Landmarks(face=lm.face, hold=(lm.face[:3],)).digest != same.digest
