"""Ingest: list source photos, give each path an id and a status, drop exact duplicates.

A source is ``sample`` (photos shipped by installed packages, see
:mod:`pipeline.sample_corpus`), a local folder, an object-store prefix (``s3://bucket/photos``),
or a ``.parquet`` / ``.csv`` list with a ``path`` column (local or a URI). Every path yields
exactly one sources row; nothing is dropped silently:

* ``accepted``: its header identifies a still image within the limits; ``source_id`` is
  :func:`pipeline.imageio.content_id` of its bytes. Pixels are *not* decoded here: the first
  full decode is detection's (a file that turns out truncated is rejected there), the others
  one per synthesis run (see docs/pipeline.md "Decodes per photo").
* ``rejected``: ``reason`` is an :data:`pipeline.imageio.RejectCode`, ``unreadable`` (missing,
  permission denied, not a regular file) or ``outside_root`` (a symlink that leaves the source
  folder, or a listed path outside the allowed root); ``detail`` says why.
* ``duplicate``: the same bytes as an earlier path (in path order); ``reason`` is
  ``duplicate``, ``detail`` the original's source id; it shares that ``source_id``.

Ingest runs as tasks of ``ingest.chunk_size`` paths on the workers; each task commits its
rows to ``_work/ingest/part-<n>.parquet``. A rerun reuses the committed rows of every path it
has seen (a growing folder only reads its new files); the driver then writes the sources
table and the ingest rejects with duplicates resolved.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
from manifests.digests import sha256_hex
from manifests.parquet import encode_rows
from manifests.schema import SOURCES_SCHEMA, WORK_DIR
from manifests.storage import Store, Written
from pipeline.imageio import DecodeLimits, ImageRejected, content_id, decode_image, probe_image
from pipeline.sample_corpus import sample_paths
from pipeline.stage import Resources

LIST_SUFFIXES = (".parquet", ".csv")

#: Rows one ingest task commits (its paths, in order): the sources table's fields, path first.
INGEST_WORK_SCHEMA = pa.schema(
    [SOURCES_SCHEMA.field("path"), SOURCES_SCHEMA.field("source_id")]
    + [field for field in SOURCES_SCHEMA if field.name not in ("path", "source_id")]
)


@dataclass(frozen=True)
class SourceList:
    """The paths of a source, sorted, and the root every path must stay inside
    (None: no containment check, e.g. the sample corpus)."""

    paths: tuple[str, ...]
    root: str | None


def list_sources(source: str, *, list_root: str | None = None) -> SourceList:
    """The paths of ``source``, sorted by their string, checked eagerly.

    ``"sample"``: the sample corpus. A folder (local or URI): every file below it,
    recursively; names starting with "." (hidden files, .git) are skipped, every other file
    is listed whatever its name, so non-photos end as rejects. A ``.parquet`` / ``.csv``
    list: its ``path`` column, relative entries resolved against the list's folder; they
    must stay below ``list_root`` (default: the list's folder).

    Raises FileNotFoundError for a missing source and ValueError for an unusable one.
    """
    if source == "sample":
        return SourceList(tuple(sorted(photo.path for photo in sample_paths())), None)
    fs, root = fsspec.core.url_to_fs(source)
    local = _is_local(fs)
    if local:
        root = os.path.abspath(root)
    if not fs.exists(root):
        raise FileNotFoundError(f"source {source!r} does not exist (expected 'sample', a folder, or a .parquet/.csv list)")
    if fs.isdir(root):
        paths = _walk_local(root) if local else _walk_remote(fs, root)
        return SourceList(tuple(sorted(paths)), _real(root) if local else _uri(fs, root))
    if root.lower().endswith(LIST_SUFFIXES):
        folder = root.rsplit("/", 1)[0] if not local else os.path.dirname(root)
        paths = _read_path_list(fs, root, folder if not local else folder, local)
        allowed = list_root or (folder if local else _uri(fs, folder))
        return SourceList(tuple(sorted(paths)), _real(allowed) if "://" not in allowed else allowed.rstrip("/"))
    raise ValueError(f"source {source!r} is a file but not a .parquet or .csv list of paths")


def path_id(path: str) -> str:
    """Stable 16-hex id for a path whose bytes could not be read (sha256 of the path string)."""
    return hashlib.sha256(b"path\x1f" + path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def inspect_path(path: str, root: str | None, limits: DecodeLimits) -> dict[str, Any]:
    """The ingest row of one path (INGEST_WORK_SCHEMA); never raises for a bad file."""
    if root is not None and not _inside(path, root):
        return _unread(path, "outside_root", f"resolves to {_real(path) if '://' not in path else path}, outside {root}", None)
    if "://" in path:
        try:
            data = fsspec.open(path, "rb").open().read()
        except (OSError, ValueError) as exc:
            return _unread(path, "unreadable", f"{type(exc).__name__}: {exc}", None)
        size = len(data)
    else:
        try:
            info = os.stat(path)
        except OSError as exc:
            return _unread(path, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}", None)
        if not stat.S_ISREG(info.st_mode):
            return _unread(path, "unreadable", "not a regular file", None)
        size = info.st_size
        if size > limits.max_bytes:
            return _unread(path, "too_large", f"{size} bytes > max_bytes {limits.max_bytes}", size)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return _unread(path, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}", size)
    digest = sha256_hex(data)
    row = {"path": path, "source_id": digest[:16], "bytes": len(data), "sha256": digest,
           "format": None, "width": None, "height": None}  # fmt: skip
    try:
        fmt, width, height = probe_image(data, limits=limits)
    except ImageRejected as exc:
        return {**row, "status": "rejected", "reason": exc.code, "detail": exc.detail}
    return {**row, "format": fmt, "width": width, "height": height, "status": "accepted", "reason": None, "detail": None}


def read_source(path: str, *, limits: DecodeLimits, expected_id: str | None = None) -> np.ndarray:
    """Decode a source photo: (H, W, 3) uint8 RGB, upright.

    With ``expected_id``, raises :class:`SourceChanged` if the bytes changed since ingest.
    """
    with fsspec.open(path, "rb") as handle:
        data = handle.read()
    if expected_id is not None and content_id(data) != expected_id:
        raise SourceChanged(f"{path}: content id {content_id(data)} != {expected_id}; the file changed since ingest")
    return decode_image(data, limits=limits)


class SourceChanged(ValueError):
    """A source's bytes differ from what ingest recorded."""


def ingest_part_path(index: int) -> str:
    return f"{WORK_DIR}/ingest/part-{index:06d}.parquet"


@dataclass(frozen=True)
class IngestChunk:
    """Paths ``paths`` (committed as ``_work/ingest/part-<index>``), all checked against ``root``."""

    index: int
    paths: tuple[str, ...]
    root: str | None


class IngestStage:
    """Stage inspecting chunks of paths on the workers (reads and hashes; no pixel decode)."""

    name = "ingest"

    def __init__(self, store: Store, limits: DecodeLimits, resources: Resources = Resources()) -> None:
        self.store = store
        self.limits = limits
        self.resources = resources

    def setup(self) -> None:
        """Nothing to load."""

    def process_batch(self, items: list[IngestChunk]) -> list[Written]:
        return [self._run(chunk) for chunk in items]

    def teardown(self) -> None:
        """Nothing to release."""

    def _run(self, chunk: IngestChunk) -> Written:
        rows = [inspect_path(path, chunk.root, self.limits) for path in chunk.paths]
        return self.store.write_bytes(ingest_part_path(chunk.index), encode_rows(rows, INGEST_WORK_SCHEMA))


def resolve_duplicates(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sources rows (SOURCES_SCHEMA) from ingest rows in path order: a later path with the
    same bytes as an earlier *read* one becomes ``duplicate`` (detail: the original's id)."""
    first: dict[str, str] = {}
    out = []
    for row in rows:
        row = dict(row)
        if row["sha256"] is not None:
            if row["source_id"] in first:
                row.update(status="duplicate", reason="duplicate",
                           detail=f"{row['source_id']}: same bytes as {first[row['source_id']]}")  # fmt: skip
            else:
                first[row["source_id"]] = row["path"]
        out.append(row)
    return out


def reject_row(row: dict[str, Any]) -> dict[str, Any]:
    """The rejects-table row of a rejected or duplicate sources row."""
    return {
        "source_id": row["source_id"], "path": row["path"], "stage": "ingest", "reason": row["reason"],
        "detail": row["detail"], "subset": None, "person_index": None, "edit_index": None, "view": None,
        "attempt": None, "measurements": None,
    }  # fmt: skip


def chunk_paths(paths: Sequence[str], done: set[str], chunk_size: int, first_index: int, root: str | None) -> list[IngestChunk]:
    """Chunks of the paths not in ``done``, numbered from ``first_index``."""
    todo = [p for p in paths if p not in done]
    return [
        IngestChunk(first_index + i, tuple(todo[start : start + chunk_size]), root)
        for i, start in enumerate(range(0, len(todo), chunk_size))
    ]


def _unread(path: str, reason: str, detail: str, size: int | None) -> dict[str, Any]:
    return {"path": path, "source_id": path_id(path), "format": None, "width": None, "height": None,
            "bytes": size, "sha256": None, "status": "rejected", "reason": reason, "detail": detail}  # fmt: skip


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return f"{protocol}://{path.rstrip('/')}"


def _real(path: str) -> str:
    return os.path.realpath(path)


def _inside(path: str, root: str) -> bool:
    """``path`` (after resolving symlinks, for local paths) lies below ``root``."""
    if "://" in root or "://" in path:
        return path.startswith(root.rstrip("/") + "/")
    real = _real(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _walk_local(root: str) -> list[str]:
    paths = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        paths.extend(os.path.join(folder, name) for name in filenames if not name.startswith("."))
    return paths


def _walk_remote(fs: fsspec.AbstractFileSystem, root: str) -> list[str]:
    found = fs.find(root)
    return [_uri(fs, p) for p in found if not any(part.startswith(".") for part in p[len(root):].split("/") if part)]


def _read_path_list(fs: fsspec.AbstractFileSystem, list_path: str, folder: str, local: bool) -> list[str]:
    with fs.open(list_path, "rb") as handle:
        data = handle.read()
    entries = _parquet_paths(data, list_path) if list_path.lower().endswith(".parquet") else _csv_paths(data, list_path)
    paths = []
    for row, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"{list_path}: row {row} has no path ({entry!r})")
        if "://" in entry or (local and os.path.isabs(entry)):
            paths.append(entry if "://" in entry else os.path.normpath(entry))
        elif local:
            paths.append(os.path.normpath(os.path.join(folder, entry)))
        else:
            paths.append(f"{_uri(fs, folder)}/{entry.lstrip('/')}")
    return paths


def _parquet_paths(data: bytes, list_path: str) -> list[Any]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    if "path" not in table.column_names:
        raise ValueError(f"{list_path}: no 'path' column (columns: {table.column_names})")
    return table.column("path").to_pylist()


def _csv_paths(data: bytes, list_path: str) -> list[Any]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    if reader.fieldnames is None or "path" not in reader.fieldnames:
        raise ValueError(f"{list_path}: no 'path' column (header: {reader.fieldnames})")
    return [row["path"] for row in reader]
