import io
import json
import tarfile

import pytest

from manifests.markers import write_marker
from manifests.parquet import read_table, write_table
from manifests.schema import PAIRS_SCHEMA, REJECTS_SCHEMA, marker_path, pairs_part_path, partial_path, shard_tar_path
from manifests.shards import ShardTarWriter, iter_tar_members
from manifests.verify import PROBLEM_CODES, verify
from pipeline.cli import main


def codes(report):
    return sorted({p.code for p in report.problems})


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_clean_build_verifies_and_writes_report(build):
    out, rows = build
    report = verify(out)
    assert report.ok, report.summary()
    assert report.pairs == len(rows) and report.members == 4 * len(rows) and report.shards == 3
    assert report.checked_counts == ("accepted", "groups", "pairs", "rejects", "shards", "sources")
    saved = json.loads((out / "verify.json").read_text())
    assert saved["ok"] is True and saved["problems"] == [] and saved["pairs"] == len(rows)
    assert main(["verify", str(out)]) == 0


def test_flipped_byte_in_image_data_is_caught(build):
    out, rows = build
    tar = shard_tar_path(out, "simulated", 0)
    with tarfile.open(tar) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(".before.jpg"))
    _flip(tar, member.offset_data + member.size // 2)
    report = verify(out)
    assert codes(report) == ["checksum", "marker_mismatch"]
    [checksum] = [p for p in report.problems if p.code == "checksum"]
    assert checksum.path == "shards/simulated/simulated-000000.tar"
    assert checksum.detail.startswith(member.name)
    assert main(["verify", str(out)]) == 1
    assert json.loads((out / "verify.json").read_text())["problem_counts"] == {"checksum": 1, "marker_mismatch": 1}


def test_flipped_byte_in_tar_header_is_caught(build):
    out, _ = build
    tar = shard_tar_path(out, "simulated", 1)
    with tarfile.open(tar) as t:
        member = t.getmembers()[5]
    _flip(tar, member.offset + 124)  # inside the size field
    report = verify(out)
    assert "corrupt_tar" in codes(report) and "marker_mismatch" in codes(report)
    assert set(codes(report)) <= {"corrupt_tar", "marker_mismatch"}


def test_missing_member_is_caught(build):
    out, _ = build
    tar = shard_tar_path(out, "simulated", 0)
    members = list(iter_tar_members(tar))
    dropped = members[6]
    tar.unlink()
    # rewrite with tarfile directly: ShardTarWriter would refuse the incomplete sample
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as t:
        for m in members:
            if m.name != dropped.name:
                info = tarfile.TarInfo(m.name)
                info.size = len(m.data)
                t.addfile(info, io.BytesIO(m.data))
    write_marker(out, "simulated", 0)
    report = verify(out)
    assert codes(report) == ["missing_member"]
    assert report.problems[0].detail == dropped.name


def test_extra_and_duplicate_rows_are_caught(build):
    out, _ = build
    part = pairs_part_path(out, "simulated", 1)
    rows = read_table(part).to_pylist()
    ghost = dict(rows[-1], pair_id=rows[-1]["pair_id"][:-2] + "09", key=rows[-1]["key"][:-2] + "09")
    write_table(part, rows + [ghost, rows[0]], PAIRS_SCHEMA)
    write_marker(out, "simulated", 1)
    report = verify(out)
    assert codes(report) == ["count_mismatch", "duplicate_row", "missing_member"]
    missing = sorted(p.detail for p in report.problems if p.code == "missing_member")
    assert missing == sorted(f"{ghost['key']}.{s}" for s in ("after.jpg", "before.jpg", "json", "mask.png"))
    [duplicate] = [p for p in report.problems if p.code == "duplicate_row"]
    assert rows[0]["pair_id"] in duplicate.detail
    assert [p.detail for p in report.problems if p.code == "count_mismatch"] == [
        f"counts.pairs = {report.pairs - 2}, manifests have {report.pairs}"
    ]


def test_extra_member_without_row_is_caught(build):
    out, _ = build
    part = pairs_part_path(out, "professional", 0)
    rows = read_table(part).to_pylist()
    write_table(part, rows[1:], PAIRS_SCHEMA)
    write_marker(out, "professional", 0)
    report = verify(out)
    assert "extra_member" in codes(report)
    assert sum(p.code == "extra_member" for p in report.problems) == 4


def test_partial_files_and_missing_markers_are_caught(build):
    out, _ = build
    partial_path(shard_tar_path(out, "simulated", 7)).write_bytes(b"half a tar")
    marker_path(out, "professional", 0).unlink()
    report = verify(out)
    assert codes(report) == ["missing_marker", "partial_file"]
    [partial] = [p for p in report.problems if p.code == "partial_file"]
    assert partial.path == "shards/simulated/.simulated-000007.tar.partial"


def test_unfinished_writer_leaves_nothing_for_verify(build):
    out, _ = build
    with pytest.raises(RuntimeError):
        with ShardTarWriter(shard_tar_path(out, "simulated", 2)):
            raise RuntimeError("killed")
    assert verify(out).ok


def test_dataset_counts_and_stray_files_are_checked(build):
    out, rows = build
    dataset = json.loads((out / "dataset.json").read_text())
    dataset["counts"]["pairs"] += 1
    dataset["counts"]["views"] = 8
    (out / "dataset.json").write_text(json.dumps(dataset))
    (out / "shards" / "simulated" / "notes.txt").write_text("hello")
    report = verify(out)
    assert codes(report) == ["count_mismatch", "stray_file"]
    assert report.unchecked_counts == ("views",)
    assert all(p.code in PROBLEM_CODES for p in report.problems)


def test_rows_contradicting_their_partition_and_bad_tables_are_caught(build):
    out, _ = build
    part = pairs_part_path(out, "simulated", 1)
    rows = read_table(part).to_pylist()
    write_table(part, [dict(r, subset="professional") for r in rows], PAIRS_SCHEMA)
    write_marker(out, "simulated", 1)
    sources = out / "manifests" / "sources.parquet"
    write_table(sources, read_table(out / "manifests" / "rejects.parquet").to_pylist(), REJECTS_SCHEMA)
    report = verify(out)
    assert codes(report) == ["bad_table", "count_mismatch", "row_mismatch"]
    assert sum(p.code == "row_mismatch" for p in report.problems) == len(rows)
    assert [p.path for p in report.problems if p.code == "bad_table"] == ["manifests/sources.parquet"]
