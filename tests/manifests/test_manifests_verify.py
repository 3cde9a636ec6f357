import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from manifests.parquet import encode_rows
from manifests.schema import PAIRS_SCHEMA, member_suffixes
from manifests.stats import stats
from manifests.verify import verify
from pipeline.cli import main

SIM_TAR = "shards/simulated/simulated-000000.tar"
REPORT_KEYS = {"ok", "mode", "problems", "shards", "counts"}


def _codes(report) -> set[str]:
    return {p.code for p in report.problems}


def _flip_member_byte(root: Path, suffix: str = "before.jpg") -> str:
    """Flip one byte inside the data of the first ``suffix`` member; returns the member's key."""
    path = root / SIM_TAR
    with tarfile.open(path) as tar:
        info = next(i for i in tar.getmembers() if i.name.endswith(suffix))
    data = bytearray(path.read_bytes())
    data[info.offset_data + info.size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return info.name.split(".", 1)[0]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_a_sound_build_verifies_and_the_report_keeps_its_contract(root_copy):
    report = verify(str(root_copy))
    assert report.ok, report.summary()
    written = json.loads((root_copy / "verify.json").read_text())
    assert set(written) == REPORT_KEYS and written == json.loads(json.dumps(report.to_dict()))
    assert written["mode"] == "full" and written["problems"] == []
    pairs = pd.read_parquet(root_copy / "manifests" / "pairs")
    assert written["counts"]["samples"] == len(pairs) and written["counts"]["members"] == len(member_suffixes("jpeg")) * len(pairs)
    per_shard = pairs.groupby("shard", observed=True).size()
    for record in written["shards"]:
        assert set(record) == {"subset", "url", "sha256", "nsamples", "filesize", "mtime_ns"}
        path = root_copy / record["url"]
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (record["filesize"], record["mtime_ns"]) == (path.stat().st_size, path.stat().st_mtime_ns)
        assert record["nsamples"] == per_shard[Path(record["url"]).stem]
    assert {r["subset"] for r in written["shards"]} == {"simulated", "professional"}


def test_a_flipped_member_byte_is_found_by_full_checks_not_by_quick_ones(root_copy):
    key = _flip_member_byte(root_copy)
    report = verify(str(root_copy))
    assert _codes(report) == {"member_checksum", "checksum"}
    member = next(p for p in report.problems if p.code == "member_checksum")
    assert member.path == SIM_TAR and f"{key}.before.jpg" in member.detail
    quick = verify(str(root_copy), quick=True)
    assert quick.ok and quick.mode == "quick" and quick.counts["bytes_read"] == 0


def test_truncation_is_found_by_both_modes(root_copy):
    path = root_copy / SIM_TAR
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "size_mismatch" in _codes(verify(str(root_copy), quick=True))
    assert {"size_mismatch", "corrupt_tar", "missing_member", "checksum"} <= _codes(verify(str(root_copy)))


def test_rows_members_ops_plan_and_counts_must_agree(root_copy):
    part = root_copy / "manifests" / "pairs" / "subset=simulated" / "part-000000.parquet"
    rows = pq.read_table(part, partitioning=None).to_pylist()
    part.write_bytes(encode_rows(rows[1:], PAIRS_SCHEMA))  # one pair's row is gone
    codes = _codes(verify(str(root_copy)))
    assert {"checksum", "count_mismatch", "extra_member", "op_rows", "unaccounted"} <= codes


def test_layout_problems_markers_index_strays_and_partials(root_copy):
    (root_copy / "_markers" / "professional-000000.json").unlink()
    index = root_copy / "shards" / "simulated" / "index.json"
    stale = json.loads(index.read_text())
    stale["shardlist"][0]["nsamples"] += 1
    index.write_text(json.dumps(stale))
    (root_copy / "shards" / "simulated" / "notes.txt").write_text("hello")
    (root_copy / "shards" / "simulated" / ".simulated-000001.tar.host-1-0.partial").write_bytes(b"x")
    report = verify(str(root_copy))
    by_code = {}
    for p in report.problems:
        by_code.setdefault(p.code, []).append(p)
    assert set(by_code) == {"missing_marker", "index_mismatch", "stray_file", "partial_file", "count_mismatch"}
    assert by_code["missing_marker"][0].path == "_markers/professional-000000.json"
    assert {p.path for p in by_code["index_mismatch"]} == {"shards/professional/index.json", "shards/simulated/index.json"}
    assert by_code["stray_file"][0].path == "shards/simulated/notes.txt"
    assert by_code["partial_file"][0].path == "shards/simulated/.simulated-000001.tar.host-1-0.partial"


def test_an_edit_planned_twice_is_found(root_copy):
    plan = root_copy / "manifests" / "plan" / "subset=simulated"
    shutil.copyfile(plan / "gen-000000.parquet", plan / "gen-000001.parquet")
    problems = [p for p in verify(str(root_copy)).problems if p.code == "plan_mismatch"]
    assert any("are planned in shards" in p.detail for p in problems)


def test_sample_and_shard_selection_and_a_report_written_elsewhere(root_copy, tmp_path):
    before = _snapshot(root_copy)
    outside = tmp_path / "reports" / "v.json"
    first = verify(str(root_copy), sample=1, report_path=str(outside))
    assert _snapshot(root_copy) == before  # nothing written into the dataset
    assert first.mode == "sample" and first.counts["shards_checked"] == 1 and first.counts["shards_total"] == 2
    assert json.loads(outside.read_text())["shards"] == list(first.shards)
    assert verify(str(root_copy), sample=1, report_path=str(outside)).shards[0]["url"] == first.shards[0]["url"]
    only = verify(str(root_copy), shards=["professional-000000"], report_path=str(outside))
    assert [r["url"] for r in only.shards] == ["shards/professional/professional-000000.tar"]
    with pytest.raises(ValueError, match="ambiguous"):
        verify(str(root_copy), shards=["0"], report_path=str(outside))
    assert verify(str(root_copy), subsets=["simulated"], shards=["0"], report_path=str(outside)).counts["shards_checked"] == 1


def test_cli_exit_status_and_json(root_copy, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["verify", str(root_copy), "--report", str(report), "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    _flip_member_byte(root_copy)
    assert main(["verify", str(root_copy), "--report", str(report), "--quiet"]) == 1
    assert "member_checksum" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nothing"), "--quiet"]) == 2


@pytest.mark.ray
def test_ray_workers_give_the_same_findings_as_one_process(root_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    _flip_member_byte(root_copy)
    one = verify(str(root_copy), report_path=str(tmp_path / "1.json"))
    two = verify(str(root_copy), workers=2, report_path=str(tmp_path / "2.json"))
    assert two.problems == one.problems and two.shards == one.shards and two.counts == one.counts


def test_an_object_store_root_verifies_with_etags(example_root, s3_server, s3_bucket):
    import fsspec

    from manifests.storage import Store

    fs = fsspec.filesystem("s3", **s3_server)
    root = f"{s3_bucket}/root"
    for path in sorted(example_root.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{root}/{path.relative_to(example_root).as_posix()}")
    report = verify(root, storage_options=s3_server, report_path=None)
    assert report.ok, report.summary()
    assert all("etag" in r and "mtime_ns" not in r for r in report.shards)
    assert json.loads(Store(root, **s3_server).read_bytes("verify.json"))["ok"] is True
    assert stats(root, s3_server) == stats(str(example_root))
    data = bytearray((example_root / SIM_TAR).read_bytes())
    with tarfile.open(example_root / SIM_TAR) as tar:
        info = next(i for i in tar.getmembers() if i.name.endswith("after.jpg"))
    data[info.offset_data + 7] ^= 0x01
    fs.pipe_file(f"{root}/{SIM_TAR}", bytes(data))
    assert _codes(verify(root, storage_options=s3_server)) == {"member_checksum", "checksum"}


def test_the_benchmarks_synthetic_shards_are_a_valid_dataset(tmp_path):
    from benchmarks.verify import generate, sequential_read

    info = generate(str(tmp_path / "bench"), gb=0.012, shard_mb=6)
    report = verify(str(tmp_path / "bench"))
    assert report.ok, report.summary()
    assert report.counts["shards_checked"] == info["shards"] == 2 and report.counts["samples"] == info["pairs"]
    tars = [str(tmp_path / "bench" / r["url"]) for r in report.shards]
    assert sequential_read(tars) == report.counts["bytes_read"]
