"""Ingest over folder, list and sample sources built from real photos."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from manifests.digests import sha256_hex
from manifests.schema import REJECTS_SCHEMA, SOURCES_SCHEMA
from pipeline.imageio import DecodeLimits, ImageRejected, content_id, decode_image, load_image, probe_image
from pipeline.ingest import (
    SourceChanged,
    inspect_path,
    list_sources,
    path_id,
    read_source,
    reject_row,
    resolve_duplicates,
)
from pipeline.sample_corpus import sample_paths

SAMPLES = {photo.name: photo.path for photo in sample_paths()}
LIMITS = DecodeLimits()


@pytest.fixture()
def photo_dir(tmp_path: Path) -> Path:
    """A folder as users have them: nested photos, a copy, broken files, clutter, links."""
    root = tmp_path / "photos"
    (root / "b_people").mkdir(parents=True)
    (root / "a_more" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    shutil.copy(SAMPLES["zidane"], root / "b_people" / "zidane.jpg")
    shutil.copy(SAMPLES["zidane"], root / "a_more" / "deeper" / "ZIDANE_COPY.JPG")  # same bytes
    shutil.copy(SAMPLES["grace_hopper"], root / "hopper.jpeg")
    shutil.copy(SAMPLES["astronaut"], root / "a_more" / "astronaut.PNG")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_text("not a photo\n")
    (root / "README.txt").write_text("holiday photos\n")
    shutil.copy(SAMPLES["t1"], root / ".hidden.jpg")
    shutil.copy(SAMPLES["t1"], root / ".git" / "t1.jpg")
    (root / "inside_link.jpg").symlink_to(root / "hopper.jpeg")  # stays inside: fine
    shutil.copy(SAMPLES["bus"], tmp_path / "outside.jpg")
    (root / "escape.jpg").symlink_to(tmp_path / "outside.jpg")  # leaves the folder: refused
    return root


def _rows(paths: list[str], root: str | None) -> dict[str, dict]:
    rows = resolve_duplicates(inspect_path(p, root, LIMITS) for p in paths)
    return {os.path.basename(r["path"]): r for r in rows}


def test_directory_walk_is_recursive_sorted_and_skips_hidden(photo_dir: Path) -> None:
    listing = list_sources(str(photo_dir))
    assert list(listing.paths) == sorted(listing.paths) and listing.root == os.path.realpath(photo_dir)
    relative = [os.path.relpath(p, photo_dir) for p in listing.paths]
    assert relative == sorted([
        "README.txt", "a_more/astronaut.PNG", "a_more/deeper/ZIDANE_COPY.JPG", "b_people/zidane.jpg",
        "empty.png", "escape.jpg", "hopper.jpeg", "inside_link.jpg", "notes.jpg",
    ])  # fmt: skip
    assert list_sources(str(photo_dir) + "/").paths == listing.paths


def test_statuses_and_reasons_are_decided_by_content(photo_dir: Path) -> None:
    listing = list_sources(str(photo_dir))
    got = _rows(list(listing.paths), listing.root)
    original = got["ZIDANE_COPY.JPG"]  # sorted first: a_more/ < b_people/
    assert {name: (r["status"], r["reason"]) for name, r in got.items()} == {
        "README.txt": ("rejected", "undecodable"),
        "astronaut.PNG": ("accepted", None),
        "ZIDANE_COPY.JPG": ("accepted", None),
        "zidane.jpg": ("duplicate", "duplicate"),
        "empty.png": ("rejected", "empty"),
        "escape.jpg": ("rejected", "outside_root"),
        "hopper.jpeg": ("accepted", None),
        "inside_link.jpg": ("duplicate", "duplicate"),
        "notes.jpg": ("rejected", "undecodable"),
    }
    assert got["zidane.jpg"]["detail"].startswith(original["source_id"]) and "ZIDANE_COPY.JPG" in got["zidane.jpg"]["detail"]
    hopper = got["hopper.jpeg"]
    data = Path(SAMPLES["grace_hopper"]).read_bytes()
    assert (hopper["width"], hopper["height"], hopper["format"]) == (512, 600, "JPEG")
    assert hopper["source_id"] == content_id(data) and hopper["sha256"] == sha256_hex(data) and hopper["bytes"] == len(data)
    assert got["escape.jpg"]["sha256"] is None and got["escape.jpg"]["source_id"] == path_id(got["escape.jpg"]["path"])
    assert all(r["detail"] for r in got.values() if r["status"] != "accepted")
    sources = pa.Table.from_pylist(list(got.values()), schema=SOURCES_SCHEMA)
    rejects = pa.Table.from_pylist([reject_row(r) for r in got.values() if r["status"] != "accepted"], schema=REJECTS_SCHEMA)
    assert sources.num_rows == 9 and rejects.num_rows == 6


def test_unreadable_paths_are_rejected_with_a_stable_id(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.jpg")
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    dangling = tmp_path / "link.jpg"
    dangling.symlink_to(tmp_path / "nowhere.jpg")
    rows = [inspect_path(p, None, LIMITS) for p in (missing, str(folder), str(dangling))]
    assert [(r["status"], r["reason"]) for r in rows] == [("rejected", "unreadable")] * 3
    assert "FileNotFoundError" in rows[0]["detail"] and "regular file" in rows[1]["detail"]
    assert rows[0]["source_id"] == path_id(missing) and len({r["source_id"] for r in rows}) == 3


def test_limits_apply_from_the_header(tmp_path: Path) -> None:
    small = inspect_path(SAMPLES["grace_hopper"], None, DecodeLimits(min_side=700))  # 512 x 600
    assert (small["status"], small["reason"]) == ("rejected", "too_small")
    size = os.path.getsize(SAMPLES["t1"])
    big = inspect_path(SAMPLES["t1"], None, DecodeLimits(max_bytes=size - 1))
    assert (big["reason"], big["bytes"], big["sha256"]) == ("too_large", size, None)
    pixels = inspect_path(SAMPLES["t1"], None, DecodeLimits(max_pixels=1000 * 800))
    assert pixels["reason"] == "too_large" and "px" in pixels["detail"]


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_probe_gives_the_upright_size_without_decoding(orientation: int) -> None:
    image = Image.open(SAMPLES["grace_hopper"])
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    fmt, width, height = probe_image(buffer.getvalue(), limits=LIMITS)
    upright = decode_image(buffer.getvalue(), limits=LIMITS)
    assert fmt == "JPEG" and (height, width) == upright.shape[:2]


def test_probe_and_decode_agree_on_every_format() -> None:
    """Ingest's header probe accepts exactly what the decoder accepts (formats decided by content)."""
    photo = Image.open(SAMPLES["astronaut"])
    gif = Path(importlib.util.find_spec("skimage").submodule_search_locations[0]) / "data" / "no_time_for_that_tiny.gif"
    blobs = {"gif": gif.read_bytes(), "truncated_header": Path(SAMPLES["zidane"]).read_bytes()[:40], "text": b"hello"}
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "PPM", "GIF"):
        buffer = io.BytesIO()
        photo.save(buffer, fmt)
        blobs[fmt] = buffer.getvalue()
    for name, data in blobs.items():
        try:
            decode_image(data, limits=LIMITS)
            decoded = None
        except ImageRejected as exc:
            decoded = exc.code
        try:
            probe_image(data, limits=LIMITS)
            probed = None
        except ImageRejected as exc:
            probed = exc.code
        assert probed == decoded or decoded == "truncated", name


