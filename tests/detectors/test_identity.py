"""Identity embeddings on real photos: same person above different people, edits barely lower it."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.dlib_resnet import build_onnx
from detectors.identity import (
    DLIB_RESNET,
    DLIB_SHAPE_PREDICTOR,
    DlibEmbedder,
    OnnxEmbedder,
    dlib_box,
    dlib_model_dir,
    identity_similarity,
)
from detectors.portrait import PortraitDetector
from pipeline.alignment import align_face
from pipeline.imageio import load_image
from pipeline.sample_corpus import sample_paths
from pipeline.framing import photo_frame
from warps.augment import transform_points
from warps.catalog import ops_for_subset
from warps.chain import OpCall, plan_chain
from warps.landmarks import Landmarks

SAMPLES = {photo.name: photo.path for photo in sample_paths()}
GRACE, ZIDANE = SAMPLES["grace_hopper"], SAMPLES["zidane"]
HANKS = Path(importlib.util.find_spec("insightface").origin).parent / "data" / "images" / "Tom_Hanks_54745.png"
#: Chains of strong ops (the strongest edits the simulated subset makes).
STRONG_CHAINS = (
    (OpCall("mouth_vertical", 100), OpCall("eye_size", -100), OpCall("nose_length", -100)),
    (OpCall("lip_thickness", 100), OpCall("nasal_alae", 100), OpCall("eye_distance", -100)),
    (OpCall("mouth_width", -100), OpCall("nose_bridge_width", 100), OpCall("eye_size", 100)),
)


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    loaded = DlibEmbedder()
    loaded.load()
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def people(detector: PortraitDetector, astronaut: np.ndarray, group: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (photo, (478, 2) landmarks) for every face found in 5 photos of 10 different people."""
    hanks = load_image(HANKS)  # a 112 px crop: give FaceMesh some room around it
    hanks = cv2.copyMakeBorder(cv2.resize(hanks, (336, 336), interpolation=cv2.INTER_CUBIC), 150, 150, 150, 150,
                               cv2.BORDER_CONSTANT, value=(128, 128, 128))  # fmt: skip
    found = {}
    for name, photo in (("astronaut", astronaut), ("grace", load_image(GRACE)), ("zidane", load_image(ZIDANE)),
                        ("t1", group), ("hanks", hanks)):  # fmt: skip
        for index, face in enumerate(detector.detect(photo).faces):
            found[f"{name}{index}"] = (photo, face.landmarks[:, :2])
    return found


@pytest.fixture(scope="module")
def different(embedder: DlibEmbedder, people: dict) -> list[float]:
    """Scores of every pair of different people."""
    vectors = [embedder.embed(photo, face) for photo, face in people.values()]
    return [identity_similarity(a, b) for i, a in enumerate(vectors) for b in vectors[i + 1 :]]


def test_model_files_are_found_without_importing_their_package_and_named_by_sha256(embedder: DlibEmbedder) -> None:
    assert "face_recognition_models" not in sys.modules
    names = [m.name for m in embedder.models]
    assert names == ["shape_predictor_5_face_landmarks", "dlib_face_recognition_resnet_model_v1"]
    for model in embedder.models:
        assert Path(model.path).parent == dlib_model_dir().resolve()
        assert model.sha256 == hashlib.sha256(Path(model.path).read_bytes()).hexdigest()


def test_embedding_is_dlibs_own_descriptor(embedder: DlibEmbedder, people: dict) -> None:
    """The ResNet read from dlib's file and run in ONNX Runtime gives dlib's own vector, face by face."""
    import dlib

    folder = dlib_model_dir()
    predictor = dlib.shape_predictor(str(folder / DLIB_SHAPE_PREDICTOR))
    resnet = dlib.face_recognition_model_v1(str(folder / DLIB_RESNET))
    for photo, face in people.values():
        shape = predictor(photo, dlib.rectangle(*dlib_box(face)))
        expected = np.array(resnet.compute_face_descriptor(photo, shape))
        expected /= np.linalg.norm(expected)
        np.testing.assert_allclose(embedder.embed(photo, face), expected, atol=2e-6)


