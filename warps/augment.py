"""Self-augmentation: one random spatial transform applied identically to a
before/after pair, its landmarks and its masks (Xq = A(Xs), Yq = A(Xt)).

Coordinates are pixel (x, y) floats with pixel centres at integers (OpenCV).
A :class:`SpatialTransform` holds one 2x3 float64 matrix mapping *source* pixel
coords to *output* pixel coords. Images and masks go through the same
``cv2.warpAffine`` call (that matrix, BORDER_REFLECT_101), points through the
same affine map in float64, so every view of one edit stays aligned.

Crop geometry, stated on pixel centres:
- the crop lies *inside the image* when every output pixel centre samples a
  source point in [0, W - 1] x [0, H - 1]: no border pixel is ever invented;
- the crop *contains a box* (x0, y0, x1, y1) when the box's four corners map
  into the output's pixel-centre rectangle [0, out_w - 1] x [0, out_h - 1];
- the crop size (w, h) in source pixels is ``size / scale`` and its centre is
  the source point shown at the output centre ((out_w - 1) / 2, (out_h - 1) / 2).

A positive ``angle_deg`` turns the content counter-clockwise on screen (the
``cv2.getRotationMatrix2D`` convention); ``flip`` mirrors the output about its
vertical centre line, x -> (out_w - 1) - x, inside the same matrix.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]

_INTERPOLATIONS = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)
_RECORD_KEYS = (
    "matrix", "size", "source_size", "centre", "crop_size", "angle_deg", "flip", "scale",
)


class AugmentError(ValueError):
    """No admissible crop: ``code`` is ``"box_outside_image"`` or ``"no_admissible_crop"``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, eq=False)
class SpatialTransform:
    """One sampled view: ``matrix`` (2, 3) float64 maps source -> output pixel coords.

    ``size`` and ``source_size`` are (width, height); ``centre`` and ``crop_size``
    are in source pixels; ``scale`` is output pixels per source pixel. Equality
    compares :meth:`to_record` (floats exactly). The matrix is read-only.
    """

    matrix: np.ndarray
    size: tuple[int, int]
    source_size: tuple[int, int]
    centre: tuple[float, float]
    crop_size: tuple[float, float]
    angle_deg: float
    flip: bool
    scale: float

    def __post_init__(self) -> None:
        matrix = np.array(self.matrix, dtype=np.float64)
        if matrix.shape != (2, 3) or not np.isfinite(matrix).all():
            raise ValueError(f"matrix must be a finite (2, 3) array, got shape {matrix.shape}")
        if abs(np.linalg.det(matrix[:, :2])) < 1e-12:
            raise ValueError("matrix is singular: its 2x2 linear part has determinant ~0")
        matrix.setflags(write=False)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "size", _positive_size("size", self.size))
        object.__setattr__(self, "source_size", _positive_size("source_size", self.source_size))
        object.__setattr__(self, "centre", _float_pair("centre", self.centre))
        object.__setattr__(self, "crop_size", _float_pair("crop_size", self.crop_size))
        object.__setattr__(self, "angle_deg", float(self.angle_deg))
        object.__setattr__(self, "scale", float(self.scale))
        if not isinstance(self.flip, (bool, np.bool_)):
            raise ValueError(f"flip must be a bool, got {self.flip!r}")
        object.__setattr__(self, "flip", bool(self.flip))
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a positive finite float, got {self.scale}")

    def to_record(self) -> dict:
        """JSON-safe dict (lists, Python floats, ints, bools); :meth:`from_record` inverts it."""
        return {
            "matrix": self.matrix.tolist(),
            "size": list(self.size),
            "source_size": list(self.source_size),
            "centre": list(self.centre),
            "crop_size": list(self.crop_size),
            "angle_deg": self.angle_deg,
            "flip": self.flip,
            "scale": self.scale,
        }

    @classmethod
    def from_record(cls, record: dict) -> SpatialTransform:
        """Rebuild a transform from :meth:`to_record` output (the matrix is taken as stored)."""
        missing = sorted(set(_RECORD_KEYS) - set(record))
        unknown = sorted(set(record) - set(_RECORD_KEYS))
        if missing or unknown:
            raise ValueError(f"bad transform record: missing {missing}, unknown {unknown}")
        return cls(**{key: record[key] for key in _RECORD_KEYS})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpatialTransform):
            return NotImplemented
        return self.to_record() == other.to_record()

    def __hash__(self) -> int:
        return hash((tuple(self.matrix.ravel().tolist()), self.size, self.source_size, self.flip))


