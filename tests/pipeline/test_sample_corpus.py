"""The built-in sample corpus resolves to real photos inside installed packages."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os

import pytest
from PIL import Image

from pipeline import sample_corpus
from pipeline.imageio import load_image
from pipeline.sample_corpus import SampleCorpusError, sample_paths


def test_fixed_order_of_real_files_inside_their_packages():
    photos = sample_paths()
    assert [p.name for p in photos] == ["astronaut", "camera", "grace_hopper", "bus", "zidane", "t1", "coffee"]
    assert photos == sample_paths()
    for photo in photos:
        assert os.path.isabs(photo.path) and os.path.isfile(photo.path)
        package_root = importlib.util.find_spec(photo.package).submodule_search_locations[0]
        assert os.path.commonpath([photo.path, package_root]) == package_root
        assert photo.credit


def test_sample_photos_are_real_photos_with_the_expected_modes():
    sizes = {}
    for photo in sample_paths():
        with Image.open(photo.path) as image:
            sizes[photo.name] = (image.format, image.mode, image.size)
        rgb = load_image(photo.path)
        assert rgb.std() > 20
    assert sizes["camera"][1] == "L"  # the greyscale one
    assert sizes["grace_hopper"] == ("JPEG", "RGB", (512, 600))
    assert sizes["coffee"] == ("PNG", "RGB", (600, 400))


def test_missing_package_is_named(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        sample_corpus.importlib.util, "find_spec",
        lambda name, *args: None if name == "insightface" else real_find_spec(name, *args),
    )
    with pytest.raises(SampleCorpusError, match="'insightface'.*not installed"):
        sample_paths()


def test_missing_file_in_package_is_named(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec

    def fake(name, *args):
        if name != "matplotlib":
            return real_find_spec(name, *args)
        spec = importlib.machinery.ModuleSpec("matplotlib", None, is_package=True)
        spec.submodule_search_locations = [str(tmp_path)]
        return spec

    monkeypatch.setattr(sample_corpus.importlib.util, "find_spec", fake)
    with pytest.raises(SampleCorpusError, match="grace_hopper.jpg not found in package 'matplotlib'"):
        sample_paths()
