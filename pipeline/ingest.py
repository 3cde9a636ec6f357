"""Ingest: list source photos, check each one decodes, give it an id, drop exact duplicates.

A source is ``sample`` (photos shipped by installed packages, see
:mod:`pipeline.sample_corpus`), a directory, or a ``.parquet`` / ``.csv`` list with a
``path`` column. Every path yields exactly one :class:`IngestResult`; nothing is
dropped silently:

* ``accepted``: decodes under the limits; ``source_id`` = :func:`content_id` of its bytes.
* ``rejected``: ``reason`` is an :data:`pipeline.imageio.RejectCode` or ``"unreadable"``
  (missing, permission denied, not a regular file), ``detail`` says why.
* ``duplicate``: the same bytes as an earlier path in the stream; ``reason`` is
  ``"duplicate_of:<source_id>"`` and it shares that ``source_id``.

Results stream: decoded pixels are dropped at once; the build re-decodes accepted
photos on its workers with :func:`read_source`, under the same settings.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from manifests.digests import sha256_hex
from pipeline.imageio import IMAGE_FILE_EXTENSIONS, DecodeLimits, ImageRejected, content_id, decode_image
from pipeline.sample_corpus import sample_paths

Status = Literal["accepted", "rejected", "duplicate"]

#: File extensions (lower case) read as photos: every extension Pillow registers for a format
#: decode_image accepts (the format itself is then decided by the bytes). A path with any other
#: extension is rejected as ``unsupported_format`` without being read (videos, archives and
#: sidecar files in a photo folder cost nothing); a path with no extension is judged by its bytes.
IMAGE_EXTENSIONS = IMAGE_FILE_EXTENSIONS

LIST_SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class IngestResult:
    """What ingest learned about one path.

    ``source_id``: 16 hex chars; the content id when the bytes were read, else
    :func:`path_id` of ``path``. ``reason`` / ``detail`` are None when accepted.
    ``width`` / ``height``: upright (EXIF applied) size, accepted and duplicates of
    accepted photos only. ``bytes``: file size when known. ``sha256``: full hex digest
    when the bytes were read.
    """

    source_id: str
    path: str
    status: Status
    reason: str | None
    detail: str | None
    width: int | None
    height: int | None
    bytes: int | None
    sha256: str | None


def iter_source_paths(source: str) -> Iterator[str]:
    """The paths of ``source``, sorted by their string, checked eagerly.

    ``"sample"``: the sample corpus. A directory: every file below it, recursively;
    names starting with "." (hidden files such as .DS_Store or ._AppleDouble, and hidden
    directories such as .git) are skipped, all other files are yielded whatever their
    extension, so non-photos end as rejects. A ``.parquet`` / ``.csv`` list: its ``path``
    column, relative entries resolved against the list's folder.

    Raises FileNotFoundError for a missing source and ValueError for an unusable one.
    """
    if source == "sample":
        paths = [photo.path for photo in sample_paths()]
    elif not os.path.exists(source):
        raise FileNotFoundError(
            f"source {source!r} does not exist (expected 'sample', a directory, or a .parquet/.csv list)"
        )
    elif os.path.isdir(source):
        paths = _walk_directory(source)
    elif source.lower().endswith(LIST_SUFFIXES):
        paths = _read_path_list(source)
    else:
        raise ValueError(f"source {source!r} is a file but not a .parquet or .csv list of paths")
    return iter(sorted(paths))


def path_id(path: str) -> str:
    """Stable 16-hex id for a path whose bytes could not be read (sha256 of the path string)."""
    return hashlib.sha256(b"path\x1f" + path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def inspect_source(path: str, *, limits: DecodeLimits = DecodeLimits()) -> IngestResult:
    """Read and fully decode one path (no duplicate check); never raises for bad files."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return _unread(path, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}", None)
    if not stat.S_ISREG(info.st_mode):
        return _unread(path, "unreadable", "not a regular file", None)
    extension = os.path.splitext(path)[1].lower()
    if extension and extension not in IMAGE_EXTENSIONS:
        detail = f"extension {extension!r} is not one of {', '.join(IMAGE_EXTENSIONS)}"
        return _unread(path, "unsupported_format", detail, info.st_size)
    if info.st_size > limits.max_bytes:
        return _unread(path, "too_large", f"{info.st_size} bytes > max_bytes {limits.max_bytes}", info.st_size)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return _unread(path, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}", info.st_size)

    digest = sha256_hex(data)
    common = {"source_id": digest[:16], "path": path, "bytes": len(data), "sha256": digest}
    try:
        height, width = decode_image(data, limits=limits).shape[:2]
    except ImageRejected as exc:
        return IngestResult(status="rejected", reason=exc.code, detail=exc.detail, width=None, height=None, **common)
    return IngestResult(status="accepted", reason=None, detail=None, width=width, height=height, **common)