@dataclass(frozen=True)
class SimulatedAugmentSpec:
    """Reference re-crops: area fraction of the image, aspect (w / h, log-uniform),
    rotation from ``angles_deg``, horizontal flip; output at source resolution
    unless its long side exceeds ``max_long_side`` (then scaled down to it)."""

    area_fraction: tuple[float, float] = (0.55, 1.0)
    aspect_ratio: tuple[float, float] = (1 / 3, 3.0)
    angles_deg: tuple[float, ...] = (-15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0)
    flip_probability: float = 0.5
    max_long_side: int | None = None

    def __post_init__(self) -> None:
        _check_interval("area_fraction", self.area_fraction, upper=1.0)
        _check_interval("aspect_ratio", self.aspect_ratio)
        _check_angles(self.angles_deg)
        _check_probability(self.flip_probability)
        if self.max_long_side is not None and (
            not isinstance(self.max_long_side, int) or isinstance(self.max_long_side, bool)
            or self.max_long_side < 1
        ):
            raise ValueError(
                f"max_long_side must be None or an int >= 1, got {self.max_long_side!r}"
            )


@dataclass(frozen=True)
class ProfessionalAugmentSpec:
    """Professional re-crops: output of about ``target_pixels`` (within
    ``pixel_tolerance``, relative) with sides multiples of ``side_multiple``;
    the crop is never upsampled (scale <= 1) and is drawn log-uniformly between
    the smallest crop that holds the required box and the largest that fits."""

    target_pixels: int = 2_200_000
    pixel_tolerance: float = 0.05
    side_multiple: int = 32
    aspect_ratio: tuple[float, float] = (0.5, 2.0)
    angles_deg: tuple[float, ...] = (-20.0, -15.0, -10.0, 0.0, 10.0, 15.0, 20.0)
    flip_probability: float = 0.5

    def __post_init__(self) -> None:
        for name in ("target_pixels", "side_multiple"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.target_pixels < self.side_multiple**2:
            raise ValueError(
                f"target_pixels {self.target_pixels} is below one {self.side_multiple}^2 tile"
            )
        if not 0.0 < self.pixel_tolerance < 1.0:
            raise ValueError(f"pixel_tolerance must be in (0, 1), got {self.pixel_tolerance}")
        _check_interval("aspect_ratio", self.aspect_ratio)
        _check_angles(self.angles_deg)
        _check_probability(self.flip_probability)


AugmentSpec = SimulatedAugmentSpec | ProfessionalAugmentSpec


@dataclass(frozen=True)
class _Proposal:
    size: tuple[int, int]
    scale: float
    angle_deg: float


def build_transform(
    source_size: tuple[int, int],
    size: tuple[int, int],
    centre: tuple[float, float],
    scale: float,
    angle_deg: float,
    flip: bool,
) -> SpatialTransform:
    """The transform showing source ``centre`` at the output centre, rotated and scaled.

    No admissibility check: :func:`sample_transform` only passes admissible crops.
    """
    out_w, out_h = size
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    linear = scale * np.array([[cos, sin], [-sin, cos]], dtype=np.float64)
    out_centre = np.array([(out_w - 1) / 2.0, (out_h - 1) / 2.0])
    matrix = np.hstack([linear, (out_centre - linear @ np.asarray(centre, np.float64))[:, None]])
    if flip:
        matrix[0] = -matrix[0]
        matrix[0, 2] += out_w - 1
    return SpatialTransform(
        matrix=matrix,
        size=(int(out_w), int(out_h)),
        source_size=source_size,
        centre=(float(centre[0]), float(centre[1])),
        crop_size=(out_w / scale, out_h / scale),
        angle_deg=float(angle_deg),
        flip=bool(flip),
        scale=float(scale),
    )


def sample_transform(
    rng: np.random.Generator,
    image_size: tuple[int, int],
    spec: AugmentSpec,
    *,
    must_contain: Box | None = None,
    max_tries: int = 100,
) -> SpatialTransform:
    """Draw one admissible view of an image of ``image_size`` (width, height).

    The crop lies inside the image and contains ``must_contain`` (x0, y0, x1, y1)
    when given (see the module docstring for both definitions). The flip is drawn
    once; size, aspect and angle are drawn jointly and redrawn when they admit no
    crop, at most ``max_tries`` times; the centre is uniform over the admissible
    centres (for unrotated native-resolution crops: over those at whole-pixel
    offsets, so the view is an exact pixel copy). Raises :class:`AugmentError`
    with the rejection counts per reason when no admissible crop was found.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    if not isinstance(spec, (SimulatedAugmentSpec, ProfessionalAugmentSpec)):
        raise TypeError(f"spec must be an augment spec, got {type(spec).__name__}")
    if not isinstance(max_tries, int) or max_tries < 1:
        raise ValueError(f"max_tries must be an int >= 1, got {max_tries!r}")
    width, height = _positive_size("image_size", image_size)
    box = None if must_contain is None else _checked_box(must_contain, width, height)
    flip = bool(rng.random() < spec.flip_probability)
    rejections: Counter[str] = Counter()
    for _ in range(max_tries):
        if isinstance(spec, SimulatedAugmentSpec):
            proposal = _propose_simulated(rng, spec, width, height)
        else:
            proposal = _propose_professional(rng, spec, width, height, box)
        if isinstance(proposal, str):
            rejections[proposal] += 1
            continue
        centre = _sample_centre(rng, proposal, width, height, box)
        if centre is None:
            rejections["no_centre_fits"] += 1
            continue
        return build_transform(
            (width, height), proposal.size, centre, proposal.scale, proposal.angle_deg, flip
        )
    counts = ", ".join(f"{reason}={n}" for reason, n in sorted(rejections.items()))
    raise AugmentError(
        "no_admissible_crop",
        f"no {type(spec).__name__} crop of a {width}x{height} image"
        f"{'' if box is None else f' containing box {box}'} in {max_tries} tries ({counts})",
    )


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) float (x, y) points through a (2, 3) affine matrix; (N, 2) float64."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"matrix must be (2, 3), got {matrix.shape}")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got shape {pts.shape}")
    return pts @ matrix[:, :2].T + matrix[:, 2]


def apply_points(t: SpatialTransform, points: np.ndarray) -> np.ndarray:
    """Where content at source ``points`` (N, 2) lands in the output; (N, 2) float64."""
    return transform_points(t.matrix, points)


def inverse(t: SpatialTransform) -> np.ndarray:
    """The (2, 3) float64 matrix mapping output pixel coords back to source coords."""
    linear_inv = np.linalg.inv(t.matrix[:, :2])
    return np.hstack([linear_inv, (-linear_inv @ t.matrix[:, 2])[:, None]])


def apply_image(
    t: SpatialTransform, image: np.ndarray, *, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """``cv2.warpAffine`` of an (H, W[, C]) image: ``t.matrix``, ``t.size``, BORDER_REFLECT_101."""
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be cv2 INTER_NEAREST/LINEAR/CUBIC/LANCZOS4, got {interpolation}"
        )
    _check_source(t, image, "image", ndims=(2, 3))
    return cv2.warpAffine(
        image, t.matrix, t.size, flags=interpolation, borderMode=cv2.BORDER_REFLECT_101
    )


def apply_mask(t: SpatialTransform, mask: np.ndarray, *, binary: bool = False) -> np.ndarray:
    """Warp an (H, W) uint8 or float mask exactly like :func:`apply_image` (bilinear).

    The result is soft at region edges. ``binary=True`` (uint8 0/255 masks only)
    re-thresholds it: 255 where the warped value is >= 128, else 0.
    """
    _check_source(t, mask, "mask", ndims=(2,))
    if mask.dtype not in (np.uint8, np.float32, np.float64):
        raise ValueError(f"mask dtype must be uint8, float32 or float64, got {mask.dtype}")
    if binary and mask.dtype != np.uint8:
        raise ValueError(f"binary=True needs a uint8 0/255 mask, got {mask.dtype}")
    warped = apply_image(t, mask)
    if binary:
        return cv2.threshold(warped, 127, 255, cv2.THRESH_BINARY)[1]
    return warped


def _propose_simulated(
    rng: np.random.Generator, spec: SimulatedAugmentSpec, width: int, height: int
) -> _Proposal | str:
    angle = float(spec.angles_deg[rng.integers(len(spec.angles_deg))])
    area = rng.uniform(*spec.area_fraction) * width * height
    log_aspects = _fitting_log_aspects(area, angle, width, height, spec.aspect_ratio)
    if log_aspects is None:
        return "area_does_not_fit"
    aspect = math.exp(rng.uniform(*log_aspects))
    crop_w = max(1, round(math.sqrt(area * aspect)))
    crop_h = max(1, round(math.sqrt(area / aspect)))
    scale, size = 1.0, (crop_w, crop_h)
    if spec.max_long_side is not None and max(crop_w, crop_h) > spec.max_long_side:
        scale = spec.max_long_side / max(crop_w, crop_h)
        size = (max(1, round(crop_w * scale)), max(1, round(crop_h * scale)))
    real_w, real_h = size[0] / scale, size[1] / scale
    lo_area, hi_area = spec.area_fraction
    lo_aspect, hi_aspect = spec.aspect_ratio
    if not (lo_area <= real_w * real_h / (width * height) <= hi_area
            and lo_aspect <= real_w / real_h <= hi_aspect):
        return "rounded_out_of_spec"
    return _Proposal(size, scale, angle)


def _fitting_log_aspects(
    area: float, angle: float, width: int, height: int, aspect_ratio: tuple[float, float]
) -> tuple[float, float] | None:
    """The log-aspect interval, within ``aspect_ratio``, at which a crop of ``area`` rotated
    by ``angle`` fits the image's bounding box; None if there is none.

    With u = sqrt(w / h): u |cos| + |sin| / u <= W' / sqrt(area) (and the same for H') is a
    quadratic in u; W' = W - 1 + |cos| + |sin| is the exact span of w pixel centres.
    """
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    low, high = math.sqrt(aspect_ratio[0]), math.sqrt(aspect_ratio[1])
    for a, b, limit in ((cos, sin, width), (sin, cos, height)):
        k = (limit - 1 + cos + sin) / math.sqrt(area)  # a u^2 - k u + b <= 0
        if a == 0.0:
            low = max(low, b / k)
            continue
        discriminant = k * k - 4 * a * b
        if discriminant < 0:
            return None
        low = max(low, (k - math.sqrt(discriminant)) / (2 * a))
        high = min(high, (k + math.sqrt(discriminant)) / (2 * a))
    if low > high:
        return None
    return 2 * math.log(low), 2 * math.log(high)


def _propose_professional(
    rng: np.random.Generator,
    spec: ProfessionalAugmentSpec,
    width: int,
    height: int,
    box: Box | None,
) -> _Proposal | str:
    angle = float(spec.angles_deg[rng.integers(len(spec.angles_deg))])
    aspect = math.exp(rng.uniform(math.log(spec.aspect_ratio[0]), math.log(spec.aspect_ratio[1])))
    step = spec.side_multiple
    out_h = max(step, round(math.sqrt(spec.target_pixels / aspect) / step) * step)
    out_w = max(step, round(spec.target_pixels / out_h / step) * step)
    if abs(out_w * out_h / spec.target_pixels - 1.0) > spec.pixel_tolerance:
        return "pixel_tolerance"
    k_hi = _max_source_per_output((out_w, out_h), angle, width, height)
    if k_hi < 1.0:
        size = _largest_native_size(out_w / out_h, angle, width, height, step, out_h)
        if size is None:
            return "image_too_small"
        out_w, out_h = size
        k_hi = 1.0
    k_lo = 1.0
    if box is not None:
        k_lo = max(k_lo, _min_source_per_output_for_box(box, (out_w, out_h), angle))
    if k_lo > k_hi:
        return "box_too_large"
    k = math.exp(rng.uniform(math.log(k_lo), math.log(k_hi)))
    return _Proposal((out_w, out_h), 1.0 / k, angle)


def _max_source_per_output(size: tuple[int, int], angle: float, width: int, height: int) -> float:
    """Largest source-pixels-per-output-pixel k at which the rotated crop fits the image."""
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    span_x = (size[0] - 1) * cos + (size[1] - 1) * sin
    span_y = (size[0] - 1) * sin + (size[1] - 1) * cos
    fit_x = (width - 1) / span_x if span_x else math.inf
    fit_y = (height - 1) / span_y if span_y else math.inf
    return min(fit_x, fit_y)


def _largest_native_size(
    aspect: float, angle: float, width: int, height: int, step: int, start_h: int
) -> tuple[int, int] | None:
    """Largest (w, h), multiples of ``step``, h <= ``start_h``, that fits at scale 1."""
    for out_h in range(start_h, step - 1, -step):
        size = (max(step, round(aspect * out_h / step) * step), out_h)
        if _max_source_per_output(size, angle, width, height) >= 1.0:
            return size
    return None


def _min_source_per_output_for_box(box: Box, size: tuple[int, int], angle: float) -> float:
    """Smallest k at which the rotated crop's pixel-centre rectangle can hold ``box``."""
    proj_x, proj_y = _box_projections(box, angle)
    return max(np.ptp(proj_x) / (size[0] - 1), np.ptp(proj_y) / (size[1] - 1))


