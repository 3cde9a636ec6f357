"""Properties of the exact MLS solver (warps.mls)."""

import numpy as np
import pytest

from warps.mls import KINDS, mls_points


def _controls(seed: int, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.uniform(100, 900, (n, 2))
    return src, src + rng.normal(0, 12, (n, 2))


def _similarity(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return scale * points @ np.array([[c, s], [-s, c]]) + np.array(shift)


@pytest.mark.parametrize("kind", KINDS)
def test_identity_when_targets_equal_sources(kind):
    src, _ = _controls(0)
    pts = np.random.default_rng(1).uniform(-50, 1050, (500, 2))
    np.testing.assert_allclose(mls_points(pts, src, src, kind=kind), pts, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reference", [False, True])
def test_controls_land_exactly_on_targets(kind, reference):
    src, dst = _controls(2)
    np.testing.assert_array_equal(mls_points(src, src, dst, kind=kind, reference=reference), dst)


@pytest.mark.parametrize("kind", KINDS)
def test_points_near_controls_approach_targets_continuously(kind):
    src, dst = _controls(3)
    near = src + 1e-4
    np.testing.assert_allclose(mls_points(near, src, dst, kind=kind), dst, atol=1e-2)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_solver_matches_textbook_reference(kind):
    src, dst = _controls(4, n=30)
    pts = np.random.default_rng(5).uniform(0, 1000, (4000, 2))
    fast = mls_points(pts, src, dst, kind=kind)
    ref = mls_points(pts, src, dst, kind=kind, reference=True)
    np.testing.assert_allclose(fast, ref, atol=1e-8)


@pytest.mark.parametrize("kind", ["similarity", "rigid", "affine"])
def test_equivariant_under_rotation_and_scale(kind):
    src, dst = _controls(6)
    pts = np.random.default_rng(7).uniform(0, 1000, (300, 2))
    angle, scale, shift = 0.7, 1.8, (-40.0, 25.0)
    moved = mls_points(
        _similarity(pts, angle, scale, shift),
        _similarity(src, angle, scale, shift),
        _similarity(dst, angle, scale, shift),
        kind=kind,
    )
    np.testing.assert_allclose(moved, _similarity(mls_points(pts, src, dst, kind=kind), angle, scale, shift), atol=1e-7)


def test_similarity_reproduces_a_global_similarity():
    src, _ = _controls(8)
    dst = _similarity(src, 0.3, 1.2, (5.0, -3.0))
    pts = np.random.default_rng(9).uniform(0, 1000, (200, 2))
    np.testing.assert_allclose(mls_points(pts, src, dst), _similarity(pts, 0.3, 1.2, (5.0, -3.0)), atol=1e-8)


def test_rigid_preserves_lengths_of_a_global_rotation():
    src, _ = _controls(10)
    dst = _similarity(src, -0.4, 1.0, (12.0, 7.0))
    pts = np.random.default_rng(11).uniform(0, 1000, (200, 2))
    np.testing.assert_allclose(mls_points(pts, src, dst, kind="rigid"), _similarity(pts, -0.4, 1.0, (12.0, 7.0)), atol=1e-8)


def test_degenerate_counts_have_defined_results():
    pts = np.array([[10.0, 20.0], [300.0, 400.0]])
    np.testing.assert_array_equal(mls_points(pts, np.zeros((0, 2)), np.zeros((0, 2))), pts)
    one = mls_points(pts, np.array([[50.0, 50.0]]), np.array([[53.0, 48.0]]))
    np.testing.assert_allclose(one, pts + [3.0, -2.0])
    # Two points: affine is underdetermined and falls back to similarity.
    src2 = np.array([[0.0, 0.0], [100.0, 0.0]])
    dst2 = np.array([[0.0, 0.0], [0.0, 100.0]])
    np.testing.assert_allclose(
        mls_points(pts, src2, dst2, kind="affine"), mls_points(pts, src2, dst2, kind="similarity")
    )
    # Collinear points: affine is singular and falls back to similarity.
    src3 = np.array([[0.0, 0.0], [50.0, 0.0], [100.0, 0.0]])
    dst3 = src3 + [0.0, 5.0]
    out = mls_points(pts, src3, dst3, kind="affine")
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, pts + [0.0, 5.0], atol=1e-9)


def test_coincident_controls_merge_or_raise():
    src = np.array([[10.0, 10.0], [10.0, 10.0], [200.0, 50.0], [60.0, 300.0]])
    dst = src + [[2.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    merged = mls_points(src, src, dst)
    np.testing.assert_array_equal(merged, dst)
    bad = dst.copy()
    bad[1] = [9.0, 9.0]
    with pytest.raises(ValueError, match="conflicting targets"):
        mls_points(src, src, bad)


def test_controls_outside_the_image_are_allowed():
    src = np.array([[-500.0, -500.0], [1500.0, 300.0], [400.0, 2000.0], [500.0, 500.0]])
    dst = src + [[0, 0], [0, 0], [0, 0], [6.0, 0]]
    out = mls_points(np.array([[500.0, 500.0], [0.0, 0.0]]), src, dst)
    np.testing.assert_allclose(out[0], [506.0, 500.0])
    assert np.isfinite(out).all()


def test_bad_inputs_raise_clear_errors():
    src, dst = _controls(12)
    with pytest.raises(ValueError, match="unknown MLS kind"):
        mls_points(src, src, dst, kind="bogus")
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        mls_points(src, src, dst[:-1])
    with pytest.raises(ValueError, match="finite"):
        mls_points(src, src, np.full_like(dst, np.nan))
    with pytest.raises(ValueError, match="alpha"):
        mls_points(src, src, dst, alpha=0)
