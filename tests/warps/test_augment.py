"""Self-augmentation transforms on real photos: sampling contracts and alignment."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
import ultralytics
from scipy import ndimage

from pipeline.configtools import ConfigError, from_dict
from pipeline.seeding import rng_for
from warps.augment import (
    AugmentError,
    ProfessionalAugmentSpec,
    SimulatedAugmentSpec,
    SpatialTransform,
    apply_image,
    apply_mask,
    apply_points,
    build_transform,
    inverse,
    sample_transform,
    transform_points,
)

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
BUS = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
# MediaPipe face-mesh extent on the astronaut (512x512), rounded outwards.
ASTRONAUT_FACE_BOX = (179.0, 71.0, 271.0, 178.0)
# yolo11n-pose person boxes on bus.jpg (810x1080), rounded outwards: the left-most
# pedestrian (touching the left edge) and the one in the middle.
BUS_PERSON_BOX = (48.0, 399.0, 244.0, 906.0)
BUS_MIDDLE_PERSON_BOX = (222.0, 405.0, 344.0, 860.0)
# OpenCV's bilinear warps round source positions to a 1/32 px grid (INTER_BITS = 5) from
# 1/1024 px fixed-point coordinates: the floor for image-vs-point agreement, per source axis.
OPENCV_SUBPIXEL_FLOOR = 1 / 64 + 1 / 1024 + 1e-3
TOL = 1e-6


def _load_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return _load_rgb(ASTRONAUT)


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    return _load_rgb(BUS)


def _samples(n, size, spec, seed=0, **kwargs):
    return [
        sample_transform(rng_for(seed, "view", "test", i), size, spec, **kwargs) for i in range(n)
    ]


def _output_corners(t: SpatialTransform) -> np.ndarray:
    w, h = t.size
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)


def _assert_inside_image(t: SpatialTransform) -> None:
    footprint = transform_points(inverse(t), _output_corners(t))
    width, height = t.source_size
    assert footprint.min() >= -TOL
    assert (footprint <= np.array([width - 1, height - 1]) + TOL).all()


def _assert_contains(t: SpatialTransform, box) -> None:
    x0, y0, x1, y1 = box
    mapped = apply_points(t, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    assert mapped.min() >= -TOL
    assert (mapped <= np.array(t.size) - 1 + TOL).all()


def _coordinate_error(
    t: SpatialTransform, source_shape: tuple[int, int], points_t: SpatialTransform | None = None
) -> np.ndarray:
    """Per output pixel and axis: |source coords warped as an image by ``t`` - the inverse
    of ``points_t`` (default ``t``) at that pixel|, in source pixels: where the pixel's
    content came from vs where the point map says it came from."""
    points_t = t if points_t is None else points_t
    height, width = source_shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    warped = apply_image(t, np.dstack([xs, ys])).astype(np.float64)
    out_h, out_w = warped.shape[:2]
    oy, ox = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    pixels = np.stack([ox.ravel(), oy.ravel()], axis=1)
    return np.abs(warped.reshape(-1, 2) - transform_points(inverse(points_t), pixels))


def _bilinear(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact float64 bilinear samples of an (H, W, C) image at (N, 2) (x, y) points."""
    coords = [points[:, 1], points[:, 0]]
    return np.stack(
        [ndimage.map_coordinates(image[..., c].astype(np.float64), coords, order=1)
         for c in range(image.shape[2])], axis=1,
    )


@pytest.mark.parametrize(
    ("spec", "size"),
    [(SimulatedAugmentSpec(), (810, 1080)), (ProfessionalAugmentSpec(), (5400, 7200))],
)
def test_same_seed_gives_identical_transforms_and_seeds_differ(spec, size):
    first = _samples(8, size, spec, seed=11)
    again = _samples(8, size, spec, seed=11)
    assert first == again
    assert [t.matrix.tobytes() for t in first] == [t.matrix.tobytes() for t in again]
    assert len({json.dumps(t.to_record()) for t in first}) == 8
    other_seed = _samples(8, size, spec, seed=12)
    assert all(a != b for a, b in zip(first, other_seed))


