"""`mirrorset build` / `regenerate` command lines: help, success message, clear refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import skimage

from pipeline.cli import build_parser, main

COFFEE = Path(skimage.__file__).parent / "data" / "coffee.png"


def test_help_explains_the_commands() -> None:
    parser = build_parser()
    text = parser._subparsers._group_actions[0].choices["build"].format_help()
    assert "--source" in text and "sample" in text and "resumes" in text
    regen = parser._subparsers._group_actions[0].choices["regenerate"].format_help()
    assert "byte-identical" in regen and "--shards" in regen


def test_build_reports_where_the_dataset_is_and_refuses_a_new_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(COFFEE, photos / "coffee.png")  # a real photo without people: ends in rejects
    out = tmp_path / "out"
    argv = ["build", "--source", str(photos), "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"dataset: {out}" in printed and "pd.read_parquet" in printed
    assert "1 source paths, 1 accepted, 1 detected" in printed and "simulated: 0 pairs of 0 planned" in printed
    assert main([*argv, "--seed", "5"]) == 2
    assert "different config" in capsys.readouterr().err


def test_bad_source_and_missing_build_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["regenerate", "--out", str(tmp_path), "--quiet"]) == 2
    assert "not a mirrorset build" in capsys.readouterr().err
    assert main(["build", "--stage", "detect", "--out", str(tmp_path / "fresh"), "--quiet"]) == 2
    assert "--source first" in capsys.readouterr().err
