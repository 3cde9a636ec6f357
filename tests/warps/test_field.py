"""WarpField and the grid solver (warps.field) on a real photo."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from warps.field import JacobianStats, WarpField
from warps.hold import Hold
from warps.solve import Falloff, solve_backward, solve_backward_dense


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    root = Path(importlib.util.find_spec("skimage").origin).parent
    bgr = cv2.imread(str(root / "data" / "astronaut.png"))
    return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (1024, 1024), interpolation=cv2.INTER_AREA)


def _eye_like(scale: float = 1.25, centre=(400.0, 420.0)) -> tuple[np.ndarray, np.ndarray]:
    """16 contour points scaled about their centre, held by a ring of 24 fixed points."""
    c = np.array(centre)
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    contour = c + np.stack([40 * np.cos(t), 20 * np.sin(t)], axis=1)
    r = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = c + np.stack([120 * np.cos(r), 90 * np.sin(r)], axis=1)
    src = np.vstack([contour, ring])
    dst = np.vstack([c + (contour - c) * scale, ring])
    return src, dst


def _max_error(a: WarpField, b: WarpField) -> float:
    assert a.roi == b.roi
    (ax, ay), (bx, by) = a.displacement(), b.displacement()
    return float(np.hypot(ax - bx, ay - by).max())


@pytest.mark.parametrize("kind", ["similarity", "rigid", "affine"])
def test_grid_solution_is_within_half_a_pixel_of_per_pixel_solution(kind):
    src, dst = _eye_like()
    grid = solve_backward((1024, 1024), src, dst, kind=kind)
    dense = solve_backward_dense((1024, 1024), src, dst, kind=kind)
    assert _max_error(grid, dense) < 0.25


def test_refinement_is_what_keeps_the_error_small():
    src, dst = _eye_like()
    dense = solve_backward_dense((1024, 1024), src, dst)
    coarse = solve_backward((1024, 1024), src, dst, refine=False)
    assert _max_error(coarse, dense) > 2 * _max_error(solve_backward((1024, 1024), src, dst), dense)


def test_moved_content_lands_on_its_targets(photo):
    src, dst = _eye_like()
    field = solve_backward(photo.shape[:2], src, dst)
    # The backward map sends each target back to its source...
    np.testing.assert_allclose(field.sample(dst), src, atol=0.15)
    # ...and carried points invert it consistently.
    carried = field.forward_points(src)
    np.testing.assert_allclose(carried, dst, atol=0.15)
    np.testing.assert_allclose(field.sample(carried), src, atol=1e-3)


def test_fixed_ring_and_outside_of_roi_stay_put(photo):
    src, dst = _eye_like()
    field = solve_backward(photo.shape[:2], src, dst)
    ring = src[16:]
    np.testing.assert_allclose(field.sample(ring), ring, atol=0.15)
    out = field.apply(photo)
    x0, y0, x1, y1 = field.roi
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[outside], photo[outside])
    assert not np.array_equal(out[y0:y1, x0:x1], photo[y0:y1, x0:x1])


def test_field_is_continuous_at_the_roi_edge():
    src, dst = _eye_like()
    field = solve_backward((1024, 1024), src, dst)
    dx, dy = field.displacement()
    edge = np.concatenate([dx[0], dx[-1], dx[:, 0], dx[:, -1], dy[0], dy[-1], dy[:, 0], dy[:, -1]])
    assert np.abs(edge).max() < 1e-6


def test_identity_cases_are_bit_identical(photo):
    src, _ = _eye_like()
    for field in (WarpField.identity(photo.shape[:2]), solve_backward(photo.shape[:2], src, src)):
        assert field.is_identity
        out = field.apply(photo)
        assert out is not photo
        np.testing.assert_array_equal(out, photo)


def test_control_point_exactly_on_a_grid_node():
    # Roi origin 0 and step 8: (400, 400) is a node of the coarse and the fine lattice.
    src = np.array([[400.0, 400.0], [300.0, 300.0], [500.0, 300.0], [300.0, 500.0], [500.0, 500.0]])
    dst = src.copy()
    dst[0] = [406.0, 400.0]
    field = solve_backward((1024, 1024), src, dst, roi=(0, 0, 1024, 1024))
    assert np.isfinite(field.map_x).all() and np.isfinite(field.map_y).all()
    np.testing.assert_allclose(field.sample(dst[:1]), src[:1], atol=1e-6)


def test_composition_equals_sequential_application():
    a_src, a_dst = _eye_like(1.2, (400.0, 420.0))
    b_src, b_dst = _eye_like(0.85, (430.0, 440.0))
    a = solve_backward((1024, 1024), a_src, a_dst)
    b = solve_backward((1024, 1024), b_src, b_dst)
    both = a.then(b)
    # At pixel centres (where images are sampled) the composed map equals a(b(x)) up to
    # cv2.remap's 1/32 px position quantisation: at most 1/64 px times a's displacement gradient.
    pts = np.random.default_rng(0).integers(250, 600, (2000, 2)).astype(np.float64)
    dx, dy = a.displacement()
    gradient = max(np.abs(np.gradient(dx)).max(), np.abs(np.gradient(dy)).max())
    bound = 2 * gradient / 64 + 1e-4  # two components, each off by at most gradient / 64
    error = np.abs(both.sample(pts) - a.sample(b.sample(pts))).max()
    assert error <= bound, (error, bound)
    assert WarpField.identity((1024, 1024)).then(a) is a and a.then(WarpField.identity((1024, 1024))) is a


def test_reframe_matches_solving_in_the_other_frame():
    src, dst = _eye_like()
    field = solve_backward((1024, 1024), src, dst)
    # New frame: the same content at half scale, rotated by 10 degrees, shifted.
    to_new = cv2.getRotationMatrix2D((512.0, 512.0), 10.0, 0.5)
    to_new[:, 2] += [-100.0, -80.0]
    back = cv2.invertAffineTransform(to_new)  # new frame -> field frame
    reframed = field.reframe(back, (600, 700))
    mapped = lambda p: p @ to_new[:, :2].T + to_new[:, 2]  # noqa: E731
    direct = solve_backward((600, 700), mapped(src), mapped(dst))
    inner = mapped(src[:16])
    np.testing.assert_allclose(reframed.sample(inner), direct.sample(inner), atol=0.1)
    np.testing.assert_allclose(reframed.forward_points(mapped(src)), mapped(dst), atol=0.1)


def test_min_jacobian_detects_a_fold():
    src, dst = _eye_like(1.25)
    assert solve_backward((1024, 1024), src, dst).min_jacobian() > 0.3
    # Drag one contour point far across the fixed ring: the image folds over.
    folded = dst.copy()
    folded[0] = src[16] + [150.0, 0.0]
    assert solve_backward((1024, 1024), src, folded).min_jacobian() < 0


def test_displacement_magnitude_marks_the_moved_area():
    src, dst = _eye_like()
    mag = solve_backward((1024, 1024), src, dst).displacement_magnitude()
    assert mag.shape == (1024, 1024)
    assert mag[420, 440] > 5.0  # on the contour, moved by about 10 px
    assert mag[0, 0] == 0.0


def test_bad_arguments_raise():
    src, dst = _eye_like()
    with pytest.raises(ValueError, match="step"):
        solve_backward((1024, 1024), src, dst, step=0)
    with pytest.raises(ValueError, match="shape"):
        solve_backward((0, 10), src, dst)
    field = solve_backward((1024, 1024), src, dst)
    with pytest.raises(ValueError, match="does not match"):
        field.apply(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="singular"):
        field.reframe(np.zeros((2, 3)), (10, 10))


def test_roi_on_the_image_border_is_not_tapered_unless_the_image_is_a_window():
    # An edit near the bottom edge: its box (controls plus margin) is clipped by the image.
    src, dst = _eye_like(1.25, centre=(400.0, 900.0))
    open_field = solve_backward((1024, 1024), src, dst)
    assert open_field.roi[3] == 1024
    dx, dy = open_field.displacement()
    assert np.abs(dy[-1]).max() > 1.0  # the warp reaches the border unsquashed
    dense = solve_backward_dense((1024, 1024), src, dst)
    assert _max_error(open_field, dense) < 0.25
    window = solve_backward((1024, 1024), src, dst, window=True)
    wx, wy = window.displacement()
    assert np.abs(wy[-1]).max() < 1e-6  # continuous with the larger image around the window


def test_jacobian_stats_count_folds_and_pinches():
    src, dst = _eye_like(1.25)
    smooth = solve_backward((1024, 1024), src, dst).jacobian
    assert smooth.fold_count == 0 and 0 < smooth.min_jacobian < 1 < smooth.max_jacobian < 3
    folded = dst.copy()
    folded[0] = src[16] + [150.0, 0.0]
    stats = solve_backward((1024, 1024), src, folded).jacobian
    assert stats.fold_count > 0 and stats.min_jacobian < 0
    assert WarpField.identity((8, 8)).jacobian == JacobianStats(0, 1.0, 1.0)


def test_a_clipped_window_taper_still_reaches_zero_at_the_border():
    """Controls that cross the window's side (here its bottom) are attenuated so the field
    is 0 on the border: pasted into the larger photo it has no seam there."""
    src, dst = _eye_like(1.25, centre=(500.0, 1000.0))  # contour and ring cross y = 1023
    window = solve_backward((1024, 1024), src, dst, window=True)
    dx, dy = window.displacement()
    assert window.roi[3] == 1024 and np.hypot(dx, dy).max() > 3.0
    assert np.hypot(dx[-1], dy[-1]).max() < 1e-6
    # The window is the middle of a photo twice its size; continuity across its border.
    photo = window.reframe(np.array([[1.0, 0.0, -512.0], [0.0, 1.0, -512.0]]), (2048, 2048))
    px, py = photo.displacement()
    jump = max(np.abs(np.diff(px, axis=0)).max(), np.abs(np.diff(py, axis=0)).max(),
               np.abs(np.diff(px, axis=1)).max(), np.abs(np.diff(py, axis=1)).max())  # fmt: skip
    assert jump < 0.5, jump
    assert photo.jacobian.fold_count == 0


def test_falloff_bounds_the_reach_and_hold_keeps_a_region_exactly():
    src, dst = _eye_like(1.25)
    falloff = Falloff(60.0, 120.0)
    moving = np.vstack([src[:16], dst[:16]])
    field = solve_backward((1024, 1024), src, dst, falloff=falloff)
    gx, gy = np.meshgrid(np.arange(field.roi[0], field.roi[2]), np.arange(field.roi[1], field.roi[3]))
    dist = np.hypot(gx[..., None] - moving[:, 0], gy[..., None] - moving[:, 1]).min(axis=-1)
    dx, dy = field.displacement()
    # Exactly 0 beyond the reach (plus the 1.5 grid steps the bilinear upsampling spans).
    assert np.hypot(dx, dy)[dist > falloff.outer + 12].max() == 0.0
    np.testing.assert_allclose(field.sample(dst[:16]), src[:16], atol=0.15)
    # Hold a box beside the contour: exactly still inside (the margin in), smooth outside.
    box = np.array([[450.0, 380.0], [520.0, 380.0], [520.0, 460.0], [450.0, 460.0]])
    held = solve_backward((1024, 1024), src, dst, falloff=falloff, hold=Hold((box,), margin=2.0, feather=20.0))
    hx, hy = held.displacement()
    inside = (gx >= 450) & (gx <= 520) & (gy >= 380) & (gy <= 460)
    assert np.hypot(dx, dy)[inside].max() > 1.0 and np.hypot(hx, hy)[inside].max() == 0.0
    assert held.jacobian.fold_count == 0