def test_record_round_trips_exactly_through_json():
    for t in _samples(50, (810, 1080), SimulatedAugmentSpec(max_long_side=512)) + _samples(
        50, (5400, 7200), ProfessionalAugmentSpec(), must_contain=(400, 2700, 1600, 6000)
    ):
        back = SpatialTransform.from_record(json.loads(json.dumps(t.to_record())))
        assert back == t
        assert back.matrix.tobytes() == t.matrix.tobytes()
        assert back.crop_size == t.crop_size and back.centre == t.centre and back.scale == t.scale
    with pytest.raises(ValueError, match="missing"):
        SpatialTransform.from_record({k: v for k, v in t.to_record().items() if k != "scale"})
    with pytest.raises(ValueError):
        t.matrix[0, 0] = 2.0  # read-only


@pytest.mark.parametrize("size", [(512, 512), (810, 1080)])
def test_simulated_samples_stay_within_spec(size):
    spec = SimulatedAugmentSpec()
    transforms = _samples(2000, size, spec)
    width, height = size
    area = np.array([t.crop_size[0] * t.crop_size[1] / (width * height) for t in transforms])
    aspect = np.array([t.crop_size[0] / t.crop_size[1] for t in transforms])
    assert area.min() >= 0.55 and area.max() <= 1.0
    assert area.min() < 0.6 and area.max() > 0.85
    assert aspect.min() >= 1 / 3 and aspect.max() <= 3.0
    assert aspect.max() / aspect.min() > 2.5
    assert {t.angle_deg for t in transforms} == set(spec.angles_deg)
    assert abs(np.mean([t.flip for t in transforms]) - 0.5) < 0.05
    for t in transforms:
        assert t.scale == 1.0 and t.crop_size == (float(t.size[0]), float(t.size[1]))
        _assert_inside_image(t)


def test_simulated_max_long_side_scales_down_and_keeps_spec(bus):
    spec = SimulatedAugmentSpec(max_long_side=256)
    for t in _samples(300, (810, 1080), spec):
        assert max(t.size) <= 256 and t.scale <= 1.0
        assert 0.55 <= t.crop_size[0] * t.crop_size[1] / (810 * 1080) <= 1.0
        _assert_inside_image(t)
    assert apply_image(t, bus).shape == (t.size[1], t.size[0], 3)


@pytest.mark.parametrize(
    ("size", "box"), [((512, 512), ASTRONAUT_FACE_BOX), ((810, 1080), BUS_PERSON_BOX)]
)
def test_must_contain_box_is_always_inside_the_crop(size, box):
    transforms = _samples(500, size, SimulatedAugmentSpec(), must_contain=box)
    for t in transforms:
        _assert_contains(t, box)
        _assert_inside_image(t)
    centres = np.array([t.centre for t in transforms])
    assert centres.std(axis=0).min() > 5.0  # positions vary, not one forced crop


def test_inverse_round_trips_points():
    rng = np.random.default_rng(3)
    for t in _samples(100, (810, 1080), SimulatedAugmentSpec()) + _samples(
        100, (5400, 7200), ProfessionalAugmentSpec()
    ):
        points = rng.uniform(0, t.source_size, size=(256, 2))
        back = transform_points(inverse(t), apply_points(t, points))
        assert np.abs(back - points).max() <= 1e-6
        np.testing.assert_allclose(inverse(t), cv2.invertAffineTransform(t.matrix), atol=1e-9)


def test_warped_coordinate_maps_land_where_apply_points_says(bus):
    height, width = bus.shape[:2]
    transforms = _samples(6, (width, height), SimulatedAugmentSpec()) + [
        build_transform((width, height), (500, 700), (405.3, 540.7), 1.0, 15.0, True),
        build_transform((width, height), (300, 420), (400.0, 520.0), 0.5, -10.0, False),
    ]
    for t in transforms:
        error = _coordinate_error(t, (height, width))
        assert error.max() <= OPENCV_SUBPIXEL_FLOOR
        assert error.mean() <= 0.01
    # The measurement can fail: points mapped with a matrix off by 0.05 px are caught.
    record = transforms[-1].to_record()
    record["matrix"][0][2] += 0.025  # output px at scale 0.5: 0.05 source px
    off = SpatialTransform.from_record(record)
    assert _coordinate_error(transforms[-1], (height, width), off)[:, 0].mean() > 0.04


