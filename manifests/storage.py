"""One object for a dataset root, whether a local folder or an object-store URI.

:class:`Store` wraps an fsspec filesystem (``fsspec.core.url_to_fs``), so
``/data/out``, ``out/`` (made absolute), ``s3://bucket/prefix`` and ``gs://...`` are the
same code. Readers and writers name files by paths *relative to the root* with ``/``.

Commit rule: an output becomes visible under its final name only when it is complete.
On a local disk a writer streams into ``.<name>.<attempt>.partial`` beside the target
(the attempt token is unique per host, process and call, so two attempts never share a
temporary file), fsyncs it and renames it into place. Object stores have no rename: the
object is uploaded under its final name and only exists once the upload completes (a
failed multipart upload is aborted); callers write each object once and their marker
last, and treat an object without its marker as unfinished.

Every writer hashes the bytes *as they are written* (sha256 and size), so a marker
records what this attempt wrote, never what happens to be on disk afterwards.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

_attempts = itertools.count()


@dataclass(frozen=True)
class Written:
    """What a writer committed: ``path`` (relative to the root), ``size`` in bytes, ``sha256`` hex."""

    path: str
    size: int
    sha256: str

    def to_record(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.size, "sha256": self.sha256}


class HashingWriter(io.RawIOBase):
    """A write-only stream that forwards to ``target`` and hashes every byte on the way."""

    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        self._target.write(view)
        self._hash.update(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def attempt_token() -> str:
    """``<host>-<pid>-<n>``: unique per host, process and call; names temporary files."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:32]
    return f"{host}-{os.getpid()}-{next(_attempts)}"