def test_list_sources_parquet_and_csv_stay_inside_their_root(tmp_path: Path, photo_dir: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    entries = ["../photos/hopper.jpeg", str(photo_dir / "b_people" / "zidane.jpg"), "../photos/missing.jpg"]
    pq.write_table(pa.table({"path": entries, "note": ["a", "b", "c"]}), lists / "sources.parquet")
    with open(lists / "sources.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path"])
        writer.writerows([[i, entry] for i, entry in enumerate(entries)])
    expected = sorted([str(photo_dir / "hopper.jpeg"), str(photo_dir / "b_people" / "zidane.jpg"), str(photo_dir / "missing.jpg")])
    for name in ("sources.parquet", "sources.csv"):
        listing = list_sources(str(lists / name))
        assert list(listing.paths) == expected
        # By default a listed path must lie below the list's own folder: these do not.
        assert {r["reason"] for r in _rows(list(listing.paths), listing.root).values()} == {"outside_root"}
        allowed = list_sources(str(lists / name), list_root=str(tmp_path))
        assert {n: r["reason"] for n, r in _rows(list(allowed.paths), allowed.root).items()} == {
            "hopper.jpeg": None, "zidane.jpg": None, "missing.jpg": "unreadable",
        }


def test_bad_sources_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_sources(str(tmp_path / "nope"))
    pq.write_table(pa.table({"file": ["a.jpg"]}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="no 'path' column"):
        list_sources(str(tmp_path / "bad.parquet"))
    (tmp_path / "bad.csv").write_text("file\na.jpg\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        list_sources(str(tmp_path / "bad.csv"))
    (tmp_path / "blank.csv").write_text('path\na.jpg\n""\n')
    with pytest.raises(ValueError, match="row 1 has no path"):
        list_sources(str(tmp_path / "blank.csv"))
    with pytest.raises(ValueError, match="not a .parquet or .csv"):
        list_sources(SAMPLES["zidane"])


def test_sample_source_lists_every_photo() -> None:
    listing = list_sources("sample")
    assert list(listing.paths) == sorted(SAMPLES.values()) and listing.root is None
    rows = [inspect_path(p, None, LIMITS) for p in listing.paths]
    assert [r["status"] for r in rows] == ["accepted"] * 7  # coffee is rejected later, at planning


def test_read_source_checks_the_content_id() -> None:
    row = inspect_path(SAMPLES["astronaut"], None, LIMITS)
    image = read_source(row["path"], limits=LIMITS, expected_id=row["source_id"])
    assert image.shape == (row["height"], row["width"], 3)
    np.testing.assert_array_equal(image, load_image(SAMPLES["astronaut"]))
    with pytest.raises(SourceChanged, match="changed since ingest"):
        read_source(row["path"], limits=LIMITS, expected_id="0" * 16)
