"""``ROOT/croissant.json``: Croissant 1.1 JSON-LD metadata of a dataset root, with the RAI fields.

Built with mlcroissant's own node classes (so the JSON-LD is what its validator expects):

- distribution: one FileObject per committed tar (``contentUrl`` relative to the root,
  ``sha256`` and size from its commit marker), one per shard index, a FileSet per subset
  for the members inside its tars, and a FileSet per manifest table
  (``manifests/<table>/...parquet``);
- record sets: one per table (``sources``, ``detections``, ``rejects``, ``plan``, ``pairs``,
  ``pair_ops``) with a field per column (descriptions from ``manifests.columns``); list
  columns are arrays; lists of flat structs (the ``ops`` chain, verdicts, models) are arrays
  with sub-fields; deeper detection structs (persons, faces, poses) and the rejects'
  measurement map are described by their FileSet and the docs, not typed field by field;
- Responsible-AI fields (collection, preprocessing, machine annotation tools, biases,
  limitations, uses, social impact, personal information, maintenance).

Paths are relative and nothing depends on the time or the machine, so the same root gives
the same bytes.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from manifests.columns import COLUMN_DOCS
from manifests.detections import DETECTIONS_SCHEMA
from manifests.index import read_shard_index
from manifests.markers import read_markers
from manifests.schema import (
    DETECTIONS_DIR,
    PAIR_OPS_DIR,
    PAIR_OPS_SCHEMA,
    PAIRS_DIR,
    PAIRS_SCHEMA,
    PLAN_DIR,
    PLAN_SCHEMA,
    REJECTS_DIR,
    REJECTS_SCHEMA,
    SCHEMA_VERSION,
    SOURCES_DIR,
    SOURCES_SCHEMA,
    SUBSETS,
    shard_index_path,
)
from manifests.storage import Store, dumps_json

CROISSANT_FILE = "croissant.json"
LICENSE_URL = "https://www.gnu.org/licenses/agpl-3.0.html"
CITATION = (
    "@misc{mirrorset, title = {mirrorset: strictly aligned before/after pairs for exemplar-based "
    "structural portrait retouching}, note = {dataset built with the mirrorset pipeline}}"
)

#: Table -> (schema, FileSet includes, description).
TABLES: dict[str, tuple[pa.Schema, str, str]] = {
    "sources": (SOURCES_SCHEMA, f"{SOURCES_DIR}/part-*.parquet", "one row per input path: id, size, sha256, status"),
    "detections": (DETECTIONS_SCHEMA, f"{DETECTIONS_DIR}/part-*.parquet",
                   "one row per accepted photo: persons, face meshes, poses, gate verdicts, models"),
    "rejects": (REJECTS_SCHEMA, f"{REJECTS_DIR}/*.parquet",
                "one row per rejected photo, person, edit or view, with the stage and a reason code"),
    "plan": (PLAN_SCHEMA, f"{PLAN_DIR}/subset=*/gen-*.parquet", "which edits of which photos each shard holds"),
    "pairs": (PAIRS_SCHEMA, f"{PAIRS_DIR}/subset=*/part-*.parquet",
              "one row per pair: ids, op chain, matrices, member sha256s, scale and QA measurements"),
    "pair_ops": (PAIR_OPS_SCHEMA, f"{PAIR_OPS_DIR}/subset=*/part-*.parquet",
                 "one row per (pair, op): the flat table to filter pairs by op and strength"),
}  # fmt: skip

MEMBER_INCLUDES = ["*.after.*", "*.before.*", "*.json", "*.mask.png", "*.opmask.png", "*.regions.png", "*.strength.png"]

RAI = {
    "data_collection": (
        "Photos are ingested from a source the builder chooses (a folder, a URI or a list). Each accepted photo "
        "is run through person detection (YOLO pose), face mesh and pose (MediaPipe); quality gates keep usable "
        "faces and persons. Structural retouching edits (liquify warps of named facial, face-shape and body ops "
        "at recorded strengths) are rendered on each usable person, and every edit is self-augmented into several "
        "views by applying one random spatial transform to before, after and the masks alike."
    ),
    "data_collection_type": ["Secondary data analysis", "Software-generated (synthetic edits of real photos)"],
    "data_collection_raw_data": "The source photos themselves are not redistributed in this layout's tables; "
    "each pair holds crops of one photo before and after an edit.",
    "data_preprocessing_protocol": [
        "Decode with EXIF orientation applied; reject empty, truncated, undecodable, too small or too large files "
        "and exact duplicates (by sha256).",
        "Detect on a downscaled copy; edit at full resolution (professional) or in a face-centred frame (simulated).",
        "Encode before/after as JPEG (quality recorded) or lossless PNG/WebP; masks as PNG.",
    ],
    "data_annotation_protocol": [
        "Annotations are machine-generated: the op chain with requested and applied strengths, the edit region "
        "mask and a per-op mask, the base and augmentation matrices, and per-pair QA measurements are produced "
        "by the pipeline that made the edit; no human labels."
    ],
    "annotations_per_item": "One parameter record, one region mask and one per-op mask per pair.",
    "machine_annotation_tools": [
        "Ultralytics YOLO pose (person boxes and keypoints)",
        "MediaPipe face mesh with irises (478 landmarks) and pose (33 landmarks)",
        "mirrorset moving-least-squares liquify warps (warps package)",
    ],
    "data_biases": [
        "Which faces and bodies are edited follows the detectors' recall and the quality gates (size, head pose, "
        "blur), which vary with skin tone, age, occlusion and photo style; the rejects table records every "
        "exclusion with its reason so the effect can be measured.",
        "The ops encode one retouching vocabulary (e.g. eye enlargement, slimming) that reflects particular "
        "beauty norms.",
    ],
    "data_limitations": [
        "Edits are synthetic warps, not retouchers' work: they teach geometry, not taste.",
        "QA columns that are null were not measured by the build that made the pairs.",
        "Shards mix train, val and test pairs; the split column (by source photo) is authoritative.",
    ],
    "data_use_cases": [
        "Training and evaluating exemplar-based structural portrait retouching (image-to-image) models.",
        "Not for identifying people, inferring sensitive attributes, or producing deceptive images of real people.",
    ],
    "data_social_impact": (
        "Retouching models can entrench narrow body and beauty ideals and can be used to alter images of people "
        "without their consent. Builders should publish only photos whose subjects agreed to this use and state "
        "the intended uses on the dataset card."
    ),
    "personal_sensitive_information": [
        "Portraits are personal data: every pair shows an identifiable person, and face landmarks and any face "
        "embeddings derived from them are biometric data in many jurisdictions.",
        "Photos may reveal health, ethnicity, religion or other special categories; the builder must check the "
        "legal basis, consent and licence of every source photo.",
    ],
    "data_release_maintenance_plan": (
        "The dataset is rebuilt from its recorded config (config.json, dataset.json); adding photos appends shards "
        "without rewriting existing ones. To remove a photo, delete it from the source and rebuild into a fresh "
        "root (existing shards keep every photo they planned); `mirrorset verify` checks the result."
    ),
}


def croissant_metadata(store: Store, *, name: str = "mirrorset", description: str | None = None) -> dict[str, Any]:
    """The Croissant JSON-LD of the dataset at ``store``."""
    import mlcroissant as mlc

    distribution: list[Any] = []
    for subset in SUBSETS:
        markers = read_markers(store, subset)
        if not markers:
            continue
        tars = []
        for index, marker in sorted(markers.items()):
            tar = marker["files"]["tar"]
            tars.append(marker["shard"])
            distribution.append(mlc.FileObject(
                id=marker["shard"], name=marker["shard"], content_url=tar["path"], content_size=f"{tar['bytes']} B",
                encoding_formats=["application/x-tar"], sha256=tar["sha256"],
                description=f"{subset} shard {index}: {marker['counts']['pairs']} pairs (WebDataset tar)",
            ))  # fmt: skip
        if read_shard_index(store, subset) is not None:
            rel = shard_index_path(subset)
            data = store.read_bytes(rel)
            distribution.append(mlc.FileObject(
                id=f"{subset}-index", name=f"{subset}-index", content_url=rel, content_size=f"{len(data)} B",
                encoding_formats=["application/json"], sha256=_sha256(data),
                description=f"wids-shard-index-v1 of the {subset} shards (per-shard sample counts and sha256)",
            ))  # fmt: skip
        distribution.append(mlc.FileSet(
            id=f"{subset}-members", name=f"{subset}-members", contained_in=tars, includes=MEMBER_INCLUDES,
            encoding_formats=["image/jpeg"],
            description=f"members of the {subset} pairs: <key>.before.<ext>, <key>.after.<ext> (RGB), <key>.mask.png "
            "(edit region, 255 inside), <key>.opmask.png (bit k: op k moved the pixel), <key>.regions.png (region ids of "
            "the region parameter map), <key>.strength.png (spatial strength, 255 = full), <key>.json (parameter record)",
        ))  # fmt: skip
    record_sets = []
    for table, (schema, includes, about) in TABLES.items():
        distribution.append(mlc.FileSet(
            id=f"{table}-parquet", name=f"{table}-parquet", includes=[includes],
            encoding_formats=["application/x-parquet"], description=f"parts of the {table} table",
        ))  # fmt: skip
        fields = [f for f in (_field(mlc, table, column) for column in schema) if f is not None]
        key = {"pairs": "pairs/pair_id", "sources": "sources/source_id", "detections": "detections/source_id"}.get(table)
        record_sets.append(mlc.RecordSet(id=table, name=table, description=about, fields=fields, key=key))
    metadata = mlc.Metadata(
        name=name,
        description=description or "Strictly aligned before/after pairs for exemplar-based structural portrait "
        "retouching, built by the mirrorset pipeline: WebDataset tar shards and Parquet manifests.",
        conforms_to=["http://mlcommons.org/croissant/1.1", "http://mlcommons.org/croissant/RAI/1.0"],
        license=[LICENSE_URL],
        cite_as=CITATION,
        version=f"{SCHEMA_VERSION}.0.0",
        keywords=["portrait retouching", "image editing", "paired images", "webdataset", "liquify"],
        distribution=distribution,
        record_sets=record_sets,
        **RAI,
    )
    return metadata.to_json()


def write_croissant(store: Store, *, name: str = "mirrorset") -> str:
    """Commit ``ROOT/croissant.json``; returns its URI."""
    store.write_bytes(CROISSANT_FILE, dumps_json(croissant_metadata(store, name=name)))
    return store.uri(CROISSANT_FILE)


_SCALARS = (
    (pa.types.is_string, "TEXT"), (pa.types.is_dictionary, "TEXT"), (pa.types.is_boolean, "BOOL"),
    (pa.types.is_integer, "INTEGER"), (pa.types.is_floating, "FLOAT"),
)  # fmt: skip


def _data_type(mlc: Any, arrow_type: pa.DataType) -> Any | None:
    for test, name in _SCALARS:
        if test(arrow_type):
            return getattr(mlc.DataType, name)
    return None


def _field(mlc: Any, table: str, column: pa.Field) -> Any | None:
    """The Croissant field of one column, or None when its type has no Croissant mapping."""
    doc = COLUMN_DOCS[table][column.name]
    source = mlc.Source(file_set=f"{table}-parquet", extract=mlc.Extract(column=column.name))
    fid = f"{table}/{column.name}"
    kind = column.type
    scalar = _data_type(mlc, kind)
    if scalar is not None:
        return mlc.Field(id=fid, name=column.name, description=doc, data_types=[scalar], source=source)
    if pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind):
        element = _data_type(mlc, kind.value_type)
        shape = str(kind.list_size) if pa.types.is_fixed_size_list(kind) else "-1"
        if element is not None:
            return mlc.Field(id=fid, name=column.name, description=doc, data_types=[element], source=source,
                             is_array=True, array_shape=shape)  # fmt: skip
        if pa.types.is_struct(kind.value_type):
            members = [kind.value_type.field(i) for i in range(kind.value_type.num_fields)]
            if all(_data_type(mlc, m.type) is not None for m in members):
                sub_fields = [
                    mlc.Field(id=f"{fid}/{m.name}", name=m.name, data_types=[_data_type(mlc, m.type)],
                              source=mlc.Source(file_set=f"{table}-parquet", extract=mlc.Extract(column=column.name),
                                                transforms=[mlc.Transform(json_path=m.name)]))
                    for m in members
                ]  # fmt: skip
                return mlc.Field(id=fid, name=column.name, description=doc, is_array=True, array_shape="-1",
                                 sub_fields=sub_fields)  # fmt: skip
    return None


def _sha256(data: bytes) -> str:
    from manifests.digests import sha256_hex

    return sha256_hex(data)
