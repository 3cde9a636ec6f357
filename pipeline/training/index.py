"""The build's shard index per subset, ``ROOT/shards/<subset>/index.json`` (wids format).

::

    {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": "<subset>",
     "shardlist": [{"url": "<subset>-000000.tar", "nsamples": 88, "filesize": 28416000,
                    "sha256": "<64 hex>"}, ...]}

``url`` is relative to the index file. We read it here rather than with
``wids.wids_specs.resolve_dsdesc``, which checks with ``assert`` and accepts entries
without checksums; every problem becomes a :class:`ShardIndexError` naming the file.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

INDEX_KIND = "wids-shard-index-v1"
INDEX_NAME = "index.json"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ShardIndexError(ValueError):
    """A shard index is unreadable or breaks the format above."""


@dataclass(frozen=True)
class IndexedShard:
    """One shard of the index; ``url`` is posix and relative to the dataset root."""

    url: str
    nsamples: int
    filesize: int
    sha256: str


def index_path(root: str | Path, subset: str) -> Path:
    """``root/shards/<subset>/index.json``."""
    return Path(root) / "shards" / subset / INDEX_NAME


def read_shard_index(root: str | Path, subset: str) -> tuple[IndexedShard, ...] | None:
    """The shards the index of ``subset`` lists, in index order; None if it has no index."""
    path = index_path(root, subset)
    if not path.is_file():
        return None
    where = path.as_posix()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardIndexError(f"{where}: unreadable shard index: {exc}") from exc
    if not isinstance(data, dict) or data.get("__kind__") != INDEX_KIND or data.get("wids_version") != 1:
        raise ShardIndexError(f"{where}: not a {INDEX_KIND} with wids_version 1")
    if data.get("name") != subset:
        raise ShardIndexError(f"{where}: name is {data.get('name')!r}, expected {subset!r}")
    entries = data.get("shardlist")
    if not isinstance(entries, list):
        raise ShardIndexError(f"{where}: shardlist must be a list")
    base = f"shards/{subset}"
    return tuple(_entry(where, base, i, entry) for i, entry in enumerate(entries))


def _entry(where: str, base: str, i: int, entry: object) -> IndexedShard:
    if not isinstance(entry, dict):
        raise ShardIndexError(f"{where}: shardlist[{i}] is not an object")
    url = entry.get("url")
    if not isinstance(url, str) or not url or "://" in url or url.startswith("/"):
        raise ShardIndexError(f"{where}: shardlist[{i}].url must be a path relative to the index, got {url!r}")
    joined = posixpath.normpath(posixpath.join(base, url))
    if joined.startswith("../"):
        raise ShardIndexError(f"{where}: shardlist[{i}].url {url!r} leaves the dataset root")
    numbers = {}
    for key in ("nsamples", "filesize"):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ShardIndexError(f"{where}: shardlist[{i}].{key} must be an int >= 0, got {value!r}")
        numbers[key] = value
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA256_RE.match(sha):
        raise ShardIndexError(f"{where}: shardlist[{i}].sha256 must be 64 lowercase hex digits, got {sha!r}")
    return IndexedShard(url=joined, sha256=sha, **numbers)
