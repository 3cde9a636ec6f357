"""QA inside the build: measure every edit and every view (``pipeline.fidelity``) and apply
the configured gates, on the worker, before anything is encoded.

Per-edit measures (realized and collateral ratios, fold count and Jacobian range, detail,
identity) are taken once in the base frame; a failing per-edit gate rejects the edit (the
runner tries its next attempt). Per-view measures (alignment, change outside the mask) are
taken on each view's pixels; a failing per-view gate rejects that view. Both kinds of reject
rows carry the measurements. The face reference (the embedding of ``before``)
is computed once per base frame and reused by every edit in that frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np

from pipeline.fidelity import FidelityModels, edit_geometry, failing_gates, measure_view
from pipeline.recipes import Edit, EditRejected
from pipeline.render import ViewPixels

#: Per-edit columns (the rest of QA_FIELDS are per view).
EDIT_COLUMNS = ("realized_ratio", "collateral_ratio", "fold_count", "min_jacobian", "max_jacobian", "detail_ratio", "identity_sim")


class PairMeasurer:
    """Holds the QA models of one worker (``config`` is a ``pipeline.config.QaConfig``)."""

    def __init__(self, config: Any, jpeg_quality: int) -> None:
        self.config = config
        self.jpeg_quality = jpeg_quality
        self._models: FidelityModels | None = None
        self._references: dict[tuple, Any] = {}

    def load(self) -> None:
        from detectors.identity import OnnxEmbedder

        embedder = OnnxEmbedder(self.config.identity_model) if self.config.identity_model else None
        self._models = FidelityModels(embedder, diagnostics=False)
        self._models.load()

    def close(self) -> None:
        if self._models is not None:
            self._models.close()
            self._models = None
        self._references.clear()

    @property
    def identity_model(self) -> dict[str, str] | None:
        return None if self._models is None else self._models.identity_model

    def edit(self, frame_key: tuple, edit: Edit) -> dict[str, Any]:
        """Per-edit measures of ``edit``; EditRejected (with the measures) on a failing gate.

        The measures that need no model (folds, Jacobians, collateral, detail) are gated
        first: an edit failing one of them is rejected without the costlier landmark tracking
        and identity embedding (its ``realized_ratio`` and ``identity_sim`` are then absent
        from the reject row). ``frame_key`` names the edit's base frame (same key, same
        ``before`` and face): the face reference is computed once per key.
        """
        if self._models is None:
            raise RuntimeError("PairMeasurer used before load()")
        names = [r.name for r in edit.records]
        geometry, carried = edit_geometry(edit.face, edit.before, edit.after, edit.field, edit.region, names,
                                          jpeg_quality=self.jpeg_quality)  # fmt: skip
        measures: dict[str, Any] = {column: math.nan for column in EDIT_COLUMNS}
        measures.update(asdict(geometry))
        self._gate(measures, edit)
        if edit.face is not None:
            if frame_key not in self._references:
                self._references = {frame_key: self._models.face_reference(edit.before, edit.face)}  # one frame at a time
            face = self._models.face_measures(self._references[frame_key], edit.before, edit.after, edit.field,
                                              names, carried, diagnostics=False)  # fmt: skip
            measures.update(realized_ratio=face.realized_ratio, identity_sim=face.identity_sim)
            self._gate(measures, edit)
        return measures

    def _gate(self, measures: dict[str, Any], edit: Edit) -> None:
        failed = failing_gates(measures, self.config.gates, max_abs_strength=_max_strength(edit))
        if failed:
            raise EditRejected(failed[0], "failed QA gate(s) " + ", ".join(failed), plain_measures(measures))

    def view(self, edit: Edit, pixels: ViewPixels, edit_measures: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(all measures of this view, failing per-view gate codes)."""
        # measure_view makes a fresh DIS flow per view: one instance reused across views made
        # align_err_px depend on the views measured before (seen as bytes differing by worker).
        found = measure_view(
            edit.before, edit.after, edit.region, edit.field.roi, pixels.before, pixels.after, pixels.mask,
            pixels.transform.matrix, codec_noise=edit_measures["codec_noise"], jpeg_quality=self.jpeg_quality,
        )  # fmt: skip
        measures = {**edit_measures, "align_err_px": found.align_err_px, "outside_change": found.outside_change}
        return measures, failing_gates(measures, self.config.gates, max_abs_strength=_max_strength(edit))


def _max_strength(edit: Edit) -> int:
    return max((abs(r.applied_strength) for r in edit.records), default=0)


def plain_measures(measures: dict[str, Any]) -> dict[str, float]:
    """Finite measures as floats (a reject row's ``measurements`` map)."""
    return {k: float(v) for k, v in measures.items() if v is not None and np.isfinite(float(v))}
