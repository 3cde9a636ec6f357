"""The one protocol every detector follows: load once, detect many times, close."""

from __future__ import annotations

from typing import Protocol, TypeVar

import numpy as np

from detectors.records import ModelId

ResultT = TypeVar("ResultT", covariant=True)


class Detector(Protocol[ResultT]):
    """Set up once (``load``: weights, graphs), ``detect`` on RGB uint8 (H, W, 3), ``close``.

    ``detect`` raises ValueError for anything but an RGB uint8 array and RuntimeError
    when called before ``load``. ``models`` names the model files actually used.
    """

    def load(self) -> None: ...

    def detect(self, rgb: np.ndarray) -> ResultT: ...

    def close(self) -> None: ...

    @property
    def models(self) -> tuple[ModelId, ...]: ...
