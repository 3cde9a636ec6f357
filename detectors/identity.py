"""Face identity embeddings, offline: dlib's 128-d ResNet (default) or an ArcFace ONNX file.

Both embedders place the face from *our* FaceMesh landmarks (478 or 468 points, pixel
(x, y) in the image given), never from a face detector of their own, so an edited
``after`` is embedded at the same place as its ``before``. An embedding is a unit-length
float32 vector; :func:`identity_similarity` is the cosine of two of them (1 = same
vector; larger is more similar).

- :class:`DlibEmbedder`: ``dlib`` (from ``dlib-bin``) with the ``.dat`` files that the
  ``face-recognition-models`` distribution ships. The files are located with
  ``importlib.util.find_spec`` without importing that package (its ``__init__`` needs
  ``pkg_resources``). dlib's 5-point shape predictor is run in a box derived from the
  landmarks (placed like dlib's own frontal detector box), dlib cuts its 150 px aligned chip,
  and the ResNet's weights, read from the same ``.dat`` (:mod:`detectors.dlib_resnet`), embed
  it in ONNX Runtime: dlib's own vector to within 2e-6, about 10x faster than dlib's BLAS-less
  build (7 vs 74 ms on one core). Single-threaded.
- :class:`OnnxEmbedder`: an insightface-style ArcFace ONNX model from a configured path
  (never downloaded): 5 points from the mesh (eye centres, nose tip, mouth corners) are
  aligned to the ArcFace 112 px template, the chip is fed as RGB (x - 127.5) / 127.5 NCHW.

``models`` names every file used, with its sha256, for the pair record.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detectors.dlib_resnet import CHIP_SIZE, build_onnx, normalise
from detectors.geometry import check_rgb
from detectors.modelfiles import model_id
from detectors.records import ModelId
from warps.catalog import LEFT_EYE, RIGHT_EYE

#: Distribution (import name) that ships dlib's model files, and the files used.
DLIB_MODELS_PACKAGE = "face_recognition_models"
DLIB_SHAPE_PREDICTOR = "shape_predictor_5_face_landmarks.dat"
DLIB_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
#: dlib's chip for the ResNet: ``get_face_chip`` padding, as ``compute_face_descriptor`` uses.
CHIP_PADDING = 0.25
#: dlib's frontal detector box relative to the FaceMesh box (measured on astronaut,
#: grace_hopper and zidane): a square of this many mesh widths, centred horizontally,
#: its centre this fraction of the mesh height below the mesh top.
DLIB_BOX_WIDTHS = 1.05
DLIB_BOX_CENTRE_Y = 0.48
#: FaceMesh nose tip and mouth corners (subject's right = image left on a frontal face).
_NOSE_TIP, _MOUTH_RIGHT, _MOUTH_LEFT = 1, 61, 291
#: insightface's ArcFace template for a 112 x 112 chip, in the order of :func:`five_points`.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def identity_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (any length, same for both); in [-1, 1]."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings differ in length: {a.shape} vs {b.shape}")
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if not norm > 0:
        raise ValueError("cannot compare a zero embedding")
    return float(a @ b / norm)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) float64: image-left eye centre, image-right eye centre, nose tip, image-left and
    image-right mouth corner, from (>= 468, 2) FaceMesh points of an upright face."""
    pts = _mesh(landmarks)
    return np.stack([
        pts[list(RIGHT_EYE)].mean(axis=0), pts[list(LEFT_EYE)].mean(axis=0),
        pts[_NOSE_TIP], pts[_MOUTH_RIGHT], pts[_MOUTH_LEFT],
    ])  # fmt: skip


