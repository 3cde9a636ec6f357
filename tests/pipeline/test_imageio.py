"""decode_image / encoders on real photos shipped by installed packages.

Variants (alpha, palette, 16-bit, CMYK, bilevel, EXIF-rotated, ICC-tagged) are made
from the real photos with Pillow and decoded back against the original pixels.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, JpegImagePlugin

from manifests.digests import sha256_hex
from pipeline.imageio import (
    FILE_EXTENSIONS,
    IMAGE_FILE_EXTENSIONS,
    DecodeLimits,
    ImageRejected,
    content_id,
    decode_image,
    encode_image,
    encode_jpeg,
    encode_map_png,
    encode_png,
    encode_webp_lossless,
    load_image,
)
from pipeline.sample_corpus import sample_paths

SAMPLES = {photo.name: photo.path for photo in sample_paths()}


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    """Grace Hopper, 512 wide x 600 high (not square, so rotations show)."""
    return load_image(SAMPLES["grace_hopper"])


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int32) - b.astype(np.int32))


# ---------------------------------------------------------------- modes


def test_rgb_png_roundtrip_is_exact_and_array_is_writable_contiguous(hopper):
    out = decode_image(_save(Image.fromarray(hopper), "PNG"))
    assert out.dtype == np.uint8 and out.shape == (600, 512, 3)
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, hopper)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_grayscale_photo_is_replicated_to_three_channels(fmt):
    gray = np.array(Image.open(SAMPLES["camera"]))
    assert gray.ndim == 2
    out = decode_image(_save(Image.fromarray(gray), fmt))
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_rgba_is_composited_over_white(hopper):
    alpha = np.array(Image.fromarray(hopper).convert("L"))  # real content as the alpha plane
    rgba = np.dstack([hopper, alpha])
    out = decode_image(_save(Image.fromarray(rgba), "PNG"))
    a = alpha[..., None] / 255.0
    expected = hopper * a + 255.0 * (1.0 - a)
    assert np.abs(out - expected).max() <= 0.5 + 1e-9
    assert (out[alpha == 0] == 255).all()


def test_opaque_rgba_equals_rgb(hopper):
    rgba = np.dstack([hopper, np.full(hopper.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(decode_image(_save(Image.fromarray(rgba), "WEBP", lossless=True)), hopper)


def test_gray_with_alpha_is_composited_over_white():
    gray = np.array(Image.open(SAMPLES["camera"]))
    alpha = np.ascontiguousarray(gray[::-1])
    out = decode_image(_save(Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG"))
    expected = gray * (alpha / 255.0) + 255.0 * (1 - alpha / 255.0)
    assert np.abs(out[..., 1] - expected).max() <= 0.5 + 1e-9


def test_palette_image_decodes_to_its_palette_colours(hopper):
    palette = Image.fromarray(hopper).quantize(colors=64)
    expected = np.array(palette.convert("RGB"))
    out = decode_image(_save(palette, "PNG"))
    np.testing.assert_array_equal(out, expected)
    assert _diff(out, hopper).mean() < 8  # still the photo


def test_palette_transparency_index_becomes_white(hopper):
    palette = Image.fromarray(hopper).quantize(colors=64)
    indices = np.array(palette)
    transparent = int(np.bincount(indices.ravel()).argmax())
    out = decode_image(_save(palette, "PNG", transparency=transparent))
    expected = np.array(palette.convert("RGB"))
    expected[indices == transparent] = 255
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_gray_is_scaled_with_rounding(hopper, fmt):
    gray = np.array(Image.fromarray(hopper).convert("L"))
    offsets = np.random.default_rng(0).integers(-120, 121, gray.shape)
    sixteen = np.clip(gray.astype(np.int64) * 257 + offsets, 0, 65535).astype(np.uint16)
    image = Image.fromarray(sixteen)
    assert image.mode == "I;16"
    out = decode_image(_save(image, fmt))
    expected = np.round(sixteen / 257.0)
    np.testing.assert_array_equal(out[..., 0], expected)  # not clipped to 255, not >> 8
    np.testing.assert_array_equal(out[..., 0], gray)


def test_thirty_two_bit_integer_in_sixteen_bit_range_is_scaled(hopper):
    gray = np.array(Image.fromarray(hopper).convert("L"))
    image = Image.fromarray(gray.astype(np.int32) * 257, "I")
    out = decode_image(_save(image, "TIFF"))
    np.testing.assert_array_equal(out[..., 2], gray)


def test_sixteen_bit_rgb_png_is_within_one_level(hopper):
    import cv2

    low = np.random.default_rng(1).integers(0, 256, hopper.shape)
    sixteen = (hopper.astype(np.uint16) << 8) | low.astype(np.uint16)
    ok, png = cv2.imencode(".png", np.ascontiguousarray(sixteen[..., ::-1]))
    assert ok
    out = decode_image(png.tobytes())
    assert _diff(out, np.round(sixteen / 257.0)).max() <= 1


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG"])
def test_cmyk_converts_back_to_rgb(hopper, fmt):
    cmyk = Image.fromarray(hopper).convert("CMYK")
    out = decode_image(_save(cmyk, fmt, **({"quality": 100} if fmt == "JPEG" else {})))
    diff = _diff(out, hopper)
    if fmt == "TIFF":
        assert diff.max() == 0
    else:
        assert diff.mean() < 2.0


def test_bilevel_becomes_black_and_white(hopper):
    bilevel = Image.fromarray(hopper).convert("1")
    out = decode_image(_save(bilevel, "PNG"))
    expected = np.array(bilevel).astype(np.uint8) * 255
    np.testing.assert_array_equal(out[..., 0], expected)
    assert set(np.unique(out)) == {0, 255}


def test_icc_profile_is_converted_to_srgb(hopper):
    out = decode_image(_save(Image.fromarray(hopper), "PNG", icc_profile=_linear_srgb_icc()))
    x = hopper / 255.0
    expected = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055) * 255
    assert np.abs(out - expected).max() <= 1.0
    assert _diff(out, hopper).mean() > 20  # the profile really changed the pixels


def test_srgb_tagged_photo_is_unchanged():
    astronaut = Image.open(SAMPLES["astronaut"])
    assert astronaut.info.get("icc_profile")
    np.testing.assert_array_equal(load_image(SAMPLES["astronaut"]), np.array(astronaut.convert("RGB")))


def test_srgb_profile_shortcut_matches_full_conversion(hopper):
    from PIL import ImageCms

    icc = Image.open(SAMPLES["astronaut"]).info["icc_profile"]
    tagged = Image.fromarray(hopper)
    converted = ImageCms.profileToProfile(
        tagged, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    out = decode_image(_save(tagged, "PNG", icc_profile=icc))
    assert _diff(out, np.array(converted)).max() <= 1
    np.testing.assert_array_equal(out, hopper)


def test_broken_icc_profile_is_undecodable(hopper):
    data = _save(Image.fromarray(hopper), "PNG", icc_profile=b"not a profile" * 20)
    with pytest.raises(ImageRejected) as info:
        decode_image(data)
    assert info.value.code == "undecodable" and "ICC" in info.value.detail


# EXIF orientation -> how the stored pixels relate to the upright picture (EXIF 2.3 spec).
STORED_FROM_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


@pytest.mark.parametrize("orientation", sorted(STORED_FROM_UPRIGHT))
def test_exif_orientation_gives_the_upright_photo(hopper, orientation):
    stored = Image.fromarray(np.ascontiguousarray(STORED_FROM_UPRIGHT[orientation](hopper)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    np.testing.assert_array_equal(decode_image(_save(stored, "PNG", exif=exif)), hopper)
    jpeg = decode_image(_save(stored, "JPEG", exif=exif, quality=98, subsampling=0))
    assert jpeg.shape == hopper.shape and _diff(jpeg, hopper).mean() < 2.0


# ---------------------------------------------------------------- rejects


def _code(data: bytes, **kw) -> str:
    with pytest.raises(ImageRejected) as info:
        decode_image(data, **kw)
    assert info.value.detail
    return info.value.code


def test_empty_bytes():
    assert _code(b"") == "empty"


def test_text_is_undecodable():
    assert _code(b"this is a text file, not a photo\n" * 10) == "undecodable"


@pytest.mark.parametrize("name", ["bus", "astronaut"])
def test_truncated_files(name):
    data = open(SAMPLES[name], "rb").read()
    assert _code(data[: len(data) // 2]) == "truncated"


def test_tiny_photo_is_too_small(hopper):
    assert _code(_save(Image.fromarray(hopper[:40, :300]), "PNG")) == "too_small"
    assert _code(_save(Image.fromarray(hopper), "PNG"), limits=DecodeLimits(min_side=600)) == "too_small"


def test_photo_over_max_pixels_is_too_large(hopper):
    data = _save(Image.fromarray(hopper), "JPEG")
    assert _code(data, limits=DecodeLimits(max_pixels=512 * 600 - 1)) == "too_large"
    assert decode_image(data, limits=DecodeLimits(max_pixels=512 * 600)).shape == hopper.shape


def test_bytes_over_max_bytes_is_too_large(hopper):
    data = _save(Image.fromarray(hopper), "JPEG")
    assert _code(data, limits=DecodeLimits(max_bytes=len(data) - 1)) == "too_large"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height 8-bit RGB, with no pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_rejected_from_the_header():
    # 108 MP: above our 100 MP limit but below Pillow's own error threshold (it only
    # warns), so only our header check can reject it. The files hold no pixel data, so
    # decoding would fail as "undecodable": "too_large" shows the check ran first.
    with pytest.warns(Image.DecompressionBombWarning):
        assert _code(_png_header_only(12_000, 9_000)) == "too_large"
    assert _code(_png_header_only(30_000, 30_000)) == "too_large"  # Pillow's own guard
    assert _code(_png_header_only(1_000, 1_000)) == "undecodable"


# ---------------------------------------------------------------- formats, by content


@pytest.mark.parametrize("fmt", ["BMP", "PPM", "TIFF", "TGA", "QOI", "SGI", "PCX"])
def test_lossless_still_formats_decode_exactly(hopper, fmt):
    np.testing.assert_array_equal(decode_image(_save(Image.fromarray(hopper), fmt)), hopper)


def test_pgm_eight_and_sixteen_bit_and_pbm(hopper):
    gray = np.array(Image.fromarray(hopper).convert("L"))
    np.testing.assert_array_equal(decode_image(_save(Image.fromarray(gray), "PPM"))[..., 1], gray)
    sixteen = Image.fromarray(gray.astype(np.uint16) * 257)
    assert _save(sixteen, "PPM")[:2] == b"P5"
    np.testing.assert_array_equal(decode_image(_save(sixteen, "PPM"))[..., 0], gray)
    bilevel = Image.fromarray(hopper).convert("1")
    assert set(np.unique(decode_image(_save(bilevel, "PPM")))) == {0, 255}


def test_still_gif_and_jpeg2000_decode(hopper):
    palette = Image.fromarray(hopper).quantize(colors=128)
    np.testing.assert_array_equal(decode_image(_save(palette, "GIF")), np.array(palette.convert("RGB")))
    jp2 = decode_image(_save(Image.fromarray(hopper), "JPEG2000", irreversible=False))
    np.testing.assert_array_equal(jp2, hopper)


def test_format_is_decided_by_the_bytes_not_the_name(hopper, tmp_path):
    path = tmp_path / "portrait.png"  # JPEG bytes under a PNG name
    path.write_bytes(_save(Image.fromarray(hopper), "JPEG", quality=95))
    assert _diff(load_image(path), hopper).mean() < 2.0
    assert {".bmp", ".dib", ".ppm", ".pgm", ".pbm", ".pnm", ".jpg", ".jpeg", ".png", ".webp", ".tif", ".gif",
            ".mpo"} <= set(IMAGE_FILE_EXTENSIONS)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animations_are_rejected_with_their_frame_count(hopper, fmt):
    frames = [Image.fromarray(np.ascontiguousarray(np.roll(hopper, 40 * i, axis=1))) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(ImageRejected) as info:
        decode_image(buffer.getvalue())
    assert info.value.code == "unsupported_format" and f"animated {fmt}" in info.value.detail
    assert "3 frames" in info.value.detail


def test_the_animated_sample_gif_is_rejected_before_its_size():
    with pytest.raises(ImageRejected) as info:
        decode_image(_read_gif())  # 14 x 25 px: the animation is named, not the size
    assert info.value.code == "unsupported_format" and "animated GIF" in info.value.detail


def test_multi_page_tiff_keeps_its_first_page(hopper):
    pages = [Image.fromarray(hopper), Image.fromarray(np.ascontiguousarray(hopper[::-1]))]
    buffer = io.BytesIO()
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    np.testing.assert_array_equal(decode_image(buffer.getvalue()), hopper)


def test_formats_that_run_programs_or_are_not_photos_are_unsupported(hopper):
    assert _code(_save(Image.fromarray(hopper), "EPS")) == "unsupported_format"  # would run Ghostscript
    assert _code(_save(Image.fromarray(hopper).resize((128, 128)), "ICO", sizes=[(128, 128)])) == "unsupported_format"


def test_bmp_and_ppm_files_are_accepted_by_ingest(tmp_path):
    from pipeline.ingest import inspect_path

    astronaut = load_image(SAMPLES["astronaut"])
    paths = []
    for fmt, name in (("BMP", "portrait.bmp"), ("PPM", "portrait.ppm")):
        (tmp_path / name).write_bytes(_save(Image.fromarray(astronaut), fmt))
        paths.append(str(tmp_path / name))
    rows = [inspect_path(path, str(tmp_path), DecodeLimits()) for path in paths]
    assert [(r["status"], r["width"], r["height"], r["format"]) for r in rows] == [
        ("accepted", 512, 512, "BMP"), ("accepted", 512, 512, "PPM"),
    ]  # fmt: skip
    for path in paths:
        np.testing.assert_array_equal(load_image(path), astronaut)


def _read_gif() -> bytes:
    import importlib.util
    from pathlib import Path

    root = Path(importlib.util.find_spec("skimage").submodule_search_locations[0])
    return (root / "data" / "no_time_for_that_tiny.gif").read_bytes()


def test_float_samples_are_unsupported(hopper):
    gray = np.array(Image.fromarray(hopper).convert("L")).astype(np.float32) / 255
    assert _code(_save(Image.fromarray(gray), "TIFF")) == "unsupported_format"


def test_decode_limits_validate():
    with pytest.raises(ValueError):
        DecodeLimits(min_side=0)
    with pytest.raises(ValueError):
        DecodeLimits(min_side=200, max_pixels=100)


# ---------------------------------------------------------------- sample photos


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_photo_decodes(name):
    out = load_image(SAMPLES[name])
    reference = Image.open(SAMPLES[name])
    assert out.shape == (reference.height, reference.width, 3) and out.dtype == np.uint8
    assert out.std() > 10  # a real photo, not a blank


# ---------------------------------------------------------------- encoders and ids


def test_jpeg_is_deterministic_444_and_close(hopper):
    first, second = encode_jpeg(hopper), encode_jpeg(hopper.copy())
    assert first == second
    image = Image.open(io.BytesIO(first))
    assert image.format == "JPEG" and JpegImagePlugin.get_sampling(image) == 0  # 0 = 4:4:4
    assert _diff(decode_image(first), hopper).mean() < 1.5
    assert len(encode_jpeg(hopper, quality=60)) < len(first)


def test_png_and_webp_are_lossless_and_deterministic(hopper):
    gray = np.array(Image.open(SAMPLES["camera"]))
    for encode, array in ((encode_png, hopper), (encode_png, gray), (encode_webp_lossless, hopper)):
        data = encode(array)
        assert data == encode(array.copy())
        decoded = decode_image(data)
        np.testing.assert_array_equal(decoded if array.ndim == 3 else decoded[..., 0], array)


def test_map_png_is_a_lossless_greyscale_png_every_decoder_reads(hopper):
    """Label maps and masks written by hand read back exactly through Pillow, OpenCV and our
    decoder, at odd sizes and for photo content, with deterministic bytes."""
    gray = np.array(Image.open(SAMPLES["camera"]))
    labels = (gray // 37).astype(np.uint8)  # a few large regions, like the region map
    mask = np.where(cv2.GaussianBlur(gray, (0, 0), 3) > 140, 255, 0).astype(np.uint8)
    for array in (gray, labels, mask, hopper[:, :333, 1], np.zeros((1, 1), np.uint8), np.full((7, 3), 255, np.uint8)):
        data = encode_map_png(array)
        assert data == encode_map_png(array.copy())
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.mode, image.size) == ("PNG", "L", array.shape[::-1])
        np.testing.assert_array_equal(np.array(image), array)
        np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), array)
        np.testing.assert_array_equal(decode_image(data, limits=DecodeLimits(min_side=1))[..., 0], array)
    # Mostly constant maps stay small: about what Pillow's filtered encoder writes.
    assert len(encode_map_png(labels)) < 1.5 * len(encode_png(labels))
    for wrong in (hopper, gray.astype(np.int16), np.zeros((0, 4), np.uint8)):
        with pytest.raises(ValueError, match="encode_map_png"):
            encode_map_png(wrong)


def _idat_rows(data: bytes) -> bytes:
    """The decompressed image data of a single-IDAT PNG; zlib.decompress checks its Adler-32."""
    start = data.index(b"IDAT")
    length = int.from_bytes(data[start - 4 : start], "big")
    return zlib.decompress(data[start + 4 : start + 4 + length])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.integers(1, 70), st.integers(1, 90), st.integers(0, 255),
    st.lists(st.tuples(st.integers(0, 69), st.integers(1, 30), st.integers(0, 89), st.integers(1, 40)), max_size=3),
)  # fmt: skip
def test_map_png_with_constant_bands_is_exact_zlib(height, width, value, boxes) -> None:
    """Maps that are one value except in a few boxes of real photo content (constant bands of
    rows reuse a cached deflate segment): the image data is exactly the unfiltered rows and
    its Adler-32 is right (zlib.decompress checks it)."""
    gray = np.array(Image.open(SAMPLES["camera"]))
    array = np.full((height, width), value, np.uint8)
    for y, h, x, w in boxes:
        array[y : y + h, x : x + w] = gray[y : y + h, x : x + w][: max(0, height - y), : max(0, width - x)]
    rows = np.zeros((height, width + 1), np.uint8)
    rows[:, 1:] = array
    data = encode_map_png(array)
    assert _idat_rows(data) == rows.tobytes()
    np.testing.assert_array_equal(np.array(Image.open(io.BytesIO(data))), array)


def test_encode_image_dispatch_and_extensions(hopper):
    assert encode_image(hopper, "jpeg") == encode_jpeg(hopper)
    assert encode_image(hopper, "png") == encode_png(hopper)
    assert encode_image(hopper, "webp") == encode_webp_lossless(hopper)
    assert Image.open(io.BytesIO(encode_image(hopper, "webp"))).format == "WEBP"
    assert FILE_EXTENSIONS == {"jpeg": "jpg", "png": "png", "webp": "webp"}
    with pytest.raises(ValueError, match="unknown image format"):
        encode_image(hopper, "gif")


def test_encoders_reject_wrong_arrays(hopper):
    with pytest.raises(ValueError, match="uint8"):
        encode_jpeg(hopper.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(hopper[..., :2])
    with pytest.raises(ValueError, match="quality"):
        encode_jpeg(hopper, quality=0)


def test_ids():
    data = open(SAMPLES["zidane"], "rb").read()
    digest = sha256_hex(data)
    assert len(digest) == 64 and content_id(data) == digest[:16]
    assert content_id(data + b"\0") != content_id(data)


# ---------------------------------------------------------------- helpers


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _linear_srgb_icc() -> bytes:
    """A minimal ICC v2 RGB display profile: sRGB primaries (D50-adapted), gamma 1.0."""
    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", offset + len(body)) + b"lcms" + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 28
        + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + body


def test_garbage_is_still_rejected_after_ultralytics_patches_pillow(monkeypatch):
    import PIL.Image
    from ultralytics.utils import patches  # importing it replaces PIL.Image.open process-wide

    # The detector puts Pillow's opener back after loading YOLO; install the wrapper here
    # regardless of what ran before.
    monkeypatch.setattr(PIL.Image, "open", patches.image_open)
    with pytest.raises(ImageRejected) as info:
        decode_image(b"definitely not an image, just text bytes")
    assert info.value.code == "undecodable"
