"""Every pyarrow schema, tar member name and output path of a mirrorset build.

Output layout (``out`` is the build's output directory)::

    manifests/sources.parquet                      SOURCES_SCHEMA
    manifests/rejects.parquet                      REJECTS_SCHEMA
    manifests/detections.parquet                   DETECTIONS_SCHEMA (manifests/detections.py)
    manifests/pairs/subset=<subset>/part-<index:06d>.parquet   PAIRS_SCHEMA, one part per shard
    shards/<subset>/<subset>-<index:06d>.tar       pair members, see MEMBER_SUFFIXES
    _markers/<subset>-<index:06d>.json             commit marker, written after tar and part
    dataset.json, verify.json

Temporary files are named ``.<final name>.partial`` next to their final path: the
leading dot hides them from pyarrow's dataset discovery while a build runs.

The pairs table is hive-partitioned by ``subset`` *and* stores ``subset`` inside
every part as ``dictionary<int32, string>``: that is the one type that merges with
the partition key pyarrow infers from the directory name, so
``pd.read_parquet("out/manifests/pairs")`` yields a single categorical ``subset``
column, and a part read on its own still carries its subset.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from manifests.detections import DETECTIONS_SCHEMA  # re-exported: owned by the detectors team

#: Bumped whenever a schema, member name or path below changes.
SCHEMA_VERSION = 1

#: Subset names, also the shard name prefixes and the ``subset=`` partition values.
SUBSETS = ("simulated", "professional")

#: Image encodings a pair may use, mapped to their file extension.
IMAGE_FORMATS = {"jpeg": "jpg", "png": "png", "webp": "webp"}

#: Member name suffixes of one pair, ``{key}.{suffix}``, in tar order (sorted by
#: name); ``{ext}`` is ``image_ext(image_format)``.
MEMBER_SUFFIXES = ("after.{ext}", "before.{ext}", "json", "mask.png")

#: Pair-row column holding the sha256 of each member suffix (``{ext}`` as above).
MEMBER_SHA_COLUMNS = {
    "after.{ext}": "sha256_after",
    "before.{ext}": "sha256_before",
    "json": "sha256_json",
    "mask.png": "sha256_mask",
}

_KEY_RE = re.compile(r"^[0-9A-Za-z_]+(?:-[0-9A-Za-z_]+)*$")
_SHARD_INDEX_MAX = 999_999

SOURCES_SCHEMA = pa.schema(
    [
        # Content id sha256(file bytes)[:16] (lowercase hex); for a file whose bytes
        # could not be read, the path id ingest derives from its path instead.
        pa.field("source_id", pa.string(), nullable=False),
        # Where the photo was read from (as given by the source spec).
        pa.field("path", pa.string(), nullable=False),
        # Upright size (EXIF applied); null unless the photo decoded.
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        # File size in bytes; null when unknown (missing file).
        pa.field("bytes", pa.int64()),
        # sha256 of the file bytes, lowercase hex (64 chars); null when unread.
        pa.field("sha256", pa.string()),
        # "accepted" | "rejected" | "duplicate"; rejected and duplicate sources also
        # have a row in rejects.parquet.
        pa.field("status", pa.string(), nullable=False),
        # Null when accepted; a reject reason code, or "duplicate_of:<source_id>".
        pa.field("reason", pa.string()),
    ],
    metadata={"mirrorset.table": "sources", "mirrorset.schema_version": str(SCHEMA_VERSION)},
)

REJECTS_SCHEMA = pa.schema(
    [
        # The source's id as in sources.parquet.
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        # Pipeline stage that rejected it: "ingest", "detect", "synthesis", ...
        pa.field("stage", pa.string(), nullable=False),
        # Reason code (see docs/manifests.md for the known ones).
        pa.field("reason", pa.string(), nullable=False),
        # Free-text detail for humans (exception message, measured value ...).
        pa.field("detail", pa.string()),
    ],
    metadata={"mirrorset.table": "rejects", "mirrorset.schema_version": str(SCHEMA_VERSION)},
)

OP_STRUCT = pa.struct(
    [
        pa.field("name", pa.string(), nullable=False),
        # Requested strength in [-100, 100].
        pa.field("strength", pa.int16(), nullable=False),
        # Strength actually applied after the fold check clamped it.
        pa.field("applied_strength", pa.int16(), nullable=False),
        pa.field("clamped", pa.bool_(), nullable=False),
    ]
)

PAIRS_SCHEMA = pa.schema(
    [
        # Equal to ``key``: pair_key(source_id, face_index, edit_index, view).
        pa.field("pair_id", pa.string(), nullable=False),
        # Dictionary-typed so it merges with the hive partition key (module docstring).
        pa.field("subset", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        # group_key(source_id, face_index, edit_index): all views of one edit share it.
        pa.field("group_id", pa.string(), nullable=False),
        # View index 0..K-1 of the self-augmentation.
        pa.field("view", pa.int16(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        # Index of the edited face in the photo's detections.
        pa.field("face_index", pa.int16(), nullable=False),
        # shard_name(subset, index) of the tar holding the members.
        pa.field("shard", pa.string(), nullable=False),
        # Member prefix in the tar: members are f"{key}.{suffix}".
        pa.field("key", pa.string(), nullable=False),
        # The op chain in application order.
        pa.field("ops", pa.list_(pa.field("element", OP_STRUCT, nullable=False)), nullable=False),
        # Augmentation matrix, row-major 2x3, base-frame pixel (x, y) -> pair pixel (x, y).
        pa.field("aug_matrix", pa.list_(pa.field("element", pa.float64()), 6), nullable=False),
        # Size of the pair's images in pixels.
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        # Seed of this view's augmentation: derive_seed(global_seed, "view", source_id,
        # face_index, view), a 63-bit value, so int64 (never negative).
        pa.field("seed", pa.int64(), nullable=False),
        # "jpeg" | "png" | "webp" (before and after; the mask is always PNG).
        pa.field("image_format", pa.string(), nullable=False),
        # sha256 (lowercase hex) of each member's bytes.
        pa.field("sha256_before", pa.string(), nullable=False),
        pa.field("sha256_after", pa.string(), nullable=False),
        pa.field("sha256_mask", pa.string(), nullable=False),
        pa.field("sha256_json", pa.string(), nullable=False),
        # Edit region bounding box in the pair's image: x0, y0, x1, y1 (ends exclusive).
        pa.field("region_bbox", pa.list_(pa.field("element", pa.int32()), 4), nullable=False),
        # Number of mask pixels > 0 in the pair's image.
        pa.field("region_area_px", pa.int64(), nullable=False),
        # Smallest Jacobian determinant of the composed warp (> 0: no fold).
        pa.field("min_jacobian", pa.float32(), nullable=False),
    ],
    metadata={"mirrorset.table": "pairs", "mirrorset.schema_version": str(SCHEMA_VERSION)},
)


def image_ext(fmt: str) -> str:
    """File extension (no dot) of image format ``fmt`` ("jpeg" -> "jpg")."""
    try:
        return IMAGE_FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown image format {fmt!r}; known: {sorted(IMAGE_FORMATS)}") from None


def member_suffixes(fmt: str) -> tuple[str, ...]:
    """The member suffixes of one pair encoded as ``fmt``, in tar order."""
    ext = image_ext(fmt)
    return tuple(s.format(ext=ext) for s in MEMBER_SUFFIXES)


def member_sha_columns(fmt: str) -> dict[str, str]:
    """Member suffix -> pair-row sha256 column, for a pair encoded as ``fmt``."""
    ext = image_ext(fmt)
    return {s.format(ext=ext): column for s, column in MEMBER_SHA_COLUMNS.items()}


def check_subset(subset: str) -> str:
    """Return ``subset`` or raise ValueError if it is not one of SUBSETS."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; known: {list(SUBSETS)}")
    return subset


