"""Per-pair QA: what each pair really shows, measured on every pair, gated by configuration.

The manifest columns (a contract, see docs/fidelity.md for definitions and costs):

=====================  ========  =========================================================
column                 per       what it measures
=====================  ========  =========================================================
``align_err_px``       view      p99 misalignment of the view against its base, in base pixels
``realized_ratio``     edit      re-found (tracked) / planned motion of the moving landmarks
``collateral_ratio``   edit      largest held-landmark / largest target motion (field-carried)
``fold_count``         edit      roi pixels where the applied field folds
``min_jacobian``       edit      smallest Jacobian determinant of the applied field
``max_jacobian``       edit      largest Jacobian determinant of the applied field
``outside_change``     view      mean |after - before| outside the mask / JPEG noise there
``detail_ratio``       edit      Laplacian energy after / before on moved, unstretched pixels
``identity_sim``       edit      cosine of face embeddings of before and after
=====================  ========  =========================================================

"Per edit" values are measured once in the base frame and shared by the edit's views
(the views are affine copies of one before/after); "per face" work (embedding ``before``)
is done once by :meth:`FidelityModels.face_reference`. NaN means "not measurable" (e.g. no
landmark re-found) and fails no gate.

Frames: the *base frame* is the photo frame the edit is pasted in; landmarks are
(478, 2) float64 pixel (x, y) there; images RGB uint8; masks uint8 (> 0 inside).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from detectors.face_mesh import FaceMeshDetector
from detectors.gates import inter_ocular
from detectors.geometry import Roi
from detectors.identity import DlibEmbedder, OnnxEmbedder, identity_similarity
from detectors.records import ModelId
from pipeline.fidelity_geometry import align_err_px, collateral_ratio, follow_landmarks, motion_gain, track_points
from pipeline.fidelity_pixels import codec_noise, outside_change, roi_in_view
from warps import catalog
from warps.catalog import CATALOG, FEATURE_GROUPS, moving_indices
from warps.field import WarpField
from warps.measure import detail_ratio

#: The QA columns of the pairs manifest, in schema order.
QA_COLUMNS: tuple[str, ...] = (
    "align_err_px", "realized_ratio", "collateral_ratio", "fold_count", "min_jacobian", "max_jacobian",
    "outside_change", "detail_ratio", "identity_sim",
)  # fmt: skip
#: Percentiles reported by :func:`qa_percentiles`.
PERCENTILES: tuple[int, ...] = (1, 5, 25, 50, 75, 95, 99)
_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: Side of the square FaceMesh re-detection window, in face-landmark extents (FaceMesh's own
#: ROI is 1.5 x the face detector's box, which is smaller than the mesh's extent).
MESH_WINDOW_SCALE = 1.25


def moving_landmarks(op_names: Sequence[str]) -> np.ndarray:
    """Sorted FaceMesh indices that the named face ops move (their anchors' moving set)."""
    moving: set[int] = set()
    for name in op_names:
        spec = CATALOG[name]
        if spec.reads != "face478":
            raise ValueError(f"op {name} moves pose points, not face landmarks")
        moving.update(moving_indices(spec.motion))
    return np.array(sorted(moving), np.intp)


def allowed_groups(op_names: Sequence[str]) -> frozenset[str]:
    """The FEATURE_GROUPS the ops may move: the union of their catalog ``moves``."""
    return frozenset(group for name in op_names for group in CATALOG[name].moves)


@dataclass(frozen=True, eq=False)
class FaceReference:
    """Per-face work shared by all edits of one face in one base frame.

    ``landmarks`` (478, 2) as the edits were planned from; ``window`` the upright square
    region FaceMesh re-detects in (``detectors.geometry.Roi``); ``mesh`` (478, 2) FaceMesh
    re-detected in ``before`` there, or None; ``embedding`` (D,) float32 of ``before``.
    """

    landmarks: np.ndarray
    window: Roi
    mesh: np.ndarray | None
    embedding: np.ndarray


@dataclass(frozen=True)
class EditGeometry:
    """Per-edit measures that need no model (:func:`edit_geometry`); ``codec_noise``: JPEG
    noise of ``before`` around the edit (base frame), the divisor of every view's
    ``outside_change``."""

    collateral_ratio: float
    fold_count: int
    min_jacobian: float
    max_jacobian: float
    detail_ratio: float
    codec_noise: float


@dataclass(frozen=True)
class FaceMeasures:
    """Per-edit measures from the models (:meth:`FidelityModels.face_measures`).

    ``realized_ratio``: the moving landmarks re-found in ``after`` by
    :func:`~pipeline.fidelity_geometry.follow_landmarks`. Diagnostics (NaN unless asked for):
    ``collateral_ratio_detected`` and ``realized_ratio_mesh``, the same ratios on FaceMesh
    re-detected landmarks (FaceMesh's face-shape prior holds local edits back), and
    ``realized_ratio_flow``, the landmarks carried by dense DIS flow.
    """

    realized_ratio: float
    identity_sim: float
    collateral_ratio_detected: float
    realized_ratio_mesh: float
    realized_ratio_flow: float


@dataclass(frozen=True)
class EditQA:
    """All per-edit measurements: :class:`EditGeometry` and :class:`FaceMeasures` together."""

    realized_ratio: float
    collateral_ratio: float
    fold_count: int
    min_jacobian: float
    max_jacobian: float
    detail_ratio: float
    identity_sim: float
    collateral_ratio_detected: float
    realized_ratio_mesh: float
    realized_ratio_flow: float
    codec_noise: float


@dataclass(frozen=True)
class ViewQA:
    """Per-view measurements."""

    align_err_px: float
    outside_change: float


class FidelityModels:
    """A face embedder and, for the diagnostic measures, FaceMesh, loaded once per worker.

    ``load()`` pins OpenCV to one thread (determinism; one core per Ray worker). The
    default embedder is :class:`DlibEmbedder`; pass an :class:`OnnxEmbedder` for an
    ArcFace model file. ``diagnostics=False`` (the build) leaves FaceMesh out: only the
    diagnostic measures use it.
    """

    def __init__(self, embedder: DlibEmbedder | OnnxEmbedder | None = None, *, diagnostics: bool = True) -> None:
        self.mesh = FaceMeshDetector(refine_landmarks=True) if diagnostics else None
        self.embedder = embedder or DlibEmbedder()
        self._loaded = False

    @property
    def models(self) -> tuple[ModelId, ...]:
        """Every model file used (FaceMesh when loaded, then the embedder), with sha256."""
        return (self.mesh.models if self.mesh else ()) + self.embedder.models

    @property
    def identity_model(self) -> dict[str, str]:
        """``{"name", "sha256"}`` of the embedding model behind ``identity_sim``."""
        last = self.embedder.models[-1]
        return {"name": last.name, "sha256": last.sha256}

    def load(self) -> None:
        cv2.setNumThreads(1)
        if self.mesh:
            self.mesh.load()
        self.embedder.load()
        self._loaded = True

    def close(self) -> None:
        if self.mesh:
            self.mesh.close()
        self.embedder.close()
        self._loaded = False

    def __enter__(self) -> FidelityModels:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def face_reference(self, before: np.ndarray, landmarks: np.ndarray) -> FaceReference:
        """Embed (and with FaceMesh loaded, re-detect) the face at ``landmarks`` (478, 2) in
        ``before`` (h, w, 3)."""
        self._check_loaded()
        landmarks = np.asarray(landmarks, np.float64)[:, :2]
        window = face_window(landmarks)
        mesh = self._redetect(before, window) if self.mesh else None
        return FaceReference(landmarks, window, mesh, self.embedder.embed(before, landmarks))

    def measure_edit(
        self,
        reference: FaceReference,
        before: np.ndarray,
        after: np.ndarray,
        field: WarpField,
        region: np.ndarray,
        op_names: Sequence[str],
        *,
        groups: Mapping[str, Sequence[int]] = FEATURE_GROUPS,
        allowed: frozenset[str] | None = None,
        jpeg_quality: int = 95,
        diagnostics: bool = True,
    ) -> EditQA:
        """Per-edit QA of ``after = field.apply(before)`` with edit mask ``region`` (h, w)
        (all base frame) for the ops ``op_names``: :func:`edit_geometry` on the reference's
        landmarks, then :meth:`face_measures`.

        ``allowed``: the groups the ops may move (default :func:`allowed_groups`). Body ops
        move no face landmark: they are left out of ``realized_ratio`` and
        ``collateral_ratio`` (NaN when no face op remains). ``diagnostics=False`` (the build)
        skips the diagnostic measures (NaN), which the build does not store.
        """
        geometry, carried = edit_geometry(reference.landmarks, before, after, field, region, op_names,
                                          groups=groups, allowed=allowed, jpeg_quality=jpeg_quality)  # fmt: skip
        face = self.face_measures(reference, before, after, field, op_names, carried,
                                  groups=groups, allowed=allowed, diagnostics=diagnostics)  # fmt: skip
        return EditQA(**asdict(geometry), **asdict(face))

    def face_measures(
        self,
        reference: FaceReference,
        before: np.ndarray,
        after: np.ndarray,
        field: WarpField,
        op_names: Sequence[str],
        carried: np.ndarray | None,
        *,
        groups: Mapping[str, Sequence[int]] = FEATURE_GROUPS,
        allowed: frozenset[str] | None = None,
        diagnostics: bool = True,
    ) -> FaceMeasures:
        """The per-edit measures that read ``after`` around the face (the moving landmarks
        re-found there, its identity embedding; with ``diagnostics``, FaceMesh re-detected on
        it and DIS flow): the costly part of QA. ``carried``: the reference landmarks carried
        by ``field`` (:func:`edit_geometry`), None when the map folds."""
        self._check_loaded()
        if diagnostics and not self.mesh:
            raise ValueError("diagnostics need FaceMesh: make FidelityModels(diagnostics=True)")
        lms = reference.landmarks
        face_ops = [name for name in op_names if CATALOG[name].reads == "face478"]
        allowed = allowed_groups(face_ops) if allowed is None else allowed
        moving = moving_landmarks(face_ops)
        nan = float("nan")
        planned = None if carried is None else carried[moving] - lms[moving]
        measurable = planned is not None and len(moving) > 0 and not field.is_identity
        realized = nan
        if measurable:
            found = follow_landmarks(before, after, lms[moving], inter_ocular(lms))
            realized = motion_gain(planned, found - lms[moving])
        mesh_realized = collateral_detected = flow_realized = nan
        if diagnostics:
            mesh_after = self._redetect(after, reference.window)
            if reference.mesh is not None and mesh_after is not None:
                collateral_detected = collateral_ratio(reference.mesh, mesh_after, groups, allowed, target=moving)
                if measurable:
                    mesh_realized = motion_gain(planned, mesh_after[moving] - reference.mesh[moving])
            if measurable:
                flow_realized = motion_gain(planned, track_points(before, after, lms[moving]) - lms[moving])
        return FaceMeasures(
            realized_ratio=realized,
            identity_sim=identity_similarity(reference.embedding, self.embedder.embed(after, lms)),
            collateral_ratio_detected=collateral_detected,
            realized_ratio_mesh=mesh_realized,
            realized_ratio_flow=flow_realized,
        )

    def _redetect(self, rgb: np.ndarray, window: Roi) -> np.ndarray | None:
        if self.mesh is None:
            raise RuntimeError("FaceMesh is not loaded (FidelityModels(diagnostics=False))")
        found = self.mesh.detect(rgb, window)
        return None if found is None else found[:, :2]

    def _check_loaded(self) -> None:
        if not self._loaded:
            raise RuntimeError("FidelityModels used before load()")


def face_window(landmarks: np.ndarray) -> Roi:
    """The upright square FaceMesh re-detects in: centred on the landmarks' bounding box, side
    :data:`MESH_WINDOW_SCALE` times their larger extent, turned by the eye line."""
    (x0, y0), (x1, y1) = landmarks.min(axis=0), landmarks.max(axis=0)
    right = landmarks[list(catalog.RIGHT_EYE)].mean(axis=0)
    left = landmarks[list(catalog.LEFT_EYE)].mean(axis=0)
    dx, dy = float(left[0] - right[0]), float(left[1] - right[1])
    rotation = -float(np.arctan2(-dy, dx))
    return Roi(float(0.5 * (x0 + x1)), float(0.5 * (y0 + y1)), float(MESH_WINDOW_SCALE * max(x1 - x0, y1 - y0)), rotation)


def edit_geometry(
    landmarks: np.ndarray | None,
    before: np.ndarray,
    after: np.ndarray,
    field: WarpField,
    region: np.ndarray,
    op_names: Sequence[str],
    *,
    groups: Mapping[str, Sequence[int]] = FEATURE_GROUPS,
    allowed: frozenset[str] | None = None,
    jpeg_quality: int = 95,
) -> tuple[EditGeometry, np.ndarray | None]:
    """The per-edit measures that need no model (cheap): folds and Jacobian range, collateral
    on the field-carried ``landmarks`` (478, 2) (NaN without a face or a face op), detail
    and codec noise. Also returns the carried landmarks (None without a face, or when the map
    folds), which :meth:`FidelityModels.face_measures` reuses."""
    summary = field.jacobian
    carried = None
    collateral = float("nan")
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64)[:, :2]
        face_ops = [name for name in op_names if CATALOG[name].reads == "face478"]
        allowed = allowed_groups(face_ops) if allowed is None else allowed
        try:
            carried = field.forward_points(landmarks)
        except RuntimeError:  # the map folds: no carried landmarks
            carried = None
        if carried is not None:
            collateral = collateral_ratio(landmarks, carried, groups, allowed, target=moving_landmarks(face_ops))
    geometry = EditGeometry(
        collateral_ratio=collateral,
        fold_count=summary.fold_count,
        min_jacobian=summary.min_jacobian,
        max_jacobian=summary.max_jacobian,
        detail_ratio=detail_ratio(before, after, field).ratio,
        codec_noise=codec_noise(before, region, roi_in_view(field.roi, _IDENTITY), quality=jpeg_quality),
    )
    return geometry, carried


