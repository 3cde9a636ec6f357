"""Deterministic WebDataset shard writing and a safe in-memory tar reader.

A shard is a plain (uncompressed) USTAR tar. Every member has mtime 0, uid/gid 0,
uname/gname "root" and mode 0o644; samples are written in strictly increasing key
order and each sample's members in name order (``{key}.after.jpg``,
``{key}.before.jpg``, ``{key}.json``, ``{key}.mask.png``), so the same samples
give byte-identical tars. The tar is written to ``.<name>.partial`` and renamed
into place on a successful close.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from webdataset import TarWriter

from manifests.digests import sha256_hex
from manifests.schema import IMAGE_FORMATS, check_key, member_suffixes, partial_path

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
    """Write pair samples into one deterministic tar, committed on close.

    ``write({"__key__": key, "after.jpg": b"...", "before.jpg": ..., "json": ...,
    "mask.png": ...})`` returns ``{suffix: sha256 hex}`` of the bytes written.
    Keys must be valid (:func:`manifests.schema.check_key`) and strictly increasing.
    Use as a context manager: a normal exit renames the partial file to ``path``,
    an exception removes it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp_path = partial_path(self.path)
        self.count = 0
        self._last_key: str | None = None
        self._file: BinaryIO | None = None
        self._tar: TarWriter | None = None

    def __enter__(self) -> ShardTarWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.tmp_path, "wb")
        self._tar = TarWriter(
            self._file,
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
        if self._last_key is not None and key <= self._last_key:
            raise ValueError(
                f"sample keys must be strictly increasing: {key!r} after {self._last_key!r}"
            )
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
        self._last_key = key
        self.count += 1
        return dict(sorted(digests.items()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tar is not None and self._file is not None
        tar, file = self._tar, self._file
        self._tar = self._file = None
        committed = False
        try:
            tar.close()
            if exc_type is None:
                file.flush()
                os.fsync(file.fileno())
                committed = True
        finally:
            file.close()
            if not committed:
                self.tmp_path.unlink(missing_ok=True)
        if committed:
            os.replace(self.tmp_path, self.path)


def iter_tar_members(path: str | Path) -> Iterator[TarMember]:
    """Yield the regular-file members of the tar at ``path``, read into memory.

    Nothing is extracted to the filesystem. Raises :class:`UnsafeTarError` for an
    absolute or ``..`` name, a link, device, fifo or directory member, a corrupt
    header, or non-zero bytes after the last readable member (a damaged header
    ends tarfile's listing silently; this makes it loud).
    """
    path = Path(path)
    try:
        tar = tarfile.open(path, mode="r:")
    except tarfile.TarError as exc:
        raise UnsafeTarError(f"{path}: not a readable tar: {exc}") from exc
    with tar:
        while True:
            try:
                info = tar.next()
            except tarfile.TarError as exc:
                raise UnsafeTarError(f"{path}: corrupt tar at byte {tar.offset}: {exc}") from exc
            if info is None:
                break
            _check_member(path, info)
            extracted = tar.extractfile(info)
            assert extracted is not None
            yield TarMember(info.name, extracted.read())
        end = tar.offset
    _check_zero_tail(path, end)


def _check_member(path: Path, info: tarfile.TarInfo) -> None:
    name = info.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeTarError(f"{path}: member {name!r} has an absolute name")
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeTarError(f"{path}: member {name!r} escapes the archive with '..'")
    if not info.isreg():
        kind = "link" if (info.issym() or info.islnk()) else "non-regular member"
        raise UnsafeTarError(f"{path}: member {name!r} is a {kind} (type {info.type!r})")


def _check_zero_tail(path: Path, offset: int) -> None:
    with open(path, "rb") as f:
        f.seek(offset)
        position = offset
        while chunk := f.read(1 << 16):
            stripped = chunk.lstrip(b"\0")
            if stripped:
                bad = position + len(chunk) - len(stripped)
                raise UnsafeTarError(
                    f"{path}: no valid tar header at byte {offset} but non-zero data at "
                    f"byte {bad}: a corrupt header or trailing garbage"
                )
            position += len(chunk)