class Store:
    """A dataset root: ``Store("out/sample")``, ``Store("s3://bucket/data", anon=False)``.

    ``url`` is absolute: a local path is resolved against the current directory once,
    here, so workers started elsewhere see the same folder.
    """

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        url = os.fspath(url) if isinstance(url, os.PathLike) else url
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"a dataset root must be a non-empty path or URI, got {url!r}")
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.fs: fsspec.AbstractFileSystem = fs
        self.is_local = isinstance(fs, LocalFileSystem)
        if self.is_local:
            root = os.path.abspath(os.path.expanduser(root))
            self.url = root
        else:
            root = root.rstrip("/")
            protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
            self.url = f"{protocol}://{root}"
        self.root = root
        self.storage_options = storage_options

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_store, (self.url, self.storage_options))

    # --- names -------------------------------------------------------------------------
    def full(self, rel: str) -> str:
        """The filesystem path of ``rel`` (``rel`` uses ``/`` and never starts with it)."""
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"store paths are relative and stay inside the root, got {rel!r}")
        return f"{self.root}/{rel}" if rel else self.root

    def uri(self, rel: str = "") -> str:
        """A path or URI a user (or pandas, webdataset, s3fs) can open."""
        return f"{self.url}/{rel}" if rel else self.url

    # --- reading -----------------------------------------------------------------------
    def _fresh(self, path: str) -> str:
        """``path``, with any cached listing of it dropped: other processes (workers) write
        to the same root, so an object-store listing cached earlier may be stale."""
        if not self.is_local:
            self.fs.invalidate_cache(path)
        return path

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._fresh(self.full(rel))))

    def size(self, rel: str) -> int | None:
        """Size in bytes, or None when ``rel`` does not exist."""
        try:
            return int(self.fs.size(self._fresh(self.full(rel))))
        except FileNotFoundError:
            return None

    def stamp(self, rel: str) -> dict[str, Any] | None:
        """``{"bytes", "mtime_ns" | "etag"}`` identifying this version of ``rel``; None if absent.

        Local files give their modification time in ns; object stores their ETag.
        """
        if self.is_local:
            try:
                st = os.stat(self.full(rel))
            except FileNotFoundError:
                return None
            return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        try:
            info = self.fs.info(self._fresh(self.full(rel)))
        except FileNotFoundError:
            return None
        etag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or ""
        return {"bytes": int(info["size"]), "etag": str(etag).strip('"')}

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open(self.full(rel), "rb") as f:
            return f.read()

    @contextmanager
    def open_read(self, rel: str, block_size: int = 1 << 22) -> Iterator[BinaryIO]:
        with self.fs.open(self.full(rel), "rb", block_size=block_size) as f:
            yield f

    def read_json(self, rel: str) -> Any | None:
        """Parsed JSON of ``rel``, or None when it does not exist."""
        try:
            data = self.read_bytes(rel)
        except FileNotFoundError:
            return None
        return json.loads(data)

    def list(self, prefix: str, suffix: str = "") -> list[str]:
        """Relative paths of the files directly in folder ``prefix`` ending with ``suffix``, sorted.

        Names starting with "." (temporary files) are left out.
        """
        try:
            entries = self.fs.ls(self._fresh(self.full(prefix)), detail=True)
        except FileNotFoundError:
            return []
        names = []
        for entry in entries:
            if entry.get("type") == "directory":
                continue
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(".") and name.endswith(suffix):
                names.append(f"{prefix}/{name}")
        return sorted(names)

    def read_table(self, rel: str, columns: list[str] | None = None, filters: Any = None) -> pa.Table:
        """One Parquet file (no hive partition inference)."""
        return pq.read_table(
            self.full(rel), columns=columns, filters=filters, filesystem=self.fs, partitioning=None
        )

    # --- writing -----------------------------------------------------------------------
    @contextmanager
    def writer(self, rel: str) -> Iterator[HashingWriter]:
        """Stream the bytes of ``rel``; committed when the block exits normally.

        Yields a :class:`HashingWriter`; after the block, ``w.size`` and ``w.sha256``
        describe exactly the committed bytes. On an exception nothing appears under ``rel``.
        """
        target = self.full(rel)
        if self.is_local:
            folder, name = os.path.split(target)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".{name}.{attempt_token()}.partial")
            try:
                with open(tmp, "wb") as raw:
                    hashing = HashingWriter(raw)
                    yield hashing
                    raw.flush()
                    os.fsync(raw.fileno())
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            return
        raw = self.fs.open(target, "wb")
        try:
            hashing = HashingWriter(raw)
            yield hashing
        except BaseException:
            discard = getattr(raw, "discard", None)
            if callable(discard):
                discard()  # abort the multipart upload: nothing is created
                raw.closed = True  # a discarded file must not flush (and fail) when collected
            else:
                raw.close()
                self.fs.rm(target)
            raise
        raw.close()

    def write_bytes(self, rel: str, data: bytes) -> Written:
        with self.writer(rel) as w:
            w.write(data)
        return Written(rel, w.size, w.sha256)

    def write_json(self, rel: str, obj: Any) -> Written:
        """JSON with sorted keys, 2-space indent and a trailing newline (deterministic bytes)."""
        return self.write_bytes(rel, dumps_json(obj))

    def sweep_partials(self) -> int:
        """Delete temporary files that killed attempts left behind (local roots only: an
        interrupted object-store upload never becomes visible); returns how many.

        Call it only while holding the root's build lock, when no other attempt writes.
        """
        if not self.is_local:
            return 0
        removed = 0
        for folder, dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".") and name.endswith(".partial"):
                    os.unlink(os.path.join(folder, name))
                    removed += 1
        return removed

    def delete(self, rel: str) -> None:
        """Remove ``rel`` if it exists."""
        try:
            self.fs.rm(self.full(rel))
        except FileNotFoundError:
            pass

    def delete_tree(self, rel: str) -> None:
        """Remove folder ``rel`` and everything below it, if it exists."""
        if self.fs.exists(self._fresh(self.full(rel))):
            self.fs.rm(self.full(rel), recursive=True)


def dumps_json(obj: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, 2-space indent, no NaN, trailing newline."""
    return (json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8")


def _rebuild_store(url: str, storage_options: dict[str, Any]) -> Store:
    return Store(url, **storage_options)


def write_file(path: str, data: bytes) -> Written:
    """Commit ``data`` to the local or remote file ``path`` (any folder; see :class:`Store`)."""
    folder, _, name = str(path).rstrip("/").rpartition("/")
    return Store(folder or ".").write_bytes(name, data)
