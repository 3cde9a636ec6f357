"""Deterministic WebDataset shard writing and a safe streaming tar reader.

A shard is a plain (uncompressed) USTAR tar. Every member has mtime 0, uid/gid 0,
uname/gname "root" and mode 0o644; samples are written in the order given (the
plan's order) and each sample's members in name order (``{key}.after.jpg``,
``{key}.before.jpg``, ``{key}.json``, ``{key}.mask.png``, ``{key}.opmask.png``),
so the same samples give byte-identical tars. Committing the bytes (temporary name
then rename, or a completed upload) is the stream owner's job (``manifests.storage``).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from webdataset import TarWriter

from manifests.digests import sha256_hex
from manifests.schema import IMAGE_FORMATS, check_key, member_suffixes

TAR_MTIME = 0
TAR_MODE = 0o644
TAR_OWNER = "root"

#: Member suffix sets accepted in a sample, one per image format.
_SUFFIX_SETS = {frozenset(member_suffixes(fmt)): fmt for fmt in IMAGE_FORMATS}


class UnsafeTarError(ValueError):
    """A tar holds a member that must not be read (absolute or ``..`` name,
    link, device, ...) or is corrupt."""


@dataclass(frozen=True)
class TarMember:
    """One regular-file member read into memory."""

    name: str
    data: bytes

    @property
    def key(self) -> str:
        """Sample key: the name up to its first dot (webdataset's convention)."""
        return self.name.split(".", 1)[0]

    @property
    def suffix(self) -> str:
        """Everything after the first dot, e.g. ``"after.jpg"``."""
        return self.name.split(".", 1)[1] if "." in self.name else ""


def sample_format(sample: Mapping[str, object]) -> str:
    """Image format of a pair sample, from its member suffixes; ValueError if the
    sample does not hold exactly one pair's members."""
    key = sample.get("__key__")
    suffixes = frozenset(k for k in sample if k != "__key__")
    fmt = _SUFFIX_SETS.get(suffixes)
    if fmt is None:
        raise ValueError(
            f"sample {key!r} has members {sorted(suffixes)}; expected one of "
            f"{[sorted(s) for s in _SUFFIX_SETS]}"
        )
    return fmt


class ShardTarWriter:
    """Write pair samples into one deterministic tar stream.

    ``stream`` is any writable binary stream (``Store.writer`` yields one that hashes
    what it is given); the caller commits it. ``write({"__key__": key, "after.jpg":
    b"...", ...})`` returns ``{suffix: sha256 hex}`` of the bytes written. Keys must be
    valid (:func:`manifests.schema.check_key`) and unique within the tar; samples keep
    the order they are written in. Use as a context manager: a normal exit writes the
    tar's end-of-archive blocks.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0
        self._keys: set[str] = set()
        self._tar: TarWriter | None = None

    def __enter__(self) -> ShardTarWriter:
        self._tar = TarWriter(
            self._stream,
            user=TAR_OWNER,
            group=TAR_OWNER,
            mode=TAR_MODE,
            compress=False,
            encoder=False,
            mtime=TAR_MTIME,
        )
        return self

    def write(self, sample: Mapping[str, object]) -> dict[str, str]:
        if self._tar is None:
            raise RuntimeError("ShardTarWriter.write outside its `with` block")
        key = sample.get("__key__")
        if not isinstance(key, str):
            raise ValueError(f"sample needs a str '__key__', got {key!r}")
        check_key(key)
        if key in self._keys:
            raise ValueError(f"sample key {key!r} written twice into one shard")
        sample_format(sample)
        digests = {}
        for suffix, value in sample.items():
            if suffix == "__key__":
                continue
            if not isinstance(value, bytes):
                raise ValueError(
                    f"sample {key!r} member {suffix!r} must be bytes, got {type(value).__name__}"
                )
            digests[suffix] = sha256_hex(value)
        self._tar.write(dict(sample))
        self._keys.add(key)
        self.count += 1
        return dict(sorted(digests.items()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tar, self._tar = self._tar, None
        if tar is not None and exc_type is None:
            tar.close()  # end-of-archive blocks; a stream it did not open stays open


#: Bytes the reader asks its stream for at a time (one large read, then members are sliced).
READ_SIZE = 1 << 22

#: Header types of pax / GNU extensions, which :class:`ShardTarWriter` never writes.
_EXTENDED_TYPES = frozenset({
    tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.GNUTYPE_SPARSE,
})  # fmt: skip


def iter_tar_members(stream: BinaryIO, name: str = "<tar>") -> Iterator[TarMember]:
    """Yield the regular-file members of the tar read sequentially from ``stream``.

    One pass in reads of ``READ_SIZE`` bytes (so a wrapper that hashes what it hands out
    sees few large blocks), bounded memory (one member and one read at a time); nothing
    is extracted to the filesystem. Raises :class:`UnsafeTarError` (``name`` says which
    tar) for an absolute or ``..`` name, a link, device, fifo or directory member, a pax
    or GNU extended header (never written by :class:`ShardTarWriter`), a corrupt header,
    a truncated member, or non-zero bytes after the last readable member (a damaged
    header ends the listing, as in tarfile; this makes it loud). The stream is read to
    its end.
    """
    reader = _BlockReader(stream)
    while True:
        offset = reader.offset
        header = reader.take(tarfile.BLOCKSIZE)
        if not header:
            return  # the stream ends at a member boundary without end-of-archive blocks
        try:
            if len(header) < tarfile.BLOCKSIZE:
                raise tarfile.TruncatedHeaderError("truncated header")
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.EOFHeaderError:
            _check_zero_tail(name, reader, offset)
            return
        except tarfile.HeaderError as exc:
            if offset == 0:
                raise UnsafeTarError(f"{name}: not a readable tar: {exc}") from exc
            _check_zero_tail(name, reader, offset, header)  # raises: the header is not all zeros
            return
        if info.type in _EXTENDED_TYPES:
            raise UnsafeTarError(
                f"{name}: member {info.name!r} at byte {offset} has an extended (pax/GNU) header "
                f"(type {info.type!r}), which mirrorset shards never hold"
            )
        _check_member(name, info)
        data = reader.take(info.size)
        padding = -info.size % tarfile.BLOCKSIZE
        if len(data) < info.size or len(reader.take(padding)) < padding:
            raise UnsafeTarError(
                f"{name}: member {info.name!r} at byte {offset} is truncated "
                f"({len(data)} of {info.size} bytes before the end of the stream)"
            )
        yield TarMember(info.name, data)


class _BlockReader:
    """Hands out exact byte counts from a stream read in ``READ_SIZE`` blocks."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._block = b""
        self._pos = 0
        self.offset = 0  # tar offset of the next byte handed out

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer only at the end of the stream)."""
        end = self._pos + size
        if end <= len(self._block):
            out = self._block[self._pos : end]
            self._pos = end
        else:
            parts = [self._block[self._pos :]]
            got = len(parts[0])
            self._block, self._pos = b"", 0
            while got < size:
                block = self._stream.read(max(READ_SIZE, size - got))
                if not block:
                    break
                need = size - got
                if len(block) > need:
                    self._block, self._pos = block, need
                    block = block[:need]
                parts.append(block)
                got += len(block)
            out = b"".join(parts)
        self.offset += len(out)
        return out


def _check_member(path: str, info: tarfile.TarInfo) -> None:
    name = info.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeTarError(f"{path}: member {name!r} has an absolute name")
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeTarError(f"{path}: member {name!r} escapes the archive with '..'")
    if not info.isreg():
        kind = "link" if (info.issym() or info.islnk()) else "non-regular member"
        raise UnsafeTarError(f"{path}: member {name!r} is a {kind} (type {info.type!r})")


def _check_zero_tail(name: str, reader: _BlockReader, offset: int, first: bytes = b"") -> None:
    """Everything from ``offset`` (``first``, then the rest of the stream) must be zero bytes."""
    position = offset
    chunk = first
    while True:
        stripped = chunk.lstrip(b"\0")
        if stripped:
            bad = position + len(chunk) - len(stripped)
            raise UnsafeTarError(
                f"{name}: no valid tar header at byte {offset} but non-zero data at "
                f"byte {bad}: a corrupt header or trailing garbage"
            )
        position += len(chunk)
        chunk = reader.take(READ_SIZE)
        if not chunk:
            return