def mark_duplicates(results: Iterable[IngestResult]) -> Iterator[IngestResult]:
    """Re-label results whose bytes equal an earlier result's as ``duplicate``.

    The first path with given bytes keeps its status (accepted or rejected); later ones
    become ``duplicate`` with ``reason="duplicate_of:<source_id>"``. Results whose bytes
    were never read pass through unchanged.
    """
    first_path: dict[str, str] = {}
    for result in results:
        if result.sha256 is None:
            yield result
        elif result.source_id in first_path:
            yield dataclasses.replace(
                result,
                status="duplicate",
                reason=f"duplicate_of:{result.source_id}",
                detail=f"same bytes as {first_path[result.source_id]}",
            )
        else:
            first_path[result.source_id] = result.path
            yield result


def ingest(
    paths: Iterable[str], *, limits: DecodeLimits = DecodeLimits(), progress: bool = False
) -> Iterator[IngestResult]:
    """One result per path, in input order, streaming; see the module docstring.

    ``progress`` shows a tqdm bar (on stderr).
    """
    bar = tqdm(paths, desc="ingest", unit="photo", disable=not progress)
    return mark_duplicates(inspect_source(path, limits=limits) for path in bar)


def read_source(
    path: str, *, limits: DecodeLimits = DecodeLimits(), expected_id: str | None = None
) -> np.ndarray:
    """Decode an accepted source again: (H, W, 3) uint8 RGB, exactly as ingest checked it.

    With ``expected_id``, raises ValueError if the file's bytes changed since ingest.
    """
    data = Path(path).read_bytes()
    if expected_id is not None and content_id(data) != expected_id:
        raise ValueError(f"{path}: content id {content_id(data)} != {expected_id}; the file changed since ingest")
    return decode_image(data, limits=limits)


def to_source_row(result: IngestResult) -> dict[str, Any]:
    """Row of ``manifests/sources.parquet`` (schema SOURCES_SCHEMA)."""
    return {
        "source_id": result.source_id,
        "path": result.path,
        "width": result.width,
        "height": result.height,
        "bytes": result.bytes,
        "sha256": result.sha256,
        "status": result.status,
        "reason": result.reason,
    }


def to_reject_row(result: IngestResult) -> dict[str, Any]:
    """Row of ``manifests/rejects.parquet`` (schema REJECTS_SCHEMA) for a rejected or duplicate result."""
    if result.status == "accepted":
        raise ValueError(f"{result.path} was accepted; it has no reject row")
    return {
        "source_id": result.source_id,
        "path": result.path,
        "stage": "ingest",
        "reason": result.reason,
        "detail": result.detail,
    }


def _unread(path: str, reason: str, detail: str, size: int | None) -> IngestResult:
    return IngestResult(
        source_id=path_id(path), path=path, status="rejected", reason=reason, detail=detail,
        width=None, height=None, bytes=size, sha256=None,
    )


def _walk_directory(root: str) -> list[str]:
    top = os.path.normpath(root)
    paths = []
    for folder, dirnames, filenames in os.walk(top):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        paths.extend(os.path.join(folder, name) for name in filenames if not name.startswith("."))
    return paths


def _read_path_list(list_path: str) -> list[str]:
    if list_path.lower().endswith(".parquet"):
        entries = _parquet_paths(list_path)
    else:
        entries = _csv_paths(list_path)
    folder = os.path.dirname(os.path.abspath(list_path))
    paths = []
    for row, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"{list_path}: row {row} has no path ({entry!r})")
        paths.append(os.path.normpath(entry if os.path.isabs(entry) else os.path.join(folder, entry)))
    return paths


def _parquet_paths(list_path: str) -> list[Any]:
    import pyarrow.parquet as pq

    names = pq.read_schema(list_path).names
    if "path" not in names:
        raise ValueError(f"{list_path}: no 'path' column (columns: {names})")
    return pq.read_table(list_path, columns=["path"]).column("path").to_pylist()


def _csv_paths(list_path: str) -> list[Any]:
    with open(list_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise ValueError(f"{list_path}: no 'path' column (header: {reader.fieldnames})")
        return [row["path"] for row in reader]
