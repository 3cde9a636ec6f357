"""Same numbers everywhere (CLI, library, the build's detect stage), offline, and 8K photos."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.config import DetectorConfig, GateConfig
from detectors.records import PortraitDetections
from manifests.schema import detections_part_path
from manifests.storage import Store
from pipeline.detect_stage import DetectStage, plan_chunks
from pipeline.imageio import DecodeLimits, content_id

ROOT = Path(__file__).resolve().parents[2]
GROUP = Path(importlib.util.find_spec("insightface").origin).parent / "data" / "images" / "t1.jpg"


def _fresh_python(code: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run in a new interpreter from the repository root (nothing pinned or imported yet)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("YOLO_OFFLINE", "YOLO_AUTOINSTALL")}
    environment.update(env)
    return subprocess.run([sys.executable, *code], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=300, check=True)


def test_detect_cli_gives_the_build_stage_numbers(tmp_path, no_network):
    # The CLI in a fresh process that could use every core; the build's stage here.
    cli = _fresh_python(["-m", "pipeline.cli", "detect", str(GROUP), "--json"], OMP_NUM_THREADS="8")
    doc = json.loads(next(line for line in cli.stdout.splitlines() if line.startswith("{")))
    source_id = content_id(GROUP.read_bytes())
    store = Store(str(tmp_path))
    stage = DetectStage(store, DetectorConfig(), GateConfig(), DecodeLimits())
    stage.setup()
    try:
        chunk = plan_chunks([(source_id, str(GROUP))], set(), 1, 0)[0]
        stage.process_batch([chunk])
    finally:
        stage.teardown()
    row = store.read_table(detections_part_path(chunk.index)).to_pylist()[0]
    built = PortraitDetections.from_row(row)
    assert len(doc["faces"]) == len(built.faces) == 6 and len(doc["persons"]) == len(built.persons)
    for face_doc, face in zip(doc["faces"], built.faces):
        assert np.array_equal(np.array(face_doc["landmarks"], np.float32), face.landmarks)
    for person_doc, person in zip(doc["persons"], built.persons):
        assert np.array_equal(np.array(person_doc["box"], np.float32), person.box)
        assert person_doc["pose_source"] == person.pose_source and person_doc["pose_agreement"] == person.pose_agreement
        if person.pose is not None:
            assert np.array_equal(np.array(person_doc["pose"], np.float32), person.pose)
        assert np.array_equal(np.array(person_doc["outline"], np.float32).reshape(-1, 2), person.outline)


def test_ultralytics_is_offline_once_detectors_is_imported():
    probe = ("import detectors.yolo_person, os, ultralytics.utils as u; "
             "print(u.ONLINE, u.AUTOINSTALL, os.environ['YOLO_OFFLINE'])")
    assert _fresh_python(["-c", probe]).stdout.split() == ["False", "False", "1"]


@pytest.mark.slow
def test_an_8k_photo_maps_back_to_the_original(detector, group, group_det):
    factor = 6  # 1280 x 886 -> 7680 x 5316 (41 MP)
    big = cv2.resize(group, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    record = detector.detect(big)
    assert record.image_size == (7680, 5316) and record.detect_size == (1024, 709)
    assert len(record.faces) == len(group_det.faces) == 6
    for face in record.faces:
        back = (face.landmarks[:, :2].astype(np.float64) + 0.5) / factor - 0.5
        twin = min(group_det.faces, key=lambda f: float(np.hypot(*(f.landmarks[1, :2] - back[1]))))
        assert np.median(np.hypot(*(twin.landmarks[:, :2] - back).T)) < 0.1 * twin.inter_ocular
    for person in record.persons:
        assert person.outline.size and person.outline[:, 0].max() > 1280  # full-resolution outline
