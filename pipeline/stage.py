"""The unit of parallel work: a Stage turns a batch of small items into a batch of results.

A backend (``pipeline.backends``) owns where a stage runs; a stage never knows. The
lifecycle is fixed: ``setup()`` once per worker (load models, open files), then any
number of ``process_batch(items)`` calls, then ``teardown()``. Items and results must be
picklable and small (ids, paths, summaries): images stay inside the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs: CPU cores (may be fractional) and GPUs."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if not self.cpus > 0:
            raise ValueError(f"Resources.cpus must be > 0, got {self.cpus}")
        if self.gpus < 0:
            raise ValueError(f"Resources.gpus must be >= 0, got {self.gpus}")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"Resources.gpus above 1 must be a whole number, got {self.gpus}")


@runtime_checkable
class Stage(Protocol):
    """One step of the build, run by a backend on one or more workers."""

    name: str
    resources: Resources

    def setup(self) -> None:
        """Per-worker initialisation (e.g. load detector weights); called once before work."""

    def process_batch(self, items: list[Any]) -> list[Any]:
        """Results for ``items``, one per item, in the same order."""

    def teardown(self) -> None:
        """Release what ``setup`` acquired; called once after the last batch."""