def _box_projections(box: Box, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Box corners projected on the crop's x axis (cos, sin) and y axis (-sin, cos)."""
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return corners @ np.array([cos, sin]), corners @ np.array([-sin, cos])


def _sample_centre(
    rng: np.random.Generator, proposal: _Proposal, width: int, height: int, box: Box | None
) -> tuple[float, float] | None:
    """A centre uniform over the admissible set (a convex polygon), or None if it is empty."""
    half_x = (proposal.size[0] - 1) / (2.0 * proposal.scale)
    half_y = (proposal.size[1] - 1) / (2.0 * proposal.scale)
    if proposal.angle_deg == 0.0 and proposal.scale == 1.0:
        return _pixel_aligned_centre(rng, (half_x, half_y), (width, height), box)
    theta = math.radians(proposal.angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    # The crop's footprint stays in [0, W-1] x [0, H-1]: an axis-aligned rectangle of centres.
    reach_x = half_x * abs(cos) + half_y * abs(sin)
    reach_y = half_x * abs(sin) + half_y * abs(cos)
    eps = 1e-9 * max(width, height)
    x0, x1, y0, y1 = reach_x, width - 1 - reach_x, reach_y, height - 1 - reach_y
    if x0 > x1 + eps or y0 > y1 + eps:
        return None
    polygon = np.array([(x0, y0), (max(x1, x0), y0), (max(x1, x0), max(y1, y0)), (x0, max(y1, y0))])
    if box is not None:
        # The box's corners stay within the crop along both crop axes: half-planes n . c <= d.
        proj_x, proj_y = _box_projections(box, proposal.angle_deg)
        planes = (
            ((-cos, -sin), half_x - proj_x.max()), ((cos, sin), proj_x.min() + half_x),
            ((sin, -cos), half_y - proj_y.max()), ((-sin, cos), proj_y.min() + half_y),
        )
        for normal, offset in planes:
            polygon = _clip_polygon(polygon, np.array(normal), offset + eps)
            if polygon is None:
                return None
    return _uniform_in_polygon(rng, polygon)


def _pixel_aligned_centre(
    rng: np.random.Generator,
    half: tuple[float, float],
    image_size: tuple[int, int],
    box: Box | None,
) -> tuple[float, float] | None:
    """For an unrotated native-resolution crop: a centre uniform over the admissible ones
    whose translation is whole pixels, so the view is an exact pixel copy (no resampling,
    and no 1/32 px rounding inside warpAffine). None if there is no such centre."""
    centre = []
    for axis in (0, 1):
        low, high = half[axis], image_size[axis] - 1 - half[axis]
        if box is not None:
            low, high = max(low, box[axis + 2] - half[axis]), min(high, box[axis] + half[axis])
        first, last = math.ceil(low - half[axis] - 1e-9), math.floor(high - half[axis] + 1e-9)
        if first > last:
            return None
        centre.append(half[axis] + float(rng.integers(first, last + 1)))
    return centre[0], centre[1]


def _clip_polygon(polygon: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray | None:
    """The part of a convex (K, 2) polygon where normal . c <= offset (Sutherland-Hodgman)."""
    side = polygon @ normal - offset
    clipped = []
    for i in range(len(polygon)):
        j = (i + 1) % len(polygon)
        if side[i] <= 0:
            clipped.append(polygon[i])
        if (side[i] <= 0) != (side[j] <= 0):
            fraction = side[i] / (side[i] - side[j])
            clipped.append(polygon[i] + fraction * (polygon[j] - polygon[i]))
    return np.array(clipped) if clipped else None


def _uniform_in_polygon(rng: np.random.Generator, polygon: np.ndarray) -> tuple[float, float]:
    """A point uniform in a convex polygon; on a segment (or point) when it is degenerate."""
    origin, rest = polygon[0], polygon[1:]
    edges_a, edges_b = rest[:-1] - origin, rest[1:] - origin
    areas = 0.5 * np.abs(edges_a[:, 0] * edges_b[:, 1] - edges_a[:, 1] * edges_b[:, 0])
    if areas.size and areas.sum() > 1e-12:
        tri = rng.choice(areas.size, p=areas / areas.sum())
        u, v = rng.random(2)
        if u + v > 1.0:
            u, v = 1.0 - u, 1.0 - v
        point = origin + u * edges_a[tri] + v * edges_b[tri]
    else:
        dists = np.linalg.norm(polygon[:, None] - polygon[None], axis=-1)
        i, j = np.unravel_index(np.argmax(dists), dists.shape)
        point = polygon[i] + rng.random() * (polygon[j] - polygon[i])
    return float(point[0]), float(point[1])


def _check_source(
    t: SpatialTransform, array: np.ndarray, name: str, ndims: tuple[int, ...]
) -> None:
    if not isinstance(array, np.ndarray) or array.ndim not in ndims:
        raise ValueError(f"{name} must be a numpy array with ndim in {ndims}")
    if (array.shape[1], array.shape[0]) != t.source_size:
        raise ValueError(
            f"{name} is {array.shape[1]}x{array.shape[0]} but the transform was sampled "
            f"for {t.source_size[0]}x{t.source_size[1]}"
        )


def _checked_box(box: Box, width: int, height: int) -> Box:
    values = tuple(float(v) for v in box)
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"must_contain must be 4 finite floats (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = values
    if x1 < x0 or y1 < y0:
        raise ValueError(f"must_contain {values} has x1 < x0 or y1 < y0")
    if x0 < 0 or y0 < 0 or x1 > width - 1 or y1 > height - 1:
        raise AugmentError(
            "box_outside_image",
            f"must_contain {values} leaves the {width}x{height} image's pixel-centre "
            f"rectangle [0, {width - 1}] x [0, {height - 1}]",
        )
    return values


def _positive_size(name: str, size: tuple[int, int]) -> tuple[int, int]:
    values = tuple(size)
    if len(values) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(f"{name} must be two ints >= 1 (width, height), got {size!r}")
    return int(values[0]), int(values[1])


def _float_pair(name: str, pair: tuple[float, float]) -> tuple[float, float]:
    values = tuple(float(v) for v in pair)
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be two finite floats, got {pair!r}")
    return values


def _check_interval(name: str, interval: tuple[float, float], upper: float = math.inf) -> None:
    if len(interval) != 2:
        raise ValueError(f"{name} must be (low, high), got {interval!r}")
    low, high = interval
    if not (0.0 < low <= high <= upper):
        raise ValueError(f"{name} must satisfy 0 < low <= high <= {upper}, got {interval!r}")


def _check_angles(angles: tuple[float, ...]) -> None:
    if len(angles) == 0 or not all(math.isfinite(a) and abs(a) < 90.0 for a in angles):
        raise ValueError(f"angles_deg must be a non-empty tuple of angles in (-90, 90): {angles!r}")


def _check_probability(probability: float) -> None:
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"flip_probability must be in [0, 1], got {probability}")