def test_a_file_that_is_not_the_resnet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="found 0 convolutions"):
        build_onnx(dlib_model_dir() / DLIB_SHAPE_PREDICTOR)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes((dlib_model_dir() / DLIB_RESNET).read_bytes()[: 10**6])
    with pytest.raises(ValueError, match="truncated file"):
        build_onnx(truncated)


def test_same_person_scores_clearly_above_different_people(embedder: DlibEmbedder, people: dict, different: list) -> None:
    assert len(people) >= 10
    same = []
    for name in ("astronaut0", "grace0", "hanks0"):
        photo, face = people[name]
        reference = embedder.embed(photo, face)
        h, w = photo.shape[:2]
        centre = tuple(float(v) for v in face.mean(axis=0))
        variants = (
            np.float64([[-1, 0, w - 1], [0, 1, 0]]),  # mirrored
            np.float64([[0.5, 0, -0.25], [0, 0.5, -0.25]]),  # half size
            np.float64([[1.5, 0, 0.25], [0, 1.5, 0.25]]),  # 1.5x
            cv2.getRotationMatrix2D(centre, 10.0, 1.0),  # turned 10 degrees
            np.float64([[1, 0, -w * 0.2], [0, 1, -h * 0.1]]),  # recropped
        )
        for matrix in variants:
            out = cv2.warpAffine(photo, matrix, (round(w * max(1.0, matrix[0, 0])), round(h * max(1.0, matrix[1, 1]))),
                                 flags=cv2.INTER_AREA if matrix[0, 0] < 1 else cv2.INTER_LINEAR)  # fmt: skip
            same.append(identity_similarity(reference, embedder.embed(out, transform_points(matrix, face))))
    assert min(same) > 0.97
    assert max(different) < 0.93
    assert min(same) > max(different) + 0.04


def test_strong_edits_lower_the_score_only_a_little(embedder: DlibEmbedder, people: dict, different: list) -> None:
    level = max(different)
    edited = []
    for name in ("astronaut0", "grace0"):
        photo, face = people[name]
        base = photo_frame(photo, 1024)
        landmarks = base.from_photo(face)
        alignment = align_face(landmarks, 1024)  # plan in the 1024^2 crop frame, as the build does
        crop_landmarks = Landmarks(face=alignment.to_crop(landmarks))
        reference = embedder.embed(base.image, landmarks)
        chains = [(OpCall(spec.name, s),) for spec in ops_for_subset("simulated") for s in (100, -100)]
        for calls in chains + list(STRONG_CHAINS):
            plan = plan_chain((1024, 1024), crop_landmarks, calls, window=True)
            after = plan.field.reframe(alignment.matrix, base.image.shape[:2]).apply(base.image)
            edited.append(identity_similarity(reference, embedder.embed(after, landmarks)))
    assert min(edited) > level
    assert np.median(edited) > 0.95


def _pooling_model(path: Path) -> None:
    """A stand-in ArcFace file: 112 px RGB -> 8 x 8 mean pooled chip (192 values)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14]),
         helper.make_node("Flatten", ["pooled"], ["embedding"])],  # fmt: skip
        "pool",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 192])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnx_embedder_aligns_the_face_from_our_landmarks(tmp_path: Path, people: dict) -> None:
    path = tmp_path / "arcface_standin.onnx"
    _pooling_model(path)
    embedder = OnnxEmbedder(path)
    embedder.load()
    assert [(m.name, m.sha256) for m in embedder.models] == [("arcface_standin", hashlib.sha256(path.read_bytes()).hexdigest())]
    photo, face = people["astronaut0"]
    chip = embedder.chip(photo, face)
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
    turned = cv2.getRotationMatrix2D(tuple(float(v) for v in face.mean(axis=0)), 20.0, 1.2)
    moved = cv2.warpAffine(photo, turned, photo.shape[1::-1])
    reference = embedder.embed(photo, face)
    # The chip is cut by the landmarks, so a turned and scaled photo gives the same chip.
    assert identity_similarity(reference, embedder.embed(moved, transform_points(turned, face))) > 0.97
    other_photo, other_face = people["grace0"]
    assert identity_similarity(reference, embedder.embed(other_photo, other_face)) < 0.9
    embedder.close()
    with pytest.raises(RuntimeError, match="before load"):
        embedder.embed(photo, face)