def dlib_box(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) ints of the dlib-detector-like square for a FaceMesh face."""
    pts = _mesh(landmarks)
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    half = 0.5 * DLIB_BOX_WIDTHS * (x1 - x0)
    cx, cy = 0.5 * (x0 + x1), y0 + DLIB_BOX_CENTRE_Y * (y1 - y0)
    return (round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def dlib_model_dir() -> Path:
    """The folder holding dlib's ``.dat`` files in the installed ``face-recognition-models``."""
    spec = importlib.util.find_spec(DLIB_MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {DLIB_MODELS_PACKAGE!r} is not installed (pip distribution 'face-recognition-models')"
        )
    for root in spec.submodule_search_locations:
        folder = Path(root) / "models"
        if (folder / DLIB_RESNET).is_file():
            return folder
    raise FileNotFoundError(f"{DLIB_RESNET} not found under {list(spec.submodule_search_locations)}")


class DlibEmbedder:
    """dlib's 128-d face embedding (see the module docstring); ``load()`` before ``embed``."""

    name = "dlib_resnet_v1"

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self.model_dir = None if model_dir is None else Path(model_dir)
        self._predictor = None
        self._resnet = None
        self._models: tuple[ModelId, ...] = ()

    @property
    def models(self) -> tuple[ModelId, ...]:
        return self._models

    def load(self) -> None:
        import dlib

        folder = self.model_dir or dlib_model_dir()
        self._models = (
            model_id(DLIB_SHAPE_PREDICTOR.removesuffix(".dat"), folder / DLIB_SHAPE_PREDICTOR),
            model_id(DLIB_RESNET.removesuffix(".dat"), folder / DLIB_RESNET),
        )
        self._predictor = dlib.shape_predictor(str(folder / DLIB_SHAPE_PREDICTOR))
        self._resnet = onnx_session(build_onnx(folder / DLIB_RESNET))

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(128,) float32 unit embedding of the face at ``landmarks`` (>= 468, 2) in ``rgb``."""
        import dlib

        check_rgb(rgb)
        if self._resnet is None:
            raise RuntimeError("DlibEmbedder.embed called before load()")
        rgb = np.ascontiguousarray(rgb)
        shape = self._predictor(rgb, dlib.rectangle(*dlib_box(landmarks)))
        chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        vector = np.asarray(self._resnet.run(None, {"chip": normalise(chip)})[0], np.float64).ravel()
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def close(self) -> None:
        self._predictor = None
        self._resnet = None


class OnnxEmbedder:
    """An ArcFace-style ONNX embedding from ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self._session = None
        self._input = ""
        self._models: tuple[ModelId, ...] = ()

    @property
    def models(self) -> tuple[ModelId, ...]:
        return self._models

    def load(self) -> None:
        self._models = (model_id(self.name, self.path),)
        self._session = onnx_session(self.path.read_bytes())
        self._input = self._session.get_inputs()[0].name

    def chip(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(112, 112, 3) uint8 RGB chip aligned to :data:`ARCFACE_TEMPLATE`."""
        check_rgb(rgb)
        matrix, _ = cv2.estimateAffinePartial2D(five_points(landmarks), ARCFACE_TEMPLATE, method=cv2.LMEDS)
        if matrix is None:
            raise ValueError("cannot align the face: degenerate landmarks")
        return cv2.warpAffine(rgb, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(D,) float32 unit embedding of the face at ``landmarks`` (>= 468, 2) in ``rgb``."""
        if self._session is None:
            raise RuntimeError("OnnxEmbedder.embed called before load()")
        chip = self.chip(rgb, landmarks).astype(np.float32)
        blob = ((chip - 127.5) / 127.5).transpose(2, 0, 1)[None]
        vector = np.asarray(self._session.run(None, {self._input: blob})[0], np.float64).ravel()
        norm = np.linalg.norm(vector)
        if not norm > 0:
            raise ValueError(f"model {self.name} returned a zero embedding")
        return (vector / norm).astype(np.float32)

    def close(self) -> None:
        self._session = None


def onnx_session(model: bytes) -> Any:
    """A single-threaded CPU ONNX Runtime session for a serialized model."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _mesh(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] < 2 or not np.isfinite(pts[:, :2]).all():
        raise ValueError(f"need finite (>= 468, 2) FaceMesh landmarks, got shape {pts.shape}")
    return pts[:, :2]
