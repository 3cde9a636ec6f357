"""Every pyarrow schema, tar member name and output path of a mirrorset dataset root.

Layout (paths relative to the root, a local folder or an object-store URI; see
``manifests.storage``)::

    config.json                                         recorded config and versions
    manifests/sources/part-<n:06d>.parquet              SOURCES_SCHEMA, one row per input path
    manifests/detections/part-<n:06d>.parquet           DETECTIONS_SCHEMA, one row per accepted photo
    manifests/rejects/<stage>-<n:06d>.parquet           REJECTS_SCHEMA, one part per task
    manifests/plan/subset=<subset>/gen-<g:06d>.parquet  PLAN_SCHEMA: which edits each shard holds
    manifests/pairs/subset=<subset>/part-<n:06d>.parquet    PAIRS_SCHEMA, one part per shard
    manifests/pair_ops/subset=<subset>/part-<n:06d>.parquet PAIR_OPS_SCHEMA, one row per (pair, op)
    shards/<subset>/<subset>-<n:06d>.tar                pair members (MEMBER_SUFFIXES)
    shards/<subset>/index.json                          wids-shard-index-v1 of the subset
    _markers/<subset>-<n:06d>.json                      shard commit marker, written last
    _work/...                                           resumable intermediate state
    dataset.json, verify.json

Every table is a folder of parts, so a reader sees the whole table with
``pd.read_parquet("<root>/manifests/<table>")`` and a growing dataset only adds parts.
The pairs and pair_ops tables are hive-partitioned by ``subset`` *and* store ``subset``
inside every part as ``dictionary<int32, string>``: the one type that merges with the
partition key pyarrow infers from the folder name (a single categorical column).

Local temporary files are named ``.<final name>.<attempt>.partial``: the leading dot
hides them from pyarrow's dataset discovery and from listings.
"""

from __future__ import annotations

import re

import pyarrow as pa

from manifests.detections import DETECTIONS_SCHEMA  # re-exported: owned by the detectors package

#: Bumped whenever a schema, member name or path below changes. 2: tables as folders of
#: parts, keys with subset/person/edit/view room, plan, pair_ops, QA and scale columns.
SCHEMA_VERSION = 2

#: Subset names: shard name prefixes, ``subset=`` partition values, key prefixes.
SUBSETS = ("simulated", "professional")

#: Image encodings a pair may use, mapped to their file extension.
IMAGE_FORMATS = {"jpeg": "jpg", "png": "png", "webp": "webp"}

#: Member name suffixes of one pair, ``{key}.{suffix}``, in tar order (sorted by name);
#: ``{ext}`` is ``image_ext(image_format)``.
MEMBER_SUFFIXES = ("after.{ext}", "before.{ext}", "json", "mask.png", "opmask.png", "regions.png", "strength.png")

#: Pair-row column holding the sha256 of each member suffix (``{ext}`` as above).
MEMBER_SHA_COLUMNS = {
    "after.{ext}": "sha256_after",
    "before.{ext}": "sha256_before",
    "json": "sha256_json",
    "mask.png": "sha256_mask",
    "opmask.png": "sha256_opmask",
    "regions.png": "sha256_regions",
    "strength.png": "sha256_strength",
}

#: Room in keys: persons per photo, edits per person, views per edit (exclusive bounds).
MAX_PERSONS, MAX_EDITS, MAX_VIEWS = 100, 100_000, 10_000

_KEY_RE = re.compile(r"^[0-9A-Za-z_]+(?:-[0-9A-Za-z_]+)*$")
_INDEX_MAX = 999_999

SOURCES_SCHEMA = pa.schema(
    [
        # Content id sha256(file bytes)[:16] (lowercase hex); for a path whose bytes
        # could not be read, the path id ingest derives from the path instead.
        pa.field("source_id", pa.string(), nullable=False),
        # Where the photo was read from: an absolute local path or a URI.
        pa.field("path", pa.string(), nullable=False),
        # Format Pillow identified from the bytes ("JPEG", "PNG", ...); null when unread.
        pa.field("format", pa.string()),
        # Upright size (EXIF orientation applied) from the header; null unless identified.
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        # File size in bytes; null when unknown (missing file).
        pa.field("bytes", pa.int64()),
        # sha256 of the file bytes, lowercase hex (64 chars); null when unread.
        pa.field("sha256", pa.string()),
        # "accepted" | "rejected" | "duplicate"; rejected and duplicate paths also have
        # a row in the rejects table.
        pa.field("status", pa.string(), nullable=False),
        # Null when accepted; else a reason code ("duplicate" for duplicates).
        pa.field("reason", pa.string()),
        # Free text: the decoder's message, or the original's source_id for a duplicate.
        pa.field("detail", pa.string()),
    ],
    metadata={"mirrorset.table": "sources", "mirrorset.schema_version": str(SCHEMA_VERSION)},
)

