"""What an op hands the solver: control points, reach and held regions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warps.hold import Hold
from warps.solve import Falloff


class MissingLandmarks(ValueError):
    """An op cannot be made on these landmarks: what it reads is absent, or the body
    part it edits is not visible (joints below the visibility threshold, no silhouette
    edge where it needs one, covered by another person). The message says which."""


@dataclass(frozen=True, eq=False)
class Anchors:
    """Control points of one op: ``src`` (M, 2) -> ``dst`` (M, 2) float64, the first
    ``moving`` rows moving, the rest held (src == dst); the op's reach (``falloff``, None:
    the solver's box taper) and the regions it must leave exactly still (``hold``)."""

    src: np.ndarray
    dst: np.ndarray
    moving: int
    falloff: Falloff | None = None
    hold: Hold | None = None
