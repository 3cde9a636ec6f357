"""Ingest over directory, list and sample sources built from real photos."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manifests.digests import sha256_hex
from pipeline.imageio import DecodeLimits, content_id, load_image
from pipeline.ingest import (
    IngestResult,
    ingest,
    inspect_source,
    iter_source_paths,
    path_id,
    read_source,
    to_reject_row,
    to_source_row,
)
from pipeline.sample_corpus import sample_paths

SAMPLES = {photo.name: photo.path for photo in sample_paths()}

SOURCE_FIELDS = ["source_id", "path", "width", "height", "bytes", "sha256", "status", "reason"]
REJECT_FIELDS = ["source_id", "path", "stage", "reason", "detail"]


@pytest.fixture()
def photo_dir(tmp_path: Path) -> Path:
    """A folder as users have them: nested photos, a copy, broken files, clutter."""
    root = tmp_path / "photos"
    (root / "b_people").mkdir(parents=True)
    (root / "a_more" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    shutil.copy(SAMPLES["zidane"], root / "b_people" / "zidane.jpg")
    shutil.copy(SAMPLES["zidane"], root / "a_more" / "deeper" / "ZIDANE_COPY.JPG")  # same bytes
    shutil.copy(SAMPLES["grace_hopper"], root / "hopper.jpeg")
    shutil.copy(SAMPLES["astronaut"], root / "a_more" / "astronaut.PNG")
    bus = Path(SAMPLES["bus"]).read_bytes()
    (root / "bus_cut.jpg").write_bytes(bus[: len(bus) // 3])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_text("not a photo\n")
    (root / "README.txt").write_text("holiday photos\n")
    shutil.copy(SAMPLES["t1"], root / ".hidden.jpg")
    shutil.copy(SAMPLES["t1"], root / ".git" / "t1.jpg")
    return root


def _by_name(results: list[IngestResult]) -> dict[str, IngestResult]:
    return {os.path.basename(r.path): r for r in results}


def test_directory_walk_is_recursive_sorted_and_skips_hidden(photo_dir):
    paths = list(iter_source_paths(str(photo_dir)))
    assert paths == sorted(paths)
    relative = [os.path.relpath(p, photo_dir) for p in paths]
    assert relative == sorted([
        "README.txt", "a_more/astronaut.PNG", "a_more/deeper/ZIDANE_COPY.JPG", "b_people/zidane.jpg",
        "bus_cut.jpg", "empty.png", "hopper.jpeg", "notes.jpg",
    ])
    assert list(iter_source_paths(str(photo_dir) + "/")) == paths


def test_ingest_directory_statuses_and_reasons(photo_dir):
    results = list(ingest(iter_source_paths(str(photo_dir))))
    assert len(results) == 8
    got = _by_name(results)
    assert {name: (r.status, r.reason) for name, r in got.items()} == {
        "README.txt": ("rejected", "unsupported_format"),
        "astronaut.PNG": ("accepted", None),
        "ZIDANE_COPY.JPG": ("accepted", None),  # sorted first: a_more/ < b_people/
        "zidane.jpg": ("duplicate", f"duplicate_of:{got['ZIDANE_COPY.JPG'].source_id}"),
        "bus_cut.jpg": ("rejected", "truncated"),
        "empty.png": ("rejected", "empty"),
        "hopper.jpeg": ("accepted", None),
        "notes.jpg": ("rejected", "undecodable"),
    }
    hopper = got["hopper.jpeg"]
    data = Path(SAMPLES["grace_hopper"]).read_bytes()
    assert (hopper.width, hopper.height) == (512, 600)
    assert hopper.source_id == content_id(data) and hopper.sha256 == sha256_hex(data)
    assert hopper.bytes == len(data) and hopper.detail is None
    duplicate = got["zidane.jpg"]
    assert duplicate.source_id == got["ZIDANE_COPY.JPG"].source_id
    assert "ZIDANE_COPY.JPG" in duplicate.detail
    readme = got["README.txt"]
    assert readme.source_id == path_id(readme.path) and readme.sha256 is None and readme.bytes == 15
    assert all(r.detail for r in results if r.status != "accepted")


def test_ingest_is_deterministic(photo_dir):
    first = list(ingest(iter_source_paths(str(photo_dir))))
    assert list(ingest(iter_source_paths(str(photo_dir)))) == first


def test_ingest_streams_one_path_at_a_time():
    pulled: list[str] = []

    def paths():
        for photo in sample_paths():
            pulled.append(photo.path)
            yield photo.path

    results = ingest(paths())
    assert pulled == []
    first = next(results)
    assert len(pulled) == 1 and first.path == pulled[0] and first.status == "accepted"


def test_unreadable_paths_are_rejected_with_a_stable_id(tmp_path):
    missing = str(tmp_path / "gone.jpg")
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    dangling = tmp_path / "link.jpg"
    dangling.symlink_to(tmp_path / "nowhere.jpg")
    results = list(ingest([missing, str(folder), str(dangling)]))
    assert [(r.status, r.reason) for r in results] == [("rejected", "unreadable")] * 3
    assert "FileNotFoundError" in results[0].detail and "regular file" in results[1].detail
    assert results[0].source_id == path_id(missing) == path_id(missing)
    assert len({r.source_id for r in results}) == 3


def test_limits_apply_at_ingest(tmp_path):
    limits = DecodeLimits(min_side=700)
    too_small = inspect_source(SAMPLES["grace_hopper"], limits=limits)  # 512 x 600
    assert (too_small.status, too_small.reason) == ("rejected", "too_small")
    size = os.path.getsize(SAMPLES["t1"])
    too_big = inspect_source(SAMPLES["t1"], limits=DecodeLimits(max_bytes=size - 1))
    assert (too_big.reason, too_big.bytes, too_big.sha256) == ("too_large", size, None)


def test_unsupported_format_by_content(tmp_path):
    import importlib.util

    gif = Path(importlib.util.find_spec("skimage").submodule_search_locations[0]) / "data" / "no_time_for_that_tiny.gif"
    disguised = tmp_path / "animation.png"
    shutil.copy(gif, disguised)
    no_extension = tmp_path / "blob"
    shutil.copy(SAMPLES["zidane"], no_extension)
    disguised_result, blob_result = ingest([str(disguised), str(no_extension)])
    assert (disguised_result.reason, disguised_result.sha256 is not None) == ("unsupported_format", True)
    assert blob_result.status == "accepted" and (blob_result.width, blob_result.height) == (1280, 720)


def test_list_sources_parquet_and_csv(tmp_path, photo_dir):
    lists = tmp_path / "lists"
    lists.mkdir()
    entries = ["../photos/hopper.jpeg", str(photo_dir / "b_people" / "zidane.jpg"), "../photos/missing.jpg"]
    pq.write_table(pa.table({"path": entries, "note": ["a", "b", "c"]}), lists / "sources.parquet")
    with open(lists / "sources.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path"])
        writer.writerows([[i, entry] for i, entry in enumerate(entries)])
    expected = sorted([
        str(photo_dir / "hopper.jpeg"), str(photo_dir / "b_people" / "zidane.jpg"), str(photo_dir / "missing.jpg"),
    ])
    for name in ("sources.parquet", "sources.csv"):
        paths = list(iter_source_paths(str(lists / name)))
        assert paths == expected
        results = _by_name(list(ingest(paths)))
        assert {name: r.reason for name, r in results.items()} == {
            "hopper.jpeg": None, "zidane.jpg": None, "missing.jpg": "unreadable",
        }


def test_bad_sources_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        iter_source_paths(str(tmp_path / "nope"))
    pq.write_table(pa.table({"file": ["a.jpg"]}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="no 'path' column"):
        iter_source_paths(str(tmp_path / "bad.parquet"))
    (tmp_path / "bad.csv").write_text("file\na.jpg\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        iter_source_paths(str(tmp_path / "bad.csv"))
    (tmp_path / "blank.csv").write_text("path\na.jpg\n\"\"\n")
    with pytest.raises(ValueError, match="row 1 has no path"):
        iter_source_paths(str(tmp_path / "blank.csv"))
    with pytest.raises(ValueError, match="not a .parquet or .csv"):
        iter_source_paths(SAMPLES["zidane"])


def test_sample_source_ingests_every_photo():
    paths = list(iter_source_paths("sample"))
    assert paths == sorted(SAMPLES.values())
    results = list(ingest(paths))
    assert [r.status for r in results] == ["accepted"] * 7  # coffee is rejected later, at detection
    assert len({r.source_id for r in results}) == 7


def test_read_source_matches_ingest_decode():
    result = inspect_source(SAMPLES["astronaut"])
    image = read_source(result.path, expected_id=result.source_id)
    assert image.shape == (result.height, result.width, 3)
    np.testing.assert_array_equal(image, load_image(SAMPLES["astronaut"]))
    with pytest.raises(ValueError, match="changed since ingest"):
        read_source(result.path, expected_id="0" * 16)


def test_rows_have_the_manifest_fields(photo_dir):
    results = _by_name(list(ingest(iter_source_paths(str(photo_dir)))))
    accepted, truncated = results["hopper.jpeg"], results["bus_cut.jpg"]
    row = to_source_row(accepted)
    assert list(row) == SOURCE_FIELDS and row["status"] == "accepted" and row["reason"] is None
    reject = to_reject_row(truncated)
    assert list(reject) == REJECT_FIELDS
    assert reject["stage"] == "ingest" and reject["reason"] == "truncated" and "truncated" in reject["detail"]
    assert to_reject_row(results["zidane.jpg"])["reason"].startswith("duplicate_of:")
    with pytest.raises(ValueError, match="accepted"):
        to_reject_row(accepted)


def test_progress_bar_when_asked(capsys):
    list(ingest([SAMPLES["zidane"]], progress=True))
    assert "ingest" in capsys.readouterr().err
    list(ingest([SAMPLES["zidane"]]))
    assert capsys.readouterr().err == ""


def test_rows_fit_the_manifest_schemas(photo_dir):
    from manifests.schema import REJECTS_SCHEMA, SOURCES_SCHEMA

    results = list(ingest([*iter_source_paths(str(photo_dir)), str(photo_dir / "gone.jpg")]))
    sources = pa.Table.from_pylist([to_source_row(r) for r in results], schema=SOURCES_SCHEMA)
    rejects = pa.Table.from_pylist([to_reject_row(r) for r in results if r.status != "accepted"], schema=REJECTS_SCHEMA)
    assert sources.num_rows == 9 and rejects.num_rows == 6
    assert sources.column_names == SOURCE_FIELDS and rejects.column_names == REJECT_FIELDS
