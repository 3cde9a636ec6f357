"""Frame mapping on a real photo, and the `mirrorset detect` command."""

from __future__ import annotations

import json

import cv2
import numpy as np

from detectors.geometry import cut, downscale, to_full
from pipeline.cli import main


def test_downscale_reports_scales_and_maps_pixel_centres(astronaut):
    small, scales = downscale(astronaut, 256)
    assert small.shape == (256, 256, 3) and scales == (0.5, 0.5)
    # INTER_AREA by 2: small pixel i averages full pixels 2i and 2i+1, whose centre is 2i + 0.5.
    assert np.allclose(to_full(np.array([[10.0, 20.0]]), scales), [[20.5, 40.5]])
    block = astronaut[40:42, 20:22].reshape(-1, 3).mean(axis=0)
    assert np.abs(small[20, 10].astype(float) - block).max() <= 1.0
    # Image edges stay image edges.
    assert np.allclose(to_full(np.array([[-0.5, 255.5]]), scales), [[-0.5, 511.5]])
    same, unit = downscale(astronaut, 1024)
    assert same is astronaut and unit == (1.0, 1.0)


def test_crop_maps_normalized_points_back(astronaut):
    crop = cut(astronaut, (99.5, 49.5, 299.5, 249.5), 100)
    assert (crop.x0, crop.y0, crop.x1, crop.y1) == (100, 50, 300, 250) and crop.pixels.shape == (100, 100, 3)
    back = crop.from_normalized(np.array([[0.0, 0.0, 0.1], [1.0, 1.0, 0.0], [0.5, 0.5, 0.0]]))
    assert np.allclose(back[:, :2], [[99.5, 49.5], [299.5, 249.5], [199.5, 149.5]])
    assert back[0, 2] == 20.0
    assert cut(astronaut, (600.0, 600.0, 700.0, 700.0), 100) is None


def test_cli_prints_json_and_draws(tmp_path, capsys, no_network, astronaut_path):
    out = tmp_path / "check.png"
    assert main(["detect", str(astronaut_path), "--json", "--draw", str(out)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["image"] == str(astronaut_path) and doc["image_size"] == [512, 512]
    assert len(doc["persons"]) == 1 and doc["persons"][0]["detector"] == "yolo11n-pose"
    face = doc["faces"][0]
    assert len(face["landmarks"]) == 478 and {"yaw", "pitch", "roll", "box"} <= set(face)
    person = doc["persons"][0]
    assert person["pose_source"] == "mediapipe" and len(person["pose"]) == 33 and len(person["pose"][0]) == 4
    assert person["origin"] == "yolo" and len(person["outline"]) >= 8 and doc["dropped_faces"] == []
    assert doc["reject_reason"] is None and {v["code"] for v in doc["verdicts"]} >= {"no_person", "no_face"}
    drawing = cv2.imread(str(out))
    assert drawing.shape == (512, 512, 3)
    original = cv2.imread(str(astronaut_path))
    assert np.count_nonzero(np.any(drawing != original, axis=2)) > 1000
