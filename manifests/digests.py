"""Checksums used across the project: sha256 of bytes and of files (hex, lowercase), and
short digests of arrays for in-memory cache keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def sha256_hex(data: bytes) -> str:
    """Full sha256 of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """sha256 (hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def array_digest(*parts: object) -> bytes:
    """16-byte blake2b naming ``parts`` in order, for in-memory cache keys: an array by its
    dtype, shape and bytes, None by a marker, anything else by its repr."""
    hashed = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            hashed.update(repr((part.dtype.str, part.shape)).encode() + np.ascontiguousarray(part).tobytes())
        else:
            hashed.update(b"-" if part is None else repr(part).encode())
        hashed.update(b"|")
    return hashed.digest()