def measure_view(
    base_before: np.ndarray,
    base_after: np.ndarray,
    region: np.ndarray,
    roi: tuple[int, int, int, int],
    view_before: np.ndarray,
    view_after: np.ndarray,
    view_mask: np.ndarray,
    matrix: np.ndarray,
    *,
    codec_noise: float | None = None,
    jpeg_quality: int = 95,
    flow: cv2.DISOpticalFlow | None = None,
) -> ViewQA:
    """Per-view QA. ``base_*`` (h, w, 3), ``region`` (h, w) the edit mask and ``roi`` the
    applied field's box, all base frame; ``view_*`` the pair as written (before the
    encode); ``matrix`` (2, 3) the view's recorded base -> view transform.
    ``codec_noise``: the edit's :attr:`EditQA.codec_noise` (default: measured on this
    view, a JPEG round trip per view)."""
    quad = roi_in_view(roi, matrix)
    return ViewQA(
        align_err_px=align_err_px(base_before, base_after, view_before, view_after, matrix, region, within=roi,
                                  flow=flow),  # fmt: skip
        outside_change=outside_change(view_before, view_after, view_mask, quad, quality=jpeg_quality,
                                      noise=codec_noise),  # fmt: skip
    )


# --- Gates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class QaGates:
    """Thresholds on the QA columns; ``None`` switches a gate off. A failing gate makes the
    pair a reject row (reason = the gate's code) that still carries its measurements.

    ``realized_ratio`` is gated only for edits whose largest |strength| is at least
    ``realized_min_strength`` (smaller motions are within detector noise).
    """

    max_align_err_px: float | None = 0.5
    max_fold_count: int | None = 0
    min_jacobian: float | None = None
    max_jacobian: float | None = None
    max_collateral_ratio: float | None = 0.2
    realized_ratio_range: tuple[float, float] | None = None
    realized_min_strength: int = 50
    max_outside_change: float | None = 1.5
    min_detail_ratio: float | None = 0.95
    min_identity_sim: float | None = 0.92

    def __post_init__(self) -> None:
        if self.realized_ratio_range is not None:
            lo, hi = self.realized_ratio_range
            if not lo < hi:
                raise ValueError(f"realized_ratio_range needs low < high, got {self.realized_ratio_range}")
            object.__setattr__(self, "realized_ratio_range", (float(lo), float(hi)))
        if not 0 <= self.realized_min_strength <= 100:
            raise ValueError(f"realized_min_strength must be in [0, 100], got {self.realized_min_strength}")


