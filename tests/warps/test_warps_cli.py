"""`mirrorset ops`, `mirrorset warp` and the `bench warp` registration (warps.cli)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pipeline.cli import build_parser, main
from tests.conftest import FIXTURES, PHOTOS, read_rgb


def test_ops_json_lists_the_catalog(capsys):
    assert main(["ops", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 27
    eye = next(r for r in rows if r["name"] == "eye_size")
    assert eye["magnitude_pos"] == 0.25 and eye["magnitude_neg"] == 0.20
    assert eye["subsets"] == ["simulated", "professional"] and eye["reads"] == "face478"
    assert main(["ops", "--subset", "simulated", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 8


def test_ops_table_prints_one_line_per_op(capsys):
    assert main(["ops", "--subset", "professional"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 27 and lines[1].startswith("eye_size")


def test_warp_writes_the_after_image_and_region(tmp_path, capsys):
    out, mask_path = tmp_path / "after.png", tmp_path / "mask.png"
    argv = ["warp", str(PHOTOS["astronaut.png"]), "--landmarks", str(FIXTURES / "landmarks_astronaut.json"),
            "--op", "eye_size", "--strength", "100", "--op", "mouth_width", "--strength", "-60",
            "--out", str(out), "--region", str(mask_path)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "eye_size: strength 100/100" in printed and "mouth_width: strength -60/-60" in printed
    before, after = read_rgb(PHOTOS["astronaut.png"]), read_rgb(out)
    mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    assert after.shape == before.shape and mask.shape == before.shape[:2]
    assert set(np.unique(mask)) == {0, 255}
    diff = np.abs(after.astype(np.int16) - before).sum(axis=2)
    assert (diff > 0).sum() > 500
    # The region holds every pixel the edit changed (the PNG is lossless).
    assert np.all(mask[diff > 0] == 255)
    assert not (tmp_path / "after.png.tmp").exists()


def test_warp_rejects_bad_arguments(tmp_path):
    base = ["warp", str(PHOTOS["astronaut.png"]), "--landmarks", str(FIXTURES / "landmarks_astronaut.json")]
    with pytest.raises(SystemExit, match="2 --op but 1 --strength"):
        main(base + ["--op", "eye_size", "--op", "nose_length", "--strength", "10", "--out", str(tmp_path / "a.jpg")])
    with pytest.raises(SystemExit, match="--out must end"):
        main(base + ["--op", "eye_size", "--strength", "10", "--out", str(tmp_path / "a.gif")])
    with pytest.raises(ValueError, match="known ops"):
        main(base + ["--op", "eye_sise", "--strength", "10", "--out", str(tmp_path / "a.jpg")])
    with pytest.raises(ValueError, match="outside"):
        main(base + ["--op", "eye_size", "--strength", "150", "--out", str(tmp_path / "a.jpg")])


def test_bench_warp_is_registered_with_its_options():
    args = build_parser().parse_args(["bench", "warp", "--dense-cases", "4", "--json"])
    assert args.dense_cases == 4 and args.json and args.repeat == 3 and args.pro_scale == 4
    assert callable(args.handler)
