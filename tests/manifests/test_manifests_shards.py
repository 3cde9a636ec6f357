import hashlib
import io
import json
import tarfile

import cv2
import numpy as np
import pytest
import skimage.data

from manifests.schema import pair_key
from manifests.shards import READ_SIZE, ShardTarWriter, UnsafeTarError, iter_tar_members


def _sample(view: int, fmt: str = "jpeg") -> dict:
    """One pair sample cut from skimage's astronaut (after = the crop 3 px to the right)."""
    photo = skimage.data.astronaut()
    y, x = 60 + 7 * view, 100 + 11 * view
    before, after = photo[y : y + 96, x : x + 96], photo[y : y + 96, x + 3 : x + 99]
    ext = "jpg" if fmt == "jpeg" else fmt
    mask = np.where(np.abs(before.astype(int) - after).max(axis=2) > 20, 255, 0).astype(np.uint8)
    key = pair_key("simulated", "0123abcd0123abcd", 0, 0, view)
    return {
        "__key__": key,
        f"after.{ext}": cv2.imencode(f".{ext}", after[:, :, ::-1])[1].tobytes(),
        f"before.{ext}": cv2.imencode(f".{ext}", before[:, :, ::-1])[1].tobytes(),
        "json": json.dumps({"pair_id": key}).encode(),
        "mask.png": cv2.imencode(".png", mask)[1].tobytes(),
        "opmask.png": cv2.imencode(".png", mask // 255)[1].tobytes(),
        "regions.png": cv2.imencode(".png", mask // 255 * 8)[1].tobytes(),
        "strength.png": cv2.imencode(".png", np.full_like(mask, 255))[1].tobytes(),
    }


def _tar(samples: list[dict]) -> tuple[bytes, list[dict]]:
    stream = io.BytesIO()
    with ShardTarWriter(stream) as writer:
        digests = [writer.write(s) for s in samples]
    return stream.getvalue(), digests


class _Trickle(io.RawIOBase):
    """A stream that hands out at most 777 bytes per read (like a slow socket)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._data[self._pos : self._pos + min(777, size if size >= 0 else 777)]
        self._pos += len(chunk)
        return chunk


def test_same_samples_give_identical_tars_with_pinned_headers():
    samples = [_sample(v) for v in range(3)]
    data, _ = _tar(samples)
    assert _tar(samples)[0] == data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        infos = tar.getmembers()
    suffixes = ("after.jpg", "before.jpg", "json", "mask.png", "opmask.png", "regions.png", "strength.png")
    assert [i.name for i in infos] == [f"{s['__key__']}.{x}" for s in samples for x in suffixes]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {(0, 0, 0, "root", "root", 0o644)}


@pytest.mark.parametrize("chunked", [False, True])
def test_reader_returns_the_written_bytes_whatever_the_read_sizes(chunked):
    samples = [_sample(v, "png") for v in range(2)]
    data, digests = _tar(samples)
    stream = _Trickle(data) if chunked else io.BytesIO(data)
    members = list(iter_tar_members(stream, "s.tar"))
    suffixes = ("after.png", "before.png", "json", "mask.png", "opmask.png", "regions.png", "strength.png")
    assert [(m.key, m.suffix) for m in members][:7] == [(samples[0]["__key__"], s) for s in suffixes]
    assert members[8].data == samples[1]["before.png"]
    assert digests[1]["before.png"] == hashlib.sha256(samples[1]["before.png"]).hexdigest()


def test_reader_handles_members_larger_than_one_read():
    big = {**_sample(0, "png"), "json": b"x" * (READ_SIZE + 12345)}
    data, _ = _tar([big])
    members = {m.suffix: m.data for m in iter_tar_members(io.BytesIO(data))}
    assert members["json"] == big["json"]


def test_writer_refuses_bad_samples():
    sample = _sample(0)
    with ShardTarWriter(io.BytesIO()) as writer:
        with pytest.raises(ValueError, match="has members"):
            writer.write({k: v for k, v in sample.items() if k != "opmask.png"})
        with pytest.raises(ValueError, match="no '.'"):
            writer.write(dict(sample, __key__="abc.def"))
        with pytest.raises(ValueError, match="must be bytes"):
            writer.write(dict(sample, json="{}"))
        writer.write(sample)
        with pytest.raises(ValueError, match="twice"):
            writer.write(sample)


def _tar_with(add) -> bytes:
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("ok.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        add(tar)
    return stream.getvalue()


def _file(name):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return add


def _special(name, kind):
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
        (_special("passwd", tarfile.SYMTYPE), "is a link"),
        (_special("passwd", tarfile.LNKTYPE), "is a link"),
        (_special("dev", tarfile.CHRTYPE), "non-regular member"),
        (_special("dir", tarfile.DIRTYPE), "non-regular member"),
    ],
)
def test_reader_refuses_unsafe_members(member, message):
    with pytest.raises(UnsafeTarError, match=message):
        list(iter_tar_members(io.BytesIO(_tar_with(member))))


def test_reader_refuses_extended_headers_which_shards_never_hold():
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("k" * 120 + ".json")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UnsafeTarError, match="extended"):
        list(iter_tar_members(io.BytesIO(stream.getvalue())))


def test_reader_reports_a_corrupt_later_header_truncation_and_garbage():
    data, _ = _tar([_sample(0), _sample(1)])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        third = tar.getmembers()[2]
    corrupt = bytearray(data)
    corrupt[third.offset + 5] ^= 0x01
    with pytest.raises(UnsafeTarError, match=f"no valid tar header at byte {third.offset}"):
        list(iter_tar_members(io.BytesIO(bytes(corrupt))))
    with pytest.raises(UnsafeTarError, match="truncated"):
        list(iter_tar_members(io.BytesIO(data[: third.offset_data + 10])))
    with pytest.raises(UnsafeTarError, match="non-zero data"):
        list(iter_tar_members(io.BytesIO(data + b"garbage")))
    with pytest.raises(UnsafeTarError, match="not a readable tar"):
        list(iter_tar_members(io.BytesIO(b"not a tar at all" * 64)))


def test_webdataset_reads_one_sample_per_pair_key():
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    samples = [_sample(v) for v in range(3)]
    data, digests = _tar(samples)
    loaded = list(group_by_keys(dict(m, __url__="s.tar") for m in tar_file_iterator(io.BytesIO(data))))
    assert [s["__key__"] for s in loaded] == [s["__key__"] for s in samples]
    assert hashlib.sha256(loaded[1]["after.jpg"]).hexdigest() == digests[1]["after.jpg"]
