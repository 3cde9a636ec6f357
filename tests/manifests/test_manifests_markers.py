import hashlib
import json

import pytest

from manifests.markers import is_complete, read_markers, write_marker
from manifests.schema import marker_path, pairs_part_path, shard_tar_path


def test_marker_records_hashes_counts_and_payload(build):
    out, rows = build
    marker = json.loads(marker_path(out, "simulated", 0).read_text())
    tar = shard_tar_path(out, "simulated", 0)
    part = pairs_part_path(out, "simulated", 0)
    assert marker["tar"] == {"path": "shards/simulated/simulated-000000.tar", "bytes": tar.stat().st_size,
                             "sha256": hashlib.sha256(tar.read_bytes()).hexdigest()}
    assert marker["part"]["sha256"] == hashlib.sha256(part.read_bytes()).hexdigest()
    n = sum(r["shard"] == "simulated-000000" for r in rows)
    assert marker["counts"] == {"pairs": n, "members": 4 * n}
    assert marker["timings"] == {"total_s": 1.5}
    assert marker["shard"] == "simulated-000000"
    text = marker_path(out, "simulated", 0).read_text()
    assert text == json.dumps(marker, sort_keys=True, indent=2) + "\n"


def test_read_markers_by_index(build):
    out, _ = build
    assert sorted(read_markers(out, "simulated")) == [0, 1]
    assert sorted(read_markers(out, "professional")) == [0]


def test_is_complete_checks_sizes_cheaply_and_hashes_on_request(build):
    out, _ = build
    assert is_complete(out, "simulated", 1)
    assert is_complete(out, "simulated", 1, full_hash=True)
    assert not is_complete(out, "simulated", 2)
    tar = shard_tar_path(out, "simulated", 1)
    data = bytearray(tar.read_bytes())
    data[2000] ^= 0xFF
    tar.write_bytes(bytes(data))
    assert is_complete(out, "simulated", 1)
    assert not is_complete(out, "simulated", 1, full_hash=True)
    part = pairs_part_path(out, "simulated", 0)
    part.write_bytes(part.read_bytes()[:-10])
    assert not is_complete(out, "simulated", 0)
    shard_tar_path(out, "professional", 0).unlink()
    assert not is_complete(out, "professional", 0)


def test_marker_refuses_reserved_payload_keys_and_missing_files(build):
    out, _ = build
    with pytest.raises(ValueError, match=r"reserved key\(s\) \['counts'\]"):
        write_marker(out, "simulated", 0, {"counts": {}})
    with pytest.raises(FileNotFoundError, match="simulated-000005.tar"):
        write_marker(out, "simulated", 5)
    assert not marker_path(out, "simulated", 5).exists()


def test_corrupt_marker_is_a_clear_error(build):
    out, _ = build
    marker_path(out, "simulated", 0).write_text("{not json")
    with pytest.raises(ValueError, match="simulated-000000.json is not valid JSON"):
        is_complete(out, "simulated", 0)