#: Reason codes of the QA gates, in the order :func:`failing_gates` reports them.
GATE_CODES: tuple[str, ...] = (
    "qa_align_err", "qa_folds", "qa_min_jacobian", "qa_max_jacobian", "qa_collateral", "qa_realized",
    "qa_outside_change", "qa_detail", "qa_identity",
)  # fmt: skip


def failing_gates(measures: Mapping[str, Any], gates: QaGates, *, max_abs_strength: int) -> list[str]:
    """Reason codes (subset of :data:`GATE_CODES`, in its order) of the gates ``measures`` fail.

    ``measures`` maps QA column names to values (missing, None or NaN: not measured, passes);
    ``max_abs_strength`` is the largest |applied strength| of the edit's ops.
    """

    def value(column: str) -> float | None:
        v = measures.get(column)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    def above(column: str, limit: float | None) -> bool:
        v = value(column)
        return limit is not None and v is not None and v > limit

    def below(column: str, limit: float | None) -> bool:
        v = value(column)
        return limit is not None and v is not None and v < limit

    realized = value("realized_ratio")
    span = gates.realized_ratio_range
    checks = {
        "qa_align_err": above("align_err_px", gates.max_align_err_px),
        "qa_folds": above("fold_count", gates.max_fold_count),
        "qa_min_jacobian": below("min_jacobian", gates.min_jacobian),
        "qa_max_jacobian": above("max_jacobian", gates.max_jacobian),
        "qa_collateral": above("collateral_ratio", gates.max_collateral_ratio),
        "qa_realized": span is not None and realized is not None and max_abs_strength >= gates.realized_min_strength
        and not span[0] <= realized <= span[1],
        "qa_outside_change": above("outside_change", gates.max_outside_change),
        "qa_detail": below("detail_ratio", gates.min_detail_ratio),
        "qa_identity": below("identity_sim", gates.min_identity_sim),
    }
    return [code for code in GATE_CODES if checks[code]]