def test_photo_content_follows_apply_points(astronaut):
    smooth = cv2.GaussianBlur(astronaut.astype(np.float32), (0, 0), 2.0)
    rng = np.random.default_rng(5)
    for t in _samples(5, (512, 512), SimulatedAugmentSpec(), must_contain=ASTRONAUT_FACE_BOX):
        warped = apply_image(t, smooth)
        pixels = np.stack([rng.integers(0, t.size[0], 2000), rng.integers(0, t.size[1], 2000)], 1)
        source_points = transform_points(inverse(t), pixels)
        np.testing.assert_allclose(apply_points(t, source_points), pixels, atol=1e-9)
        shown = warped[pixels[:, 1], pixels[:, 0]].astype(np.float64)
        aligned = np.abs(shown - _bilinear(smooth, source_points)).mean()
        shifted = np.abs(shown - _bilinear(smooth, source_points + (0.1, 0.0))).mean()
        assert aligned < 0.3 * shifted


def _liquified_pair(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(before, after, edit mask): a smooth bulge of radius 40 px at the astronaut's eyes."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centre, radius = np.float32([225.0, 115.0]), 40.0
    dist = np.hypot(xs - centre[0], ys - centre[1])
    pull = np.where(dist < radius, 0.3 * (1 - dist / radius) ** 2, 0.0).astype(np.float32)
    after = cv2.remap(
        image, xs - pull * (xs - centre[0]), ys - pull * (ys - centre[1]), cv2.INTER_LINEAR
    )
    mask = np.where(dist < radius + 2, 255, 0).astype(np.uint8)
    return image, after, mask


def test_before_after_pair_stays_aligned_under_the_same_transform(astronaut):
    before, after, mask = _liquified_pair(astronaut)
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 0
    assert changed.any() and not changed[mask == 0].any()
    for t in _samples(6, (512, 512), SimulatedAugmentSpec(), must_contain=ASTRONAUT_FACE_BOX):
        view_before, view_after = apply_image(t, before), apply_image(t, after)
        region = cv2.dilate(apply_mask(t, mask, binary=True), np.ones((5, 5), np.uint8))
        assert np.array_equal(view_before[region == 0], view_after[region == 0])
        assert not np.array_equal(view_before[region > 0], view_after[region > 0])
        difference = apply_image(t, after.astype(np.float32) - before.astype(np.float32))
        np.testing.assert_allclose(
            view_after.astype(np.float32) - view_before.astype(np.float32), difference, atol=1.0
        )
        float_difference = apply_image(t, after.astype(np.float32)) - apply_image(
            t, before.astype(np.float32)
        )
        np.testing.assert_allclose(float_difference, difference, atol=1e-3)


def test_crops_never_sample_outside_the_image(bus, astronaut):
    def border_free(t, image):
        reflected = apply_image(t, image)
        for value in (0, 255):
            constant = cv2.warpAffine(
                image, t.matrix, t.size, flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=(value, value, value),
            )
            if not np.array_equal(reflected, constant):
                return False
        return True

    for t in _samples(20, (810, 1080), SimulatedAugmentSpec(), must_contain=BUS_PERSON_BOX):
        assert border_free(t, bus)
    for t in _samples(10, (512, 512), ProfessionalAugmentSpec()):
        assert border_free(t, astronaut)
    # The check can fail: the same crop pushed 1 px past the left edge reads the border.
    t = _samples(1, (810, 1080), SimulatedAugmentSpec(angles_deg=(0.0,)))[0]
    left_edge_x = transform_points(inverse(t), _output_corners(t))[:, 0].min()
    shifted = build_transform(
        t.source_size, t.size, (t.centre[0] - left_edge_x - 1.0, t.centre[1]), 1.0, 0.0, t.flip
    )
    assert not border_free(shifted, bus)


def test_flip_mirrors_about_the_output_centre_line(bus):
    args = ((810, 1080), (401, 600), (400.25, 530.5), 1.0, 10.0)
    plain, flipped = build_transform(*args, False), build_transform(*args, True)
    points = np.random.default_rng(0).uniform(100, 700, size=(100, 2))
    a, b = apply_points(plain, points), apply_points(flipped, points)
    np.testing.assert_allclose(b[:, 0], 400 - a[:, 0], atol=1e-9)
    np.testing.assert_allclose(b[:, 1], a[:, 1], atol=1e-9)
    mirrored = apply_image(plain, bus)[:, ::-1].astype(int)
    assert np.abs(apply_image(flipped, bus).astype(int) - mirrored).mean() < 0.5
    assert np.abs(apply_image(plain, bus).astype(int) - mirrored).mean() > 10


def test_professional_crops_on_an_8k_photo(bus):
    big = cv2.resize(bus, (5400, 7200), interpolation=cv2.INTER_LINEAR)
    factor = 5400 / 810
    person = tuple(v * factor for v in BUS_MIDDLE_PERSON_BOX)
    spec = ProfessionalAugmentSpec()
    transforms = _samples(300, (5400, 7200), spec, must_contain=person)
    for t in transforms:
        assert t.size[0] % 32 == 0 and t.size[1] % 32 == 0
        assert abs(t.size[0] * t.size[1] / 2_200_000 - 1) <= 0.05
        assert t.scale <= 1.0
        _assert_inside_image(t)
        _assert_contains(t, person)
    assert {t.angle_deg for t in transforms} == set(spec.angles_deg)
    assert abs(np.mean([t.flip for t in transforms]) - 0.5) < 0.1
    view = apply_image(transforms[0], big)
    assert view.shape == (transforms[0].size[1], transforms[0].size[0], 3)


def test_professional_crop_of_a_small_photo_is_the_largest_native_one(astronaut):
    transforms = _samples(200, (512, 512), ProfessionalAugmentSpec())
    for t in transforms:
        assert t.scale == 1.0
        assert t.size[0] % 32 == 0 and t.size[1] % 32 == 0
        _assert_inside_image(t)
    straight = [t for t in transforms if t.angle_deg == 0.0]
    assert straight and all(max(t.size) >= 512 - 32 for t in straight)
    with_face = _samples(50, (512, 512), ProfessionalAugmentSpec(), must_contain=ASTRONAUT_FACE_BOX)
    for t in with_face:
        _assert_contains(t, ASTRONAUT_FACE_BOX)
    width, height = with_face[0].size
    assert apply_image(with_face[0], astronaut).shape == (height, width, 3)


def test_masks_stay_soft_unless_binary(astronaut):
    _, _, mask = _liquified_pair(astronaut)
    t = build_transform((512, 512), (400, 300), (230.4, 150.6), 1.0, 15.0, False)
    soft = apply_mask(t, mask)
    hard = apply_mask(t, mask, binary=True)
    assert ((soft > 0) & (soft < 255)).any()
    assert set(np.unique(hard)) == {0, 255}
    assert abs((hard > 0).sum() - soft.sum() / 255) < 0.02 * (hard > 0).sum()
    soft_float = apply_mask(t, mask.astype(np.float32) / 255)
    np.testing.assert_allclose(soft_float * 255, soft, atol=1.0)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (SimulatedAugmentSpec, {"area_fraction": (0.0, 1.0)}, "area_fraction"),
        (SimulatedAugmentSpec, {"area_fraction": (0.8, 0.6)}, "area_fraction"),
        (SimulatedAugmentSpec, {"area_fraction": (0.5, 1.2)}, "area_fraction"),
        (SimulatedAugmentSpec, {"aspect_ratio": (0.0, 2.0)}, "aspect_ratio"),
        (SimulatedAugmentSpec, {"angles_deg": ()}, "angles_deg"),
        (SimulatedAugmentSpec, {"angles_deg": (0.0, 95.0)}, "angles_deg"),
        (SimulatedAugmentSpec, {"flip_probability": 1.5}, "flip_probability"),
        (SimulatedAugmentSpec, {"max_long_side": 0}, "max_long_side"),
        (ProfessionalAugmentSpec, {"target_pixels": 500}, "target_pixels"),
        (ProfessionalAugmentSpec, {"side_multiple": 0}, "side_multiple"),
        (ProfessionalAugmentSpec, {"pixel_tolerance": 0.0}, "pixel_tolerance"),
        (ProfessionalAugmentSpec, {"aspect_ratio": (2.0, 1.0)}, "aspect_ratio"),
    ],
)
def test_invalid_specs_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_specs_build_from_yaml_dicts():
    spec = from_dict(
        SimulatedAugmentSpec,
        {"area_fraction": [0.6, 0.9], "angles_deg": [-5, 0, 5], "max_long_side": 1024},
    )
    assert spec == SimulatedAugmentSpec(
        area_fraction=(0.6, 0.9), angles_deg=(-5.0, 0.0, 5.0), max_long_side=1024
    )
    assert from_dict(ProfessionalAugmentSpec, {"angles_deg": [-15, 15]}).angles_deg == (-15.0, 15.0)
    with pytest.raises(ConfigError, match="flip_probability"):
        from_dict(ProfessionalAugmentSpec, {"flip_probability": 2.0})


