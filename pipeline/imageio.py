"""Image decode and encode: bytes in, RGB uint8 (H, W, 3) out, and back.

Decoding is strict. Bad input raises :class:`ImageRejected` with a reason code; it
never returns a partial image. Rules:

* Formats are decided by the bytes, never by a file name: every still-image format in
  :data:`SUPPORTED_FORMATS` (JPEG and MPO, PNG, WebP, TIFF, BMP/DIB, PPM/PGM/PBM, GIF, TGA,
  JPEG 2000, QOI, SGI, PCX, and AVIF where Pillow has it). Other formats Pillow recognises
  are ``unsupported_format``: those that run an external program (EPS runs Ghostscript),
  need a handler we do not install (HDF5, GRIB, BUFR, WMF), or are not photographs (icons,
  fonts, textures, scientific formats). Bytes that no Pillow plugin recognises are
  ``undecodable``. :data:`IMAGE_FILE_EXTENSIONS` lists the file extensions Pillow registers
  for these formats, for callers that want to skip other files unread.
* Animated files (GIF, APNG, WebP or AVIF with more than one frame) are ``unsupported_format``:
  their frames are moments of a clip, not photos, and a first frame is often a blank or a
  fade. Multi-image stills keep their first image: MPO (the primary picture phones write) and
  multi-page TIFF (page 1). The animation check follows the header's pixel-count check, so
  it never decodes a bomb.
* Size limits are checked from the header BEFORE any pixel is decoded (``too_large``;
  ``too_small`` right after the animation check), so a decompression bomb costs only a
  header parse. Pillow's own bomb check stays on
  as a second guard.
* A file that ends early is ``truncated``. This relies on ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
  staying False; if anything sets it, decoding raises RuntimeError. Not detected
  (libjpeg/zlib only warn): corrupt JPEG entropy data inside a complete file, and a
  complete PNG whose pixel stream is too short; both decode with damaged pixels.
* EXIF orientation is applied, so the array is upright as a viewer shows it.
* Every mode ends as 8-bit sRGB RGB: grey modes are replicated to three channels;
  alpha (RGBA, LA, palette with transparency) is composited over WHITE; 16-bit grey
  (I;16*, and I within 0..65535) is scaled with rounding (v * 255 / 65535), not
  clipped; 16-bit RGB(A) is reduced by Pillow to its high byte (at most 1 level
  below rounding); 1-bit becomes 0/255; CMYK and YCbCr are converted by Pillow.
  Float samples (mode F) and other modes are ``unsupported_format``.
* An embedded ICC profile is honoured: pixels are converted from it to sRGB with
  LittleCMS (perceptual intent). RGB profiles that are sRGB to within 1 level are
  recognised (once per profile) and skip the conversion. A profile LittleCMS cannot
  parse is ``undecodable`` rather than silently ignored. Untagged images are taken as sRGB.
"""

from __future__ import annotations