REJECTS_SCHEMA = pa.schema(
    [
        # The source's id as in the sources table.
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        # Stage that rejected it: "ingest", "detect", "plan", "synthesis", "qa".
        pa.field("stage", pa.string(), nullable=False),
        # Reason code (docs/manifests.md lists the known ones).
        pa.field("reason", pa.string(), nullable=False),
        # Free text for humans (exception type and message, measured value, original id ...).
        pa.field("detail", pa.string()),
        # Subset, person, edit, view and attempt the reject is about; null when it is
        # about the whole photo (ingest, detect).
        pa.field("subset", pa.string()),
        pa.field("person_index", pa.int16()),
        pa.field("edit_index", pa.int32()),
        pa.field("view", pa.int16()),
        pa.field("attempt", pa.int16()),
        # The measurement a QA gate rejected (name -> value), else null.
        pa.field("measurements", pa.map_(pa.string(), pa.float64())),
    ],
    metadata={"mirrorset.table": "rejects", "mirrorset.schema_version": str(SCHEMA_VERSION)},
)

PLAN_SCHEMA = pa.schema(
    [
        # Shard index in the subset; rows of one shard are in sample order.
        pa.field("shard_index", pa.int32(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        # Detections part holding the photo's row (manifests/detections/part-<n>.parquet).
        pa.field("detections_part", pa.int32(), nullable=False),
        pa.field("person_index", pa.int16(), nullable=False),
        # Edits [edit_start, edit_stop) of that person, each rendered in ``views`` views.
        pa.field("edit_start", pa.int32(), nullable=False),
        pa.field("edit_stop", pa.int32(), nullable=False),
        pa.field("views", pa.int16(), nullable=False),
    ],
    metadata={"mirrorset.table": "plan", "mirrorset.schema_version": str(SCHEMA_VERSION)},
)

OP_STRUCT = pa.struct(
    [
        pa.field("name", pa.string(), nullable=False),
        # Requested strength in [-100, 100].
        pa.field("strength", pa.int16(), nullable=False),
        # Strength actually applied after the fold / stretch checks clamped it.
        pa.field("applied_strength", pa.int16(), nullable=False),
        pa.field("clamped", pa.bool_(), nullable=False),
    ]
)

_F32 = pa.float32()

#: Per-pair measurements (docs/fidelity.md); null where a measure does not apply.
QA_FIELDS = (
    # p99 disagreement (px) between this view's change mapped back to the base frame and the base change.
    pa.field("align_err_px", _F32),
    # Re-detected landmark motion on `after` / planned motion (face ops).
    pa.field("realized_ratio", _F32),
    # Largest motion of landmark groups the ops may not move / largest target motion.
    pa.field("collateral_ratio", _F32),
    # Fold-overs (Jacobian determinant <= 0) and the Jacobian range of the applied field.
    pa.field("fold_count", pa.int32()),
    pa.field("min_jacobian", _F32),
    pa.field("max_jacobian", _F32),
    # Mean |after - before| outside the mask after encoding / the codec noise of an unedited round trip.
    pa.field("outside_change", _F32),
    # Laplacian energy after / before in the moved region.
    pa.field("detail_ratio", _F32),
    # Face-embedding similarity of before and after (1 = identical; model in the record).
    pa.field("identity_sim", _F32),
)

PAIRS_SCHEMA = pa.schema(
    [
        # Equal to ``key``: pair_key(subset, source_id, person_index, edit_index, view).
        pa.field("pair_id", pa.string(), nullable=False),
        # Dictionary-typed so it merges with the hive partition key (module docstring).
        pa.field("subset", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        # group_key(...): all views of one edit share it.
        pa.field("group_id", pa.string(), nullable=False),
        # Hash of the op chain (names and applied strengths): different photos given the
        # same retouch share it, so a loader can draw several exemplars of one recipe.
        pa.field("recipe_id", pa.string(), nullable=False),
        # Shared by the rungs of one strength ladder (same op, photo, person); null otherwise.
        pa.field("ladder_id", pa.string()),
        # "train" | "val" | "test", by source photo (no photo is in two splits).
        pa.field("split", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        # Edited person (index into the photo's detections persons) and their face (-1: none).
        pa.field("person_index", pa.int16(), nullable=False),
        pa.field("face_index", pa.int16(), nullable=False),
        pa.field("edit_index", pa.int32(), nullable=False),
        # View index 0..K-1 of the self-augmentation.
        pa.field("view", pa.int16(), nullable=False),
        # Attempt that produced the edit (0 unless earlier attempts were rejected).
        pa.field("attempt", pa.int16(), nullable=False),
        # shard_name(subset, index) of the tar holding the members.
        pa.field("shard", pa.string(), nullable=False),
        # Member prefix in the tar: members are f"{key}.{suffix}".
        pa.field("key", pa.string(), nullable=False),
        # The op chain in application order.
        pa.field("ops", pa.list_(pa.field("element", OP_STRUCT, nullable=False)), nullable=False),
        # Photo pixel (x, y) -> base-frame pixel (x, y), row-major 2x3.
        pa.field("base_matrix", pa.list_(pa.field("element", pa.float64()), 6), nullable=False),
        # Base-frame pixel (x, y) -> pair pixel (x, y), row-major 2x3 (the self-augmentation).
        pa.field("aug_matrix", pa.list_(pa.field("element", pa.float64()), 6), nullable=False),
        # Size of the pair's images in pixels.
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        # Seed of this view's augmentation (63-bit, so int64, never negative).
        pa.field("seed", pa.int64(), nullable=False),
        # "jpeg" | "png" | "webp" (before and after; masks are PNG).
        pa.field("image_format", pa.string(), nullable=False),
        # sha256 (lowercase hex) of each member's bytes.
        pa.field("sha256_before", pa.string(), nullable=False),
        pa.field("sha256_after", pa.string(), nullable=False),
        pa.field("sha256_mask", pa.string(), nullable=False),
        pa.field("sha256_opmask", pa.string(), nullable=False),
        pa.field("sha256_regions", pa.string(), nullable=False),
        pa.field("sha256_strength", pa.string(), nullable=False),
        pa.field("sha256_json", pa.string(), nullable=False),
        # Edit region bounding box in the pair's image: x0, y0, x1, y1 (ends exclusive).
        pa.field("region_bbox", pa.list_(pa.field("element", pa.int32()), 4), nullable=False),
        # Number of mask pixels > 0 in the pair's image.
        pa.field("region_area_px", pa.int64(), nullable=False),
        # Inter-ocular distance of the edited face in the pair's pixels (null: no face).
        pa.field("face_iod_px", _F32),
        # Largest displacement of the edit in the pair's pixels.
        pa.field("max_disp_px", _F32, nullable=False),
        *QA_FIELDS,
    ],
    metadata={"mirrorset.table": "pairs", "mirrorset.schema_version": str(SCHEMA_VERSION)},
)

PAIR_OPS_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("subset", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("group_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        # Position of the op in the chain (0 first).
        pa.field("op_index", pa.int16(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        # Catalog group: "face" | "face_shape" | "body".
        pa.field("group", pa.string(), nullable=False),
        pa.field("strength", pa.int16(), nullable=False),
        pa.field("applied_strength", pa.int16(), nullable=False),
        pa.field("clamped", pa.bool_(), nullable=False),
        # Pixels of the pair this op moved (its bit in `{key}.opmask.png`).
        pa.field("area_px", pa.int64(), nullable=False),
    ],
    metadata={"mirrorset.table": "pair_ops", "mirrorset.schema_version": str(SCHEMA_VERSION)},
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


def _check_index(name: str, value: int, bound: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
        raise ValueError(f"{name} must be an int in [0, {bound - 1}], got {value!r}")


def shard_name(subset: str, index: int) -> str:
    """``shard_name("simulated", 123) == "simulated-000123"``."""
    check_subset(subset)
    _check_index("shard index", index, _INDEX_MAX + 1)
    return f"{subset}-{index:06d}"


def parse_shard_name(name: str) -> tuple[str, int]:
    """Inverse of :func:`shard_name`: ``"simulated-000123" -> ("simulated", 123)``."""
    subset, sep, digits = name.rpartition("-")
    if not sep or len(digits) != 6 or not digits.isdigit():
        raise ValueError(f"not a shard name: {name!r} (expected '<subset>-<6 digits>')")
    check_subset(subset)
    return subset, int(digits)


def _part(index: int) -> str:
    _check_index("part index", index, _INDEX_MAX + 1)
    return f"part-{index:06d}.parquet"


SOURCES_DIR = "manifests/sources"
DETECTIONS_DIR = "manifests/detections"
REJECTS_DIR = "manifests/rejects"
PAIRS_DIR = "manifests/pairs"
PAIR_OPS_DIR = "manifests/pair_ops"
PLAN_DIR = "manifests/plan"
MARKERS_DIR = "_markers"
WORK_DIR = "_work"
CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
VERIFY_FILE = "verify.json"


def sources_part_path(index: int) -> str:
    return f"{SOURCES_DIR}/{_part(index)}"


def detections_part_path(index: int) -> str:
    return f"{DETECTIONS_DIR}/{_part(index)}"


def rejects_part_path(stage: str, index: int) -> str:
    """``manifests/rejects/<stage>-<index:06d>.parquet``; ``stage`` names the writing task
    kind ("ingest", "detect", "plan-simulated", "simulated", ...)."""
    _check_key_part("reject part stage", stage)
    _check_index("part index", index, _INDEX_MAX + 1)
    return f"{REJECTS_DIR}/{stage}-{index:06d}.parquet"


def plan_path(subset: str, generation: int) -> str:
    """``manifests/plan/subset=<subset>/gen-<generation:06d>.parquet``."""
    check_subset(subset)
    _check_index("plan generation", generation, _INDEX_MAX + 1)
    return f"{PLAN_DIR}/subset={subset}/gen-{generation:06d}.parquet"


def shard_tar_path(subset: str, index: int) -> str:
    return f"shards/{subset}/{shard_name(subset, index)}.tar"


def shard_index_path(subset: str) -> str:
    """``shards/<subset>/index.json`` (wids-shard-index-v1; urls relative to it)."""
    return f"shards/{check_subset(subset)}/index.json"


def pairs_part_path(subset: str, index: int) -> str:
    shard_name(subset, index)
    return f"{PAIRS_DIR}/subset={subset}/{_part(index)}"


def pair_ops_part_path(subset: str, index: int) -> str:
    shard_name(subset, index)
    return f"{PAIR_OPS_DIR}/subset={subset}/{_part(index)}"


def marker_path(subset: str, index: int) -> str:
    return f"{MARKERS_DIR}/{shard_name(subset, index)}.json"


def _check_key_part(name: str, value: str) -> None:
    if not isinstance(value, str) or not _KEY_RE.match(value):
        raise ValueError(
            f"{name} {value!r} may hold only letters, digits, '_' and inner '-' "
            "(no '.', which webdataset and Hugging Face split keys at)"
        )


def check_key(key: str) -> str:
    """Return ``key`` or raise ValueError if it is not a valid tar member prefix."""
    _check_key_part("key", key)
    return key


def group_key(subset: str, source_id: str, person_index: int, edit_index: int) -> str:
    """``"simulated-<source_id>-p00-e00000"``: the id shared by all views of one edit."""
    check_subset(subset)
    _check_key_part("source_id", source_id)
    _check_index("person_index", person_index, MAX_PERSONS)
    _check_index("edit_index", edit_index, MAX_EDITS)
    return f"{subset}-{source_id}-p{person_index:02d}-e{edit_index:05d}"


def pair_key(subset: str, source_id: str, person_index: int, edit_index: int, view: int) -> str:
    """``"simulated-<source_id>-p00-e00000-v0000"``: the pair id and its tar member prefix."""
    _check_index("view", view, MAX_VIEWS)
    return f"{group_key(subset, source_id, person_index, edit_index)}-v{view:04d}"
