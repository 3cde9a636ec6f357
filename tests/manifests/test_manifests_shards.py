import hashlib
import io
import tarfile

import pytest

from manifests.schema import pair_key, partial_path
from manifests.shards import ShardTarWriter, UnsafeTarError, iter_tar_members

from manifests_builders import make_pair


def _samples(photo, n=3, fmt="jpeg"):
    return [make_pair(photo, pair_key("0123abcd0123abcd", 0, 0, v), v, fmt) for v in range(n)]


def _write(path, samples):
    with ShardTarWriter(path) as writer:
        digests = [writer.write(s) for s in samples]
    return digests


def test_same_samples_give_identical_tars_with_pinned_headers(astronaut, tmp_path):
    samples = _samples(astronaut)
    _write(tmp_path / "a.tar", samples)
    _write(tmp_path / "b" / "b.tar", samples)
    data = (tmp_path / "a.tar").read_bytes()
    assert data == (tmp_path / "b" / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        infos = tar.getmembers()
    suffixes = ("after.jpg", "before.jpg", "json", "mask.png")
    expected = [f"{s['__key__']}.{suffix}" for s in samples for suffix in suffixes]
    assert [i.name for i in infos] == expected
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {(0, 0, 0, "root", "root", 0o644)}


def test_write_returns_sha256_and_reader_returns_the_bytes(astronaut, tmp_path):
    samples = _samples(astronaut, 2, "png")
    digests = _write(tmp_path / "s.tar", samples)
    assert digests[0]["before.png"] == hashlib.sha256(samples[0]["before.png"]).hexdigest()
    members = list(iter_tar_members(tmp_path / "s.tar"))
    first = samples[0]["__key__"]
    assert [(m.key, m.suffix) for m in members][:4] == [
        (first, s) for s in ("after.png", "before.png", "json", "mask.png")
    ]
    assert members[5].data == samples[1]["before.png"]


@pytest.mark.parametrize("order", ["unsorted", "duplicate"])
def test_keys_must_be_strictly_increasing(astronaut, tmp_path, order):
    samples = _samples(astronaut, 2)
    bad = samples[::-1] if order == "unsorted" else [samples[0], samples[0]]
    with pytest.raises(ValueError, match="strictly increasing"):
        _write(tmp_path / "s.tar", bad)
    assert list(tmp_path.iterdir()) == []


def test_bad_samples_are_refused(astronaut, tmp_path):
    sample = _samples(astronaut, 1)[0]
    incomplete = {k: v for k, v in sample.items() if k != "mask.png"}
    with pytest.raises(ValueError, match="has members"):
        _write(tmp_path / "a.tar", [incomplete])
    with pytest.raises(ValueError, match="no '.'"):
        _write(tmp_path / "b.tar", [dict(sample, __key__="abc.def")])
    with pytest.raises(ValueError, match="must be bytes"):
        _write(tmp_path / "c.tar", [dict(sample, json="{}")])
    assert list(tmp_path.iterdir()) == []


def test_writer_that_raises_midway_leaves_no_file(astronaut, tmp_path):
    path = tmp_path / "shard.tar"
    with pytest.raises(RuntimeError, match="encode failed"):
        with ShardTarWriter(path) as writer:
            writer.write(_samples(astronaut, 1)[0])
            assert partial_path(path).exists()
            raise RuntimeError("encode failed")
    assert not path.exists() and not partial_path(path).exists()


def _tar_with(tmp_path, build_member):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("fine.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        build_member(tar)
    return path


def _file(name, data=b"pwned"):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return add


def _link(name, kind):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    return add


@pytest.mark.parametrize(
    "member, message",
    [
        (_file("../evil"), "escapes the archive"),
        (_file("a/../../evil"), "escapes the archive"),
        (_file("/etc/evil"), "absolute name"),
        (_link("passwd", tarfile.SYMTYPE), "is a link"),
        (_link("passwd", tarfile.LNKTYPE), "is a link"),
        (_link("dev", tarfile.CHRTYPE), "non-regular member"),
    ],
)
def test_reader_refuses_unsafe_members_and_writes_nothing(tmp_path, member, message):
    path = _tar_with(tmp_path, member)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafeTarError, match=message):
        list(iter_tar_members(path))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not (tmp_path.parent / "evil").exists()


def test_reader_reports_a_corrupt_later_header(astronaut, tmp_path):
    path = tmp_path / "s.tar"
    _write(path, _samples(astronaut, 2))
    with tarfile.open(path) as tar:
        third = tar.getmembers()[2]
    data = bytearray(path.read_bytes())
    data[third.offset + 5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafeTarError, match=f"no valid tar header at byte {third.offset}"):
        list(iter_tar_members(path))


def test_webdataset_reads_one_sample_per_pair_key(build):
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    from manifests.schema import shard_tar_path

    out, rows = build
    path = shard_tar_path(out, "simulated", 0)
    with open(path, "rb") as stream:
        samples = list(group_by_keys(dict(m, __url__=str(path)) for m in tar_file_iterator(stream)))
    expected = [r for r in rows if r["shard"] == "simulated-000000"]
    assert [s["__key__"] for s in samples] == [r["key"] for r in expected]
    assert all(set(s) >= {"after.jpg", "before.jpg", "json", "mask.png"} for s in samples)
    assert hashlib.sha256(samples[1]["after.jpg"]).hexdigest() == expected[1]["sha256_after"]