import functools
import io
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError, features
# Register the decoders SUPPORTED_FORMATS names without loading every plugin.
from PIL import (  # noqa: F401
    AvifImagePlugin,
    BmpImagePlugin,
    GifImagePlugin,
    Jpeg2KImagePlugin,
    JpegImagePlugin,
    MpoImagePlugin,
    PcxImagePlugin,
    PngImagePlugin,
    PpmImagePlugin,
    QoiImagePlugin,
    SgiImagePlugin,
    TgaImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from manifests.digests import sha256_hex

RejectCode = Literal["empty", "undecodable", "truncated", "unsupported_format", "too_small", "too_large"]
ImageFormat = Literal["jpeg", "png", "webp"]

#: Pillow decoders tried (Pillow format names): "JPEG" also opens MPO (the multi-picture JPEG
#: phones write), "PPM" also PGM, PBM and PNM.
SUPPORTED_FORMATS: tuple[str, ...] = (
    "JPEG", "PNG", "WEBP", "TIFF", "BMP", "DIB", "PPM", "GIF", "TGA", "JPEG2000", "QOI", "SGI", "PCX",
) + (("AVIF",) if features.check("avif") else ())

#: Formats whose extra frames are further still images, not animation: the first is decoded.
MULTI_IMAGE_STILLS = ("MPO", "TIFF")


#: Lower-case file extensions (with the dot) Pillow registers for :data:`SUPPORTED_FORMATS` and MPO.
IMAGE_FILE_EXTENSIONS = tuple(sorted(ext for ext, fmt in Image.EXTENSION.items() if fmt in (*SUPPORTED_FORMATS, "MPO")))

#: File extension (no dot, as in tar member names) for each encoded format.
FILE_EXTENSIONS: dict[str, str] = {"jpeg": "jpg", "png": "png", "webp": "webp"}

#: zlib level for PNG: 1 is several times faster than the default 6 for a few % more bytes.
PNG_COMPRESSION_LEVEL = 1

#: Rows of a map deflated together by :func:`encode_map_png` (a constant band reuses its segment).
MAP_BAND_ROWS = 16
#: zlib stream header for :data:`PNG_COMPRESSION_LEVEL` (what ``zlib.compress`` writes first).
_ZLIB_HEADER = zlib.compress(b"", PNG_COMPRESSION_LEVEL)[:2]
#: An empty final deflate block (fixed Huffman codes: BFINAL 1, BTYPE 01, end-of-block).
_FINAL_EMPTY_BLOCK = b"\x03\x00"

#: libwebp lossless (method, quality): the fastest setting. On 1024^2 real photos it
#: encodes about as fast as PNG level 1 or faster, to 25-30 % fewer bytes; higher effort
#: buys ~15 % fewer bytes for 4-15x the time.
WEBP_LOSSLESS_EFFORT = (0, 0)

_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_ICC_MODES = ("RGB", "L", "CMYK")
_WHITE = 255


@dataclass(frozen=True)
class DecodeLimits:
    """What a decodable photo may be.

    ``min_side``: shorter side in pixels (after EXIF rotation it is the same);
    ``max_pixels``: width * height from the header; ``max_bytes``: encoded size.
    """

    min_side: int = 64
    max_pixels: int = 100_000_000
    max_bytes: int = 512 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.min_side < 1 or self.max_pixels < 1 or self.max_bytes < 1:
            raise ValueError(f"DecodeLimits must be positive, got {self}")
        if self.min_side * self.min_side > self.max_pixels:
            raise ValueError(f"min_side^2 {self.min_side ** 2} exceeds max_pixels {self.max_pixels}")


class ImageRejected(Exception):
    """An image cannot be used; ``code`` is one of :data:`RejectCode`, ``detail`` says why."""

    def __init__(self, code: RejectCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def content_id(data: bytes) -> str:
    """Source id of a photo: the first 16 hex characters of sha256(data)."""
    return sha256_hex(data)[:16]


def decode_image(data: bytes, *, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """Decode ``data`` to an upright sRGB image, (H, W, 3) uint8, C-contiguous.

    Raises :class:`ImageRejected` for anything that is not a usable photo (see the
    module docstring for the rules).
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated files would pass")
    image = _checked_header(data, limits)
    _load_pixels(image)
    icc = image.info.get("icc_profile")
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except (ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError, struct.error) as exc:
        raise ImageRejected("undecodable", f"invalid EXIF orientation: {exc}") from exc
    rgb = _to_rgb8(image, icc)
    return np.ascontiguousarray(rgb)


def probe_image(data: bytes, *, limits: DecodeLimits = DecodeLimits()) -> tuple[str, int, int]:
    """(format, upright width, upright height) from the header alone: every check of
    :func:`decode_image` that needs no pixel (size limits, format, animation), so ingest can
    refuse what decoding would refuse without decoding. Truncation is found only by decoding.
    """
    image = _checked_header(data, limits)
    width, height = image.size
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError, struct.error):
        orientation = 1  # a broken EXIF block is judged by the full decode
    if orientation in (5, 6, 7, 8):  # rotated a quarter turn: upright size swaps
        width, height = height, width
    return image.format or "unknown", width, height


def _checked_header(data: bytes, limits: DecodeLimits) -> Image.Image:
    """The opened image after every header check (no pixel decoded)."""
    if len(data) == 0:
        raise ImageRejected("empty", "0 bytes")
    if len(data) > limits.max_bytes:
        raise ImageRejected("too_large", f"{len(data)} bytes > max_bytes {limits.max_bytes}")
    image = _open_header(data)
    _check_pixels(image.size, limits)
    _check_still(image)
    _check_side(image.size, limits)
    return image


def load_image(path: str | Path, *, limits: DecodeLimits = DecodeLimits()) -> np.ndarray:
    """Read the file at ``path`` and :func:`decode_image` it (OSError if unreadable)."""
    return decode_image(Path(path).read_bytes(), limits=limits)


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """Baseline JPEG of an (H, W, 3) uint8 RGB image, 4:4:4 chroma (no subsampling).

    Uses libjpeg(-turbo) through OpenCV; the bytes are a pure function of the pixels
    and ``quality`` (no timestamps, no metadata).
    """
    _check_rgb(rgb, "encode_jpeg")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
    params = [
        cv2.IMWRITE_JPEG_QUALITY, int(quality),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    ]
    return _cv2_encode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)


def encode_png(array: np.ndarray) -> bytes:
    """Lossless PNG of an (H, W) grey or (H, W, 3) RGB uint8 array, zlib level
    :data:`PNG_COMPRESSION_LEVEL`; deterministic bytes, no metadata chunks."""
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"encode_png needs uint8 (H, W) or (H, W, 3), got {array.dtype} {array.shape}")
    # Pillow rather than OpenCV: the same zlib level, about half the time on the mostly
    # constant label maps every pair carries (1.9 vs 4.2 ms at 830 x 800), as fast on photos.
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", compress_level=PNG_COMPRESSION_LEVEL)
    return buffer.getvalue()


def encode_map_png(array: np.ndarray) -> bytes:
    """Lossless 8-bit greyscale PNG of an (H, W) uint8 label or mask map, written directly:
    every row unfiltered (PNG filter type 0), the image data deflated by the standard
    library's zlib at :data:`PNG_COMPRESSION_LEVEL`; deterministic bytes, no metadata chunks.

    Every pair carries four such maps, mostly constant. Pillow's encoder tries all five PNG
    filters on every row, which costs more than the compression itself: at 1504 x 1472 it
    takes 4.5-8.4 ms per map against 2.7 ms here, for about as many bytes. The rows go to
    zlib :data:`MAP_BAND_ROWS` at a time, and a band that is one value throughout (most of a
    mask outside the edit, all of a uniform strength map) is not compressed again: its
    deflate segment, made once per (width, rows, value) and ended by a full flush, is
    reused (:func:`_constant_band`). Photos keep :func:`encode_png`, where filtering pays.
    """
    if array.dtype != np.uint8 or array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"encode_map_png needs a non-empty uint8 (H, W) map, got {array.dtype} {array.shape}")
    height, width = array.shape
    segments = [_ZLIB_HEADER]
    compressor = None
    adler = 1  # Adler-32 of the empty stream
    for start in range(0, height, MAP_BAND_ROWS):
        band = array[start : start + MAP_BAND_ROWS]
        value = int(band[0, 0])
        if (band == value).all():
            if compressor is not None:  # end its segment: nothing after may refer back into it
                segments.append(compressor.flush(zlib.Z_FULL_FLUSH))
                compressor = None
            segment, band_adler = _constant_band(width, len(band), value)
            segments.append(segment)
            adler = _adler32_combine(adler, band_adler, len(band) * (width + 1))
        else:
            if compressor is None:
                compressor = zlib.compressobj(PNG_COMPRESSION_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
            rows = np.zeros((len(band), width + 1), np.uint8)  # a leading 0 per row: filter type "None"
            rows[:, 1:] = band
            segments.append(compressor.compress(rows.data))
            adler = zlib.adler32(rows.data, adler)
    segments.append(_FINAL_EMPTY_BLOCK if compressor is None else compressor.flush(zlib.Z_FINISH))
    segments.append(struct.pack(">I", adler))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", b"".join(segments)),
        _png_chunk(b"IEND", b""),
    ))  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _constant_band(width: int, rows: int, value: int) -> tuple[bytes, int]:
    """Raw deflate of ``rows`` unfiltered map rows of ``width`` pixels all ``value``, ended by a
    full flush (byte-aligned, no reference outside itself: a segment any stream can take),
    and the Adler-32 of those rows."""
    band = np.full((rows, width + 1), value, np.uint8)
    band[:, 0] = 0
    compressor = zlib.compressobj(PNG_COMPRESSION_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(band.data) + compressor.flush(zlib.Z_FULL_FLUSH), zlib.adler32(band.data)


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """Adler-32 of two byte strings joined, from each one's and the second's length (zlib's
    ``adler32_combine``, which Python does not expose)."""
    base = 65521
    rem = second_length % base
    low = ((first & 0xFFFF) + (second & 0xFFFF) + base - 1) % base
    high = (rem * (first & 0xFFFF) + (first >> 16) + (second >> 16) + base - rem) % base
    return low | (high << 16)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_webp_lossless(rgb: np.ndarray) -> bytes:
    """Lossless WebP of an (H, W, 3) uint8 RGB image at effort :data:`WEBP_LOSSLESS_EFFORT`
    (Pillow/libwebp ``method``, ``quality``); deterministic bytes, no metadata."""
    _check_rgb(rgb, "encode_webp_lossless")
    method, quality = WEBP_LOSSLESS_EFFORT
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "WEBP", lossless=True, method=method, quality=quality)
    return buffer.getvalue()


def encode_image(rgb: np.ndarray, fmt: ImageFormat) -> bytes:
    """Encode with the project's settings for ``fmt`` (JPEG q95 4:4:4, PNG, WebP lossless);
    the matching file extension is ``FILE_EXTENSIONS[fmt]``."""
    if fmt == "jpeg":
        return encode_jpeg(rgb)
    if fmt == "png":
        return encode_png(rgb)
    if fmt == "webp":
        return encode_webp_lossless(rgb)
    raise ValueError(f"unknown image format {fmt!r}; expected one of {sorted(FILE_EXTENSIONS)}")


def pil_open(fp, formats=None) -> Image.Image:
    """Pillow's own ``Image.open``, even where a library has replaced it.

    Importing ultralytics replaces ``PIL.Image.open`` process-wide with a wrapper that,
    on an unidentified file, tries to pip-install a HEIF plugin (a network call, and a
    ModuleNotFoundError offline) instead of raising UnidentifiedImageError.
    """
    opener = Image.open
    if getattr(opener, "__module__", "PIL.Image") != "PIL.Image":
        opener = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", None)
        if opener is None:
            raise RuntimeError(f"PIL.Image.open was replaced by {Image.open.__module__} and the original is unknown")
    return opener(fp, formats=formats)


def _open_header(data: bytes) -> Image.Image:
    """Parse the header only (no pixels) with the supported plugins."""
    try:
        return pil_open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_large", str(exc)) from exc
    except UnidentifiedImageError:
        other = _identify_any_format(data)
        if other is not None:
            raise ImageRejected(
                "unsupported_format", f"{other} is not one of {', '.join(SUPPORTED_FORMATS)}"
            ) from None
        raise ImageRejected("undecodable", f"not an image file (starts with {data[:8]!r})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("undecodable", f"corrupt header: {exc}") from exc


def _identify_any_format(data: bytes) -> str | None:
    """Format name if any Pillow plugin parses the header, else None."""
    try:
        with pil_open(io.BytesIO(data)) as other:
            return other.format
    except Image.DecompressionBombError:
        return "an oversized image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return None


def _check_pixels(size: tuple[int, int], limits: DecodeLimits) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise ImageRejected("too_large", f"{width}x{height} = {width * height} px > max_pixels {limits.max_pixels}")


def _check_still(image: Image.Image) -> None:
    """Reject animations (module docstring); multi-image stills stay on their first image."""
    try:
        animated = bool(getattr(image, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise ImageRejected("undecodable", f"{image.format} frame table unreadable: {exc}") from exc
    if animated and image.format not in MULTI_IMAGE_STILLS:
        frames = getattr(image, "n_frames", "several")
        raise ImageRejected(
            "unsupported_format", f"animated {image.format} ({frames} frames): only still images are accepted"
        )


def _check_side(size: tuple[int, int], limits: DecodeLimits) -> None:
    width, height = size
    if min(width, height) < limits.min_side:
        raise ImageRejected("too_small", f"{width}x{height}: shorter side < min_side {limits.min_side}")


def _load_pixels(image: Image.Image) -> None:
    try:
        image.load()
    except OSError as exc:
        code = "truncated" if "truncated" in str(exc) else "undecodable"
        raise ImageRejected(code, f"{image.format} decode failed: {exc}") from exc
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error) as exc:
        raise ImageRejected("undecodable", f"{image.format} decode failed: {type(exc).__name__}: {exc}") from exc


def _to_rgb8(image: Image.Image, icc: bytes | None) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 sRGB; alpha over white."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        image = Image.fromarray(_sixteen_to_eight(np.asarray(image), mode))
    elif mode == "1":
        image = image.convert("L")
    elif mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "RGBa", "La"):
        image = image.convert("RGBA" if mode != "La" else "LA")
    elif mode == "YCbCr":
        image = image.convert("RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        raise ImageRejected("unsupported_format", f"pixel mode {mode} ({image.format})")

    alpha = None
    if image.mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"))
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    if icc and image.mode in _ICC_MODES:
        image = _icc_to_srgb(image, icc)
    rgb = np.array(image if image.mode == "RGB" else image.convert("RGB"))
    if alpha is not None:
        rgb = _over_white(rgb, alpha)
    return rgb


def _sixteen_to_eight(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16-bit samples to 8 bits with rounding: round(v * 255 / 65535)."""
    if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        raise ImageRejected(
            "unsupported_format",
            f"32-bit integer samples outside the 16-bit range [{values.min()}, {values.max()}]",
        )
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _icc_to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    try:
        if image.mode == "RGB" and _is_srgb_identity(icc):
            return image
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _SRGB_PROFILE, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise ImageRejected("undecodable", f"embedded ICC profile unusable: {exc}") from exc


@functools.lru_cache(maxsize=64)
def _is_srgb_identity(icc: bytes) -> bool:
    """True if converting with this RGB profile moves no 8-bit colour by more than 1 level.

    Checked on a probe of every grey level, every level of each primary and a 16^3
    colour grid. The common "sRGB IEC61966-2.1" profile passes (it differs from
    LittleCMS's sRGB by 1 level on ~0.1 % of colours, near saturated green); Display P3,
    Adobe RGB or gamma-2.2 profiles move colours by many levels. Skipping the
    conversion for sRGB saves ~14 ms per megapixel.
    """
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    converted = ImageCms.profileToProfile(_PROBE, source, _SRGB_PROFILE, outputMode="RGB")
    change = np.abs(np.asarray(converted).astype(np.int16) - np.asarray(_PROBE).astype(np.int16))
    return int(change.max()) <= 1


def _srgb_probe() -> Image.Image:
    levels = np.arange(256, dtype=np.uint8)
    zero = np.zeros_like(levels)
    ramps = [np.stack(channels, axis=1) for channels in (
        (levels, levels, levels), (levels, zero, zero), (zero, levels, zero), (zero, zero, levels),
    )]
    grid = np.stack(np.meshgrid(*[np.arange(0, 256, 17, dtype=np.uint8)] * 3, indexing="ij"), axis=-1)
    colours = np.concatenate([*ramps, grid.reshape(-1, 3)])
    return Image.fromarray(colours[None])


_PROBE = _srgb_probe()


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite straight-alpha ``rgb`` over white, rounded: (c*a + 255*(255-a)) / 255."""
    a = alpha.astype(np.uint32)[..., None]
    out = (rgb.astype(np.uint32) * a + _WHITE * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _check_rgb(rgb: np.ndarray, what: str) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{what} needs uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")


def _cv2_encode(ext: str, pixels: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, pixels, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode {pixels.shape} {pixels.dtype} as {ext}")
    return buf.tobytes()
