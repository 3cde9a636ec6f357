"""The shard index of a subset: ``shards/<subset>/index.json`` in the wids-shard-index-v1 format.

Loaders (``wids.ShardListDataset``, anything that reads the format) get random access and
per-shard sample counts from it without opening a tar. It is derived from the subset's
commit markers only, so it lists exactly the committed shards, in shard order::

    {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": "simulated",
     "shardlist": [{"url": "simulated-000000.tar", "nsamples": 3200,
                    "filesize": 1000448000, "sha256": "<64 hex>"}, ...]}

``url`` is relative to the index file (wids resolves it against the index's folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from manifests.markers import read_markers
from manifests.schema import check_subset, shard_index_path
from manifests.storage import Store

INDEX_KIND = "wids-shard-index-v1"


def index_entry(marker: Mapping[str, Any]) -> dict[str, Any]:
    """The shardlist entry of one committed shard, from its marker."""
    tar = marker["files"]["tar"]
    return {
        "url": tar["path"].rsplit("/", 1)[-1],
        "nsamples": marker["counts"]["pairs"],
        "filesize": tar["bytes"],
        "sha256": tar["sha256"],
    }


def shard_index(store: Store, subset: str) -> dict[str, Any]:
    """The index of ``subset`` as the markers of ``store`` define it."""
    markers = read_markers(store, check_subset(subset))
    shardlist = [index_entry(marker) for _, marker in sorted(markers.items())]
    return {"__kind__": INDEX_KIND, "wids_version": 1, "name": subset, "shardlist": shardlist}


def write_shard_index(store: Store, subset: str) -> dict[str, Any]:
    """Commit ``shards/<subset>/index.json`` from the subset's markers; returns the index."""
    index = shard_index(store, subset)
    store.write_json(shard_index_path(subset), index)
    return index


def read_shard_index(store: Store, subset: str) -> dict[str, Any] | None:
    """The stored index of ``subset``, or None when it has none (ValueError if not JSON)."""
    rel = shard_index_path(subset)
    try:
        return store.read_json(rel)
    except ValueError as exc:
        raise ValueError(f"{store.uri(rel)} is not valid JSON: {exc}") from exc