def qa_row(edit: EditQA, view: ViewQA) -> dict[str, float | int]:
    """The contract columns of one pair, in :data:`QA_COLUMNS` order."""
    values = {**asdict(edit), **asdict(view)}
    return {column: values[column] for column in QA_COLUMNS}


# --- Statistics ------------------------------------------------------------------------------
def qa_percentiles(data: Any, columns: Sequence[str] = QA_COLUMNS) -> dict[str, dict[str, float | int | None]]:
    """Percentiles (p1 ... p99), mean, ``count`` (finite values) and ``missing`` (null or NaN)
    of each numeric QA column present in ``data`` (a pyarrow Table or a pandas DataFrame).

    Percentiles use numpy's default (linear) interpolation; a column with no finite value
    has None statistics.
    """
    present = [c for c in columns if c in _column_names(data)]
    out: dict[str, dict[str, float | int | None]] = {}
    for column in present:
        values = _as_float_array(data, column)
        finite = values[np.isfinite(values)]
        stats: dict[str, float | int | None] = {"count": int(finite.size), "missing": int(values.size - finite.size)}
        quantiles = np.percentile(finite, PERCENTILES) if finite.size else [None] * len(PERCENTILES)
        stats.update({f"p{p}": None if q is None else float(q) for p, q in zip(PERCENTILES, quantiles)})
        stats["mean"] = float(finite.mean()) if finite.size else None
        out[column] = stats
    return out


def _column_names(data: Any) -> list[str]:
    names = getattr(data, "column_names", None)
    return list(names) if names is not None else [str(c) for c in data.columns]


def _as_float_array(data: Any, column: str) -> np.ndarray:
    """Column values as float64; nulls become NaN."""
    col = data.column(column) if hasattr(data, "column_names") else data[column]
    if hasattr(col, "to_numpy") and hasattr(col, "null_count"):  # pyarrow (Chunked)Array
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(col.astype("float64").to_numpy(na_value=np.nan))
