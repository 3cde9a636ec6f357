"""Fuzzing decode and ingest: random bytes and mutated real photos never crash a build.

Whatever the bytes, ``inspect_path`` returns a row with a status and ``decode_image`` either
returns an RGB uint8 image or raises ImageRejected with a known reason code. Bounded for CI:
a fixed number of examples per property, derandomized (the same examples every run).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import get_args

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.imageio import DecodeLimits, ImageRejected, RejectCode, decode_image, probe_image
from pipeline.ingest import inspect_path
from pipeline.sample_corpus import sample_paths

PHOTO = Path(next(p.path for p in sample_paths() if p.name == "grace_hopper")).read_bytes()
_small = Image.open(io.BytesIO(PHOTO)).resize((96, 112))
SEEDS = {}
for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "PPM"):
    buffer = io.BytesIO()
    _small.save(buffer, fmt)
    SEEDS[fmt] = buffer.getvalue()
LIMITS = DecodeLimits(min_side=16, max_pixels=4_000_000, max_bytes=8_000_000)
CODES = set(get_args(RejectCode))
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _check_decode(data: bytes) -> None:
    try:
        image = decode_image(data, limits=LIMITS)
    except ImageRejected as exc:
        assert exc.code in CODES, exc.code
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= LIMITS.min_side


def _check_ingest(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    row = inspect_path(str(path), None, LIMITS)
    assert row["status"] in ("accepted", "rejected")
    if row["status"] == "rejected":
        assert row["reason"] and row["detail"]
    else:
        fmt, width, height = probe_image(data, limits=LIMITS)
        assert (row["width"], row["height"]) == (width, height)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _check_decode(data)


@FUZZ
@given(
    fmt=st.sampled_from(sorted(SEEDS)),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0)),
)
def test_mutated_real_photos(tmp_path_factory, fmt: str, flips: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(SEEDS[fmt])
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _check_decode(bytes(data))
    _check_ingest(tmp_path_factory.mktemp("fuzz"), bytes(data))
