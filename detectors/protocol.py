"""The one protocol every detector follows: load once, detect many times, close."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import numpy as np

from detectors.records import ModelId

ResultT = TypeVar("ResultT", covariant=True)


class Detector(Protocol[ResultT]):
    """Set up once (``load``: weights, graphs), ``detect`` on RGB uint8 (H, W, 3), ``close``.

    ``detect`` takes the full-resolution photo first, then what the detector needs to know
    about it (FaceMesh a face ROI, Pose a person ROI, the segmenter the people); it raises
    ValueError for anything but an RGB uint8 array and RuntimeError when called before
    ``load``. ``models`` names the model files actually used.
    """

    def load(self) -> None: ...

    def detect(self, rgb: np.ndarray, *args: Any, **kwargs: Any) -> ResultT: ...

    def close(self) -> None: ...

    @property
    def models(self) -> tuple[ModelId, ...]: ...
