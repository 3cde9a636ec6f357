import hashlib
import io
import os

import pytest

from manifests.shardcheck import PrefetchReader
from manifests.shards import READ_SIZE


class _Failing(io.RawIOBase):
    """Hands out ``good`` bytes, then fails like a dying disk."""

    def __init__(self, good: bytes) -> None:
        self._data = io.BytesIO(good)

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk:
            raise OSError("I/O error")
        return chunk


def test_prefetch_hands_out_every_byte_in_order_and_hashes_them():
    data = os.urandom(3 * READ_SIZE + 12345)
    with PrefetchReader(io.BytesIO(data), depth=2) as reader:
        parts = [reader.read(1000), reader.read(READ_SIZE * 2)]
        while chunk := reader.read(READ_SIZE):
            parts.append(chunk)
    assert b"".join(parts) == data and len(parts[0]) == 1000
    assert (reader.size, reader.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_prefetch_raises_the_streams_error_and_stops_when_left_early():
    with PrefetchReader(_Failing(b"x" * 100)) as reader:
        assert reader.read(100) == b"x" * 100
        with pytest.raises(OSError, match="I/O error"):
            reader.read(1)
    with PrefetchReader(io.BytesIO(os.urandom(8 * READ_SIZE)), depth=1) as reader:
        reader.read(10)  # the filling thread is blocked on a full queue; leaving must not hang
    with pytest.raises(RuntimeError, match="not been read to its end"):
        reader.sha256
