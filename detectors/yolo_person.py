"""Person boxes + 17 COCO keypoints with ultralytics YOLO (pose weights), fully offline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from detectors.geometry import check_rgb
from detectors.modelfiles import embedded_yolo_weights, model_id
from detectors.records import ModelId

PERSON_CLASS = 0


@dataclass(frozen=True)
class PersonBoxes:
    """Detections in the input's frame: boxes (N, 4) xyxy outer edges, scores (N,), keypoints (N, 17, 3)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray


class YoloPersonDetector:
    """Person class only; ``score_threshold`` and ``nms_iou`` go to ultralytics' predict.

    ``weights`` None loads the embedded ``yolo11n-pose.pt``. Ultralytics is kept offline
    (YOLO_OFFLINE=1, a local .pt file, verbose=False, no plotting).
    """

    def __init__(self, weights: str | None, *, score_threshold: float, nms_iou: float, imgsz: int = 640) -> None:
        self.weights = Path(weights) if weights is not None else None
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.imgsz = imgsz
        self._model: Any = None
        self._models: tuple[ModelId, ...] = ()

    @property
    def models(self) -> tuple[ModelId, ...]:
        return self._models

    def load(self) -> None:
        path = self.weights if self.weights is not None else embedded_yolo_weights()
        ident = model_id(path.stem, path)
        os.environ["YOLO_OFFLINE"] = "1"
        from ultralytics import YOLO
        from ultralytics.utils import patches

        # ultralytics replaces PIL.Image.open process-wide with a wrapper that tries to
        # pip-install a HEIF plugin on unknown files; put Pillow's own back.
        PIL.Image.open = patches._image_open

        model = YOLO(str(path), task="pose")
        if model.task != "pose":
            raise ValueError(f"{path} is a {model.task!r} model; person detection needs pose weights")
        self._model, self._models = model, (ident,)

    def detect(self, rgb: np.ndarray) -> PersonBoxes:
        check_rgb(rgb)
        if self._model is None:
            raise RuntimeError("YoloPersonDetector.detect called before load()")
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        result = self._model.predict(
            bgr, classes=[PERSON_CLASS], conf=self.score_threshold, iou=self.nms_iou,
            imgsz=self.imgsz, device="cpu", verbose=False,
        )[0]
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float64) - 0.5
        scores = result.boxes.conf.cpu().numpy().astype(np.float64)
        keypoints = result.keypoints.data.cpu().numpy().astype(np.float64).reshape(len(boxes), 17, 3)
        keypoints[..., :2] -= 0.5
        return PersonBoxes(boxes, scores, keypoints)

    def close(self) -> None:
        self._model = None
