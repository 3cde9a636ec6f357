"""Base of the detectors that run one MediaPipe graph: load it once, run it, close it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from detectors.modelfiles import mediapipe_file, model_id
from detectors.records import ModelId


class MediaPipeGraph(ABC):
    """``load`` identifies ``MODEL`` (name, path inside the mediapipe wheel) by sha256 and opens
    the graph (:meth:`_open`); ``close`` releases it. Subclasses add ``detect``."""

    MODEL: ClassVar[tuple[str, str]]

    def __init__(self) -> None:
        self._graph: Any = None
        self._models: tuple[ModelId, ...] = ()

    @property
    def models(self) -> tuple[ModelId, ...]:
        return self._models

    def load(self) -> None:
        name, relative = self.MODEL
        self._models = (model_id(name, mediapipe_file(relative)),)
        self._graph = self._open()

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    @abstractmethod
    def _open(self) -> Any:
        """The MediaPipe solution graph (anything with ``process`` and ``close``)."""

    def _loaded(self) -> Any:
        """The open graph; RuntimeError before ``load``."""
        if self._graph is None:
            raise RuntimeError(f"{type(self).__name__}.detect called before load()")
        return self._graph