def shard_name(subset: str, index: int) -> str:
    """``shard_name("simulated", 123) == "simulated-000123"``."""
    check_subset(subset)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= _SHARD_INDEX_MAX:
        raise ValueError(f"shard index must be an int in [0, {_SHARD_INDEX_MAX}], got {index!r}")
    return f"{subset}-{index:06d}"


def parse_shard_name(name: str) -> tuple[str, int]:
    """Inverse of :func:`shard_name`: ``"simulated-000123" -> ("simulated", 123)``."""
    subset, sep, digits = name.rpartition("-")
    if not sep or len(digits) != 6 or not digits.isdigit():
        raise ValueError(f"not a shard name: {name!r} (expected '<subset>-<6 digits>')")
    check_subset(subset)
    return subset, int(digits)


def shard_tar_path(out: str | Path, subset: str, index: int) -> Path:
    """``out/shards/<subset>/<shard>.tar``."""
    return Path(out) / "shards" / subset / f"{shard_name(subset, index)}.tar"


def pairs_dir(out: str | Path) -> Path:
    """Root of the hive-partitioned pairs table, ``out/manifests/pairs``."""
    return Path(out) / "manifests" / "pairs"


def pairs_part_path(out: str | Path, subset: str, index: int) -> Path:
    """``out/manifests/pairs/subset=<subset>/part-<index:06d>.parquet``."""
    shard_name(subset, index)
    return pairs_dir(out) / f"subset={subset}" / f"part-{index:06d}.parquet"


def marker_path(out: str | Path, subset: str, index: int) -> Path:
    """``out/_markers/<shard>.json``."""
    return Path(out) / "_markers" / f"{shard_name(subset, index)}.json"


def sources_path(out: str | Path) -> Path:
    return Path(out) / "manifests" / "sources.parquet"


def rejects_path(out: str | Path) -> Path:
    return Path(out) / "manifests" / "rejects.parquet"


def detections_path(out: str | Path) -> Path:
    return Path(out) / "manifests" / "detections.parquet"


def partial_path(path: str | Path) -> Path:
    """Temporary name of an output while it is written: ``dir/.<name>.partial``."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def _check_key_part(name: str, value: str) -> None:
    if not isinstance(value, str) or not _KEY_RE.match(value):
        raise ValueError(
            f"{name} {value!r} may hold only letters, digits, '_' and inner '-' "
            "(no '.', which webdataset splits keys at)"
        )


def _check_index(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 99:
        raise ValueError(f"{name} must be an int in [0, 99], got {value!r}")


def check_key(key: str) -> str:
    """Return ``key`` or raise ValueError if it is not a valid tar member prefix."""
    _check_key_part("key", key)
    return key


def group_key(source_id: str, face_index: int, edit_index: int) -> str:
    """``"<source_id>-f00-e00"``: the id shared by all views of one edit."""
    _check_key_part("source_id", source_id)
    _check_index("face_index", face_index)
    _check_index("edit_index", edit_index)
    return f"{source_id}-f{face_index:02d}-e{edit_index:02d}"


def pair_key(source_id: str, face_index: int, edit_index: int, view: int) -> str:
    """``"<source_id>-f00-e00-v00"``: the pair id and its tar member prefix."""
    _check_index("view", view)
    return f"{group_key(source_id, face_index, edit_index)}-v{view:02d}"
