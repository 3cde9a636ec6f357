import hashlib
import os
import pickle

import pytest

from manifests.storage import Store, attempt_token, dumps_json


def test_local_store_names_paths_relative_to_an_absolute_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store("data/out")
    assert store.is_local and store.url == str(tmp_path / "data" / "out")
    assert store.full("a/b.json") == f"{store.url}/a/b.json"
    for bad in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(ValueError, match="relative"):
            store.full(bad)
    assert pickle.loads(pickle.dumps(store)).url == store.url


def test_writer_hashes_what_it_commits_and_leaves_nothing_on_failure(tmp_path):
    store = Store(str(tmp_path))
    data = os.urandom(100_000)
    written = store.write_bytes("x/part.bin", data)
    assert (tmp_path / "x" / "part.bin").read_bytes() == data
    assert (written.size, written.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    with pytest.raises(RuntimeError, match="boom"):
        with store.writer("x/other.bin") as w:
            w.write(b"half")
            assert [p.name for p in (tmp_path / "x").iterdir() if p.name.startswith(".other.bin.")]
            raise RuntimeError("boom")
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["part.bin"]


def test_listing_hides_temporary_names_and_stamps_identify_versions(tmp_path):
    store = Store(str(tmp_path))
    store.write_bytes("d/b.json", b"{}")
    store.write_bytes("d/a.json", b"[]")
    (tmp_path / "d" / ".a.json.host-1-0.partial").write_bytes(b"x")
    assert store.list("d", ".json") == ["d/a.json", "d/b.json"]
    assert store.list("missing") == []
    stamp = store.stamp("d/a.json")
    assert stamp == {"bytes": 2, "mtime_ns": os.stat(tmp_path / "d" / "a.json").st_mtime_ns}
    assert store.stamp("d/none.json") is None and store.size("d/none.json") is None


def test_attempt_tokens_are_unique_and_json_is_deterministic():
    assert len({attempt_token() for _ in range(100)}) == 100
    assert dumps_json({"b": 1, "a": [1.5, None]}) == b'{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        dumps_json({"x": float("nan")})


def test_object_store_round_trip_stamps_with_etag_and_aborts_failed_uploads(s3_server, s3_bucket):
    store = Store(f"{s3_bucket}/root", **s3_server)
    assert store.url == f"{s3_bucket}/root" and not store.is_local
    data = os.urandom(3 << 20)
    written = store.write_bytes("shards/a.tar", data)
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert store.read_bytes("shards/a.tar") == data
    stamp = store.stamp("shards/a.tar")
    assert stamp["bytes"] == len(data) and stamp["etag"] and "mtime_ns" not in stamp
    with pytest.raises(RuntimeError):
        with store.writer("shards/b.tar") as w:
            w.write(data)
            raise RuntimeError("interrupted")
    assert store.list("shards") == ["shards/a.tar"]
    assert pickle.loads(pickle.dumps(store)).read_bytes("shards/a.tar") == data
