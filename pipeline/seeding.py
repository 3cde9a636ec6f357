"""Seed derivation: every random choice is drawn from (global seed, ids, indices).

Seeds are a stable hash of their parts, independent of process, worker order,
Python's hash randomisation and platform.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(global_seed: int, *parts: str | int) -> int:
    """A 63-bit seed that is a pure function of ``global_seed`` and ``parts``.

    Parts are joined with an unambiguous separator, so ("a", 1) and ("a1",) differ.
    """
    h = hashlib.blake2b(digest_size=8, person=b"mirrorset-seed")
    h.update(str(int(global_seed)).encode())
    for part in parts:
        if not isinstance(part, (str, int)) or isinstance(part, bool):
            raise TypeError(f"seed parts must be str or int, got {type(part).__name__}")
        h.update(b"\x1f" + (b"i" if isinstance(part, int) else b"s") + str(part).encode())
    return int.from_bytes(h.digest(), "little") >> 1


def rng_for(global_seed: int, *parts: str | int) -> np.random.Generator:
    """A PCG64 generator seeded by :func:`derive_seed`."""
    return np.random.Generator(np.random.PCG64(derive_seed(global_seed, *parts)))


def unit_interval(global_seed: int, *parts: str | int) -> float:
    """A number in [0, 1) that is a pure function of ``global_seed`` and ``parts``."""
    return derive_seed(global_seed, *parts) / float(1 << 63)


def split_of(global_seed: int, source_id: str, val: float, test: float) -> str:
    """"train" | "val" | "test" for a source photo: all pairs of one photo share a split."""
    u = unit_interval(global_seed, "split", source_id)
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"
