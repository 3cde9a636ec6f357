import hashlib
import json

import pytest

from manifests.markers import is_complete, marker_mismatches, read_marker, read_markers, write_marker
from manifests.storage import Store


def _shard(store: Store, index: int) -> dict:
    files = {
        "tar": store.write_bytes(f"shards/simulated/simulated-{index:06d}.tar", b"t" * (100 + index)),
        "pairs": store.write_bytes(f"manifests/pairs/subset=simulated/part-{index:06d}.parquet", b"p" * 10),
    }
    write_marker(store, "simulated", index, files, {"pairs": 4, "planned": 5, "rejects": 1}, {"timings": {"s": 1.5}})
    return files


def test_marker_records_what_was_written(tmp_path):
    store = Store(str(tmp_path))
    _shard(store, 3)
    marker = read_marker(store, "simulated", 3)
    assert marker["files"]["tar"] == {"path": "shards/simulated/simulated-000003.tar", "bytes": 103,
                                      "sha256": hashlib.sha256(b"t" * 103).hexdigest()}  # fmt: skip
    assert marker["counts"] == {"pairs": 4, "planned": 5, "rejects": 1}
    assert (marker["shard"], marker["schema_version"], marker["timings"]) == ("simulated-000003", 2, {"s": 1.5})
    text = (tmp_path / "_markers" / "simulated-000003.json").read_text()
    assert text == json.dumps(marker, sort_keys=True, indent=2) + "\n"
    with pytest.raises(ValueError, match="reserved"):
        write_marker(store, "simulated", 4, {}, {}, {"counts": 1})


def test_completeness_compares_sizes_and_optionally_hashes(tmp_path):
    store = Store(str(tmp_path))
    _shard(store, 0)
    _shard(store, 1)
    (tmp_path / "_markers" / "professional-000000.json").write_text("{}")
    assert sorted(read_markers(store, "simulated")) == [0, 1]
    assert is_complete(store, "simulated", 0) and not is_complete(store, "simulated", 7)
    tar = tmp_path / "shards" / "simulated" / "simulated-000000.tar"
    tar.write_bytes(b"x" * 100)  # same size, other bytes
    assert is_complete(store, "simulated", 0)
    assert not is_complete(store, "simulated", 0, full_hash=True)
    tar.write_bytes(b"x")
    marker = read_marker(store, "simulated", 0)
    assert marker_mismatches(store, "simulated", 0, marker, full_hash=False) == [
        "tar shards/simulated/simulated-000000.tar: 1 bytes, marker says 100"
    ]