def test_impossible_requests_raise_clear_errors():
    full = (0.0, 0.0, 511.0, 511.0)
    with pytest.raises(AugmentError, match="no_centre_fits") as caught:
        sample_transform(rng_for(0, "x"), (512, 512), SimulatedAugmentSpec(angles_deg=(10.0,)),
                         must_contain=full)
    assert caught.value.code == "no_admissible_crop" and "512x512" in str(caught.value)
    with pytest.raises(AugmentError, match="box_too_large"):
        sample_transform(rng_for(0, "x"), (512, 512), ProfessionalAugmentSpec(angles_deg=(20.0,)),
                         must_contain=full)
    with pytest.raises(AugmentError) as caught:
        sample_transform(rng_for(0, "x"), (512, 512), SimulatedAugmentSpec(),
                         must_contain=(100.0, 100.0, 520.0, 300.0))
    assert caught.value.code == "box_outside_image"
    with pytest.raises(ValueError, match="x1 < x0"):
        sample_transform(rng_for(0, "x"), (512, 512), SimulatedAugmentSpec(),
                         must_contain=(300.0, 100.0, 200.0, 300.0))
    with pytest.raises(ValueError, match="image_size"):
        sample_transform(rng_for(0, "x"), (0, 512), SimulatedAugmentSpec())
    with pytest.raises(TypeError, match="Generator"):
        sample_transform(np.random.RandomState(0), (512, 512), SimulatedAugmentSpec())


def test_apply_functions_reject_mismatched_inputs(bus, astronaut):
    t = _samples(1, (810, 1080), SimulatedAugmentSpec())[0]
    with pytest.raises(ValueError, match="sampled for 810x1080"):
        apply_image(t, astronaut)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        apply_points(t, np.zeros(3))
    with pytest.raises(ValueError, match="binary=True"):
        apply_mask(t, np.zeros((1080, 810), np.float32), binary=True)
    with pytest.raises(ValueError, match="interpolation"):
        apply_image(t, bus, interpolation=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def test_unrotated_native_crops_are_exact_pixel_copies(bus):
    spec = SimulatedAugmentSpec(angles_deg=(0.0,))
    for t in _samples(8, (810, 1080), spec, must_contain=BUS_MIDDLE_PERSON_BOX):
        x0, y0 = np.rint(transform_points(inverse(t), np.zeros((1, 2)))[0]).astype(int)
        w, h = t.size
        crop = bus[y0:y0 + h, x0 - w + 1:x0 + 1][:, ::-1] if t.flip else bus[y0:y0 + h, x0:x0 + w]
        assert np.array_equal(apply_image(t, bus), crop)
        assert np.abs(_coordinate_error(t, bus.shape[:2])).max() <= 1e-3
