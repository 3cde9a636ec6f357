"""`mirrorset bench fidelity`: the cost of each per-pair QA measurement against the cost of
making the pair, at the build's real sizes, in one run on one core.

Workload: the sample portraits astronaut and grace_hopper, each scaled (bicubic) so the
base frame is about 1024^2 (simulated pairs) and about 2.2 MP (professional-size pairs);
faces detected once (not timed); per photo ``--edits`` chains sampled as the build does
(``sample_chain`` with the build's seeds and strengths), planned in the 1024^2 crop frame
and pasted as the simulated recipe does (``plan_in_crop`` + ``paste``), ``--views`` views each.

Baseline, per pair (``pair_ms``): what making a pair cannot avoid once the edit exists:
``warpAffine`` of before, after and mask to the view (``apply_image`` x 2, ``apply_mask``),
two JPEG q95 4:4:4 encodes (``encode_jpeg``) and the PNG mask encode (``encode_map_png``).

QA, per call, as the build calls it (``FidelityModels(diagnostics=False)``): ``align_err_px``
and ``outside_change`` once per view; ``face_reference`` (embedding of ``before``) once per
face; per edit ``measure_edit`` in full and its parts (``jacobian``: fold count and extreme
determinants, ``collateral`` = ``forward_points`` of the 478 landmarks, ``follow`` =
``follow_landmarks`` (``realized_ratio``), ``detail_ratio``,
``embed`` = identity embedding of ``after``, ``codec_noise`` = JPEG round trip of ``before``
around the edit, the divisor of every view's ``outside_change``), and the diagnostics the build
skips (``redetect`` = FaceMesh on ``after``, ``flow_track`` = ``track_points``). ``qa_per_pair_ms``
amortises per-edit work over the views and per-face work over edits x views, as the build
would call them.
``qa_over_pair`` = qa_per_pair_ms / pair_ms. All times are medians over the calls (robust
to preemption on a shared machine), ``pair_ms`` too.

``--identity`` instead prints the identity_sim levels (dlib): different people (every pair
of faces found in astronaut, grace_hopper, zidane, bus, t1 and insightface's
Tom_Hanks_54745.png), the same person (astronaut, grace_hopper, zidane: mirrored, half and
1.5x size, turned 10 degrees, JPEG q50) and strong edits (each simulated op at +-100 and
three 3-op chains at +-100, planned in the 1024^2 crop frame and pasted as the build does).
``--realized`` instead prints ``realized_ratio`` per simulated op at +100 and -100 as four
readers see it, on every face of astronaut, grace_hopper, zidane and t1 with an inter-ocular
distance of at least 40 px, each photo scaled (bicubic / area) so that face's is
``REALIZED_IOD_PX`` (the simulated framing draws 100-200), the op planned in the 1024^2 crop
frame and pasted as the build does: ``follow_landmarks`` (the contract column: each moving
landmark re-found by Lucas-Kanade tracking at a fixed face scale), FaceMesh re-detection
(``realized_ratio_mesh``), dlib's 68-point shape predictor (``face-recognition-models``; an
independent detector, placed in the same dlib box as the identity embedder; planned motion =
its ``before`` points carried by the field) and DIS flow tracking (``realized_ratio_flow``:
dense image evidence).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any, Callable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

PHOTOS = ("astronaut", "grace_hopper")
REALIZED_PHOTOS = ("astronaut", "grace_hopper", "zidane", "t1")
#: Inter-ocular distance (px) of the face each photo is scaled to for ``--realized``.
REALIZED_IOD_PX = 120.0
DLIB_68 = "shape_predictor_68_face_landmarks.dat"
#: Base-frame pixel counts of the two pair sizes.
SIZES = {"1024": 1024 * 1024, "2.2MP": 2_200_000}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--edits", type=int, default=3, help="chains per photo")
    parser.add_argument("--views", type=int, default=8, help="views per edit")
    parser.add_argument("--identity", action="store_true", help="measure identity_sim levels instead of costs")
    parser.add_argument("--realized", action="store_true", help="realized_ratio per op by three readers instead of costs")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")


def run(args: argparse.Namespace) -> int:
    if args.identity:
        levels = identity_levels()
        if not args.json:
            for name, values in levels.items():
                print(f"{name}: n {values['n']}, min {values['min']:.3f}, median {values['median']:.3f}, "
                      f"max {values['max']:.3f}")  # fmt: skip
        print(json.dumps(levels, sort_keys=True))
        return 0
    if args.realized:
        readers = realized_by_reader()
        if not args.json:
            for reader, per_op in readers.items():
                print(f"{reader}: " + ", ".join(f"{op} {value:.2f}" for op, value in per_op.items()))
        print(json.dumps(readers, sort_keys=True))
        return 0
    result = measure(edits=args.edits, views=args.views)
    if not args.json:
        for size, r in result["sizes"].items():
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r["qa_ms"].items())
            print(f"{size}: pair {r['pair_ms']:.1f} ms; QA {r['qa_per_pair_ms']:.1f} ms per pair "
                  f"({100 * r['qa_over_pair']:.0f}% of the pair); per call ms: {parts}")  # fmt: skip
    print(json.dumps(result, sort_keys=True))
    return 0


def measure(*, edits: int, views: int) -> dict[str, Any]:
    from detectors.face_mesh import FaceMeshDetector
    from detectors.portrait import PortraitDetector
    from pipeline.fidelity import FidelityModels

    cv2.setNumThreads(1)
    photos = _photos()
    out: dict[str, Any] = {"edits_per_photo": edits, "views": views, "photos": list(PHOTOS), "sizes": {}}
    mesh = FaceMeshDetector(refine_landmarks=True)  # for the diagnostic ``redetect`` only
    mesh.load()
    try:
        with PortraitDetector() as detector, FidelityModels(diagnostics=False) as models:  # as the build
            for size, pixels in SIZES.items():
                scenes = [_scene(photo, pixels, detector) for photo in photos]
                out["sizes"][size] = _measure_size(scenes, models, mesh, edits, views)
    finally:
        mesh.close()
    out["measured"] = ("one core, medians; pair = warpAffine x3 + 2 JPEG q95 4:4:4 + PNG mask at the view size; "
                       "QA per call, amortised per pair (per edit / views, per face / (edits x views))")  # fmt: skip
    return out


def identity_levels() -> dict[str, dict[str, float]]:
    """identity_sim of different people, of the same person and of strong edits (see the module docstring)."""
    import importlib.util
    from pathlib import Path

    from detectors.identity import DlibEmbedder, identity_similarity
    from detectors.portrait import PortraitDetector
    from pipeline.imageio import load_image
    from pipeline.sample_corpus import sample_paths
    from pipeline.recipes import EditRejected
    from warps.augment import transform_points
    from warps.catalog import ops_for_subset
    from warps.chain import OpCall

    paths = {p.name: p.path for p in sample_paths()}
    hanks = load_image(Path(importlib.util.find_spec("insightface").origin).parent / "data/images/Tom_Hanks_54745.png")
    photos = {name: load_image(paths[name]) for name in ("astronaut", "grace_hopper", "zidane", "bus", "t1")}
    photos["hanks"] = cv2.copyMakeBorder(cv2.resize(hanks, (336, 336), interpolation=cv2.INTER_CUBIC),
                                         150, 150, 150, 150, cv2.BORDER_CONSTANT, value=(128, 128, 128))  # fmt: skip
    embedder = DlibEmbedder()
    embedder.load()
    with PortraitDetector() as detector:
        faces = [(photo, f.landmarks[:, :2], name) for name, photo in photos.items()
                 for f in detector.detect(photo).faces]  # fmt: skip
    vectors = [embedder.embed(photo, face) for photo, face, _ in faces]
    different = [identity_similarity(a, b) for i, a in enumerate(vectors) for b in vectors[i + 1 :]]
    same, edited = [], []
    names = [spec.name for spec in ops_for_subset("simulated")]
    chains = [[OpCall(n, s)] for n in names for s in (100, -100)] + [
        [OpCall(names[i], 100), OpCall(names[(i + 3) % 8], -100), OpCall(names[(i + 5) % 8], 100)] for i in range(3)
    ]
    for (photo, face, name), vector in zip(faces, vectors):
        if name not in ("astronaut", "grace_hopper", "zidane"):
            continue
        h, w = photo.shape[:2]
        centre = tuple(float(v) for v in face.mean(axis=0))
        for matrix, size in ((np.float64([[-1, 0, w - 1], [0, 1, 0]]), (w, h)),
                             (np.float64([[0.5, 0, -0.25], [0, 0.5, -0.25]]), (w // 2, h // 2)),
                             (np.float64([[1.5, 0, 0.25], [0, 1.5, 0.25]]), (w * 3 // 2, h * 3 // 2)),
                             (cv2.getRotationMatrix2D(centre, 10.0, 1.0), (w, h))):  # fmt: skip
            moved = cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_AREA if matrix[0, 0] == 0.5 else cv2.INTER_LINEAR)
            same.append(identity_similarity(vector, embedder.embed(moved, transform_points(matrix, face))))
        q50 = cv2.imdecode(cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 50])[1], cv2.IMREAD_UNCHANGED)
        same.append(identity_similarity(vector, embedder.embed(q50, face)))
        scene = _scene_at(photo, face)
        for calls in chains:
            try:
                after = _pasted(scene, calls)
            except EditRejected:
                continue
            edited.append(identity_similarity(vector, embedder.embed(after, face)))
    embedder.close()
    return {name: {"n": len(v), "min": float(np.min(v)), "median": float(np.median(v)), "max": float(np.max(v))}
            for name, v in (("different_people", different), ("same_person", same), ("edited", edited))}  # fmt: skip


def realized_by_reader() -> dict[str, dict[str, float]]:
    """Median realized_ratio per op and ``all`` (every edit), per reader (module docstring)."""
    import dlib

    from detectors.identity import dlib_box, dlib_model_dir
    from detectors.portrait import PortraitDetector
    from pipeline.config import MirrorsetConfig
    from pipeline.fidelity import FidelityModels
    from pipeline.fidelity_geometry import motion_gain
    from pipeline.imageio import load_image
    from pipeline.recipes import EditRejected
    from pipeline.sample_corpus import sample_paths
    from warps.catalog import LEFT_EYE, RIGHT_EYE, ops_for_subset
    from warps.chain import OpCall

    cv2.setNumThreads(1)
    predictor = dlib.shape_predictor(str(dlib_model_dir() / DLIB_68))

    def points68(rgb: np.ndarray, face: np.ndarray) -> np.ndarray:
        shape = predictor(np.ascontiguousarray(rgb), dlib.rectangle(*dlib_box(face)))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)

    config = MirrorsetConfig()
    names = [spec.name for spec in ops_for_subset("simulated")]
    readers = ("follow", "facemesh", "dlib68", "flow")
    gains: dict[str, dict[str, list[float]]] = {r: {n: [] for n in names} for r in readers}
    paths = {p.name: p.path for p in sample_paths()}
    with PortraitDetector() as detector, FidelityModels() as models:
        for photo_name in REALIZED_PHOTOS:
            photo = load_image(paths[photo_name])
            for found in detector.detect(photo).faces:
                face = found.landmarks[:, :2]
                iod = float(np.hypot(*(face[list(LEFT_EYE)].mean(axis=0) - face[list(RIGHT_EYE)].mean(axis=0))))
                if iod < 40:
                    continue
                factor = REALIZED_IOD_PX / iod
                image = cv2.resize(photo, None, fx=factor, fy=factor,
                                   interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)  # fmt: skip
                face = (face + 0.5) * factor - 0.5  # pixel centres at integers in both images
                scene = _scene_at(image, face)
                reference = models.face_reference(image, face)
                before68 = points68(image, face)
                for name in names:
                    for strength in (100, -100):
                        try:
                            edit = _edit(scene, [OpCall(name, strength)], config)
                        except EditRejected:
                            continue
                        qa = models.measure_edit(reference, image, edit.after, edit.field, edit.mask, [name])
                        planned68 = edit.field.forward_points(before68) - before68
                        gains["follow"][name].append(qa.realized_ratio)
                        gains["facemesh"][name].append(qa.realized_ratio_mesh)
                        gains["flow"][name].append(qa.realized_ratio_flow)
                        gains["dlib68"][name].append(motion_gain(planned68, points68(edit.after, face) - before68))
    out = {}
    for reader, per_op in gains.items():
        medians = {name: float(np.nanmedian(values)) for name, values in per_op.items() if values}
        medians["all"] = float(np.nanmedian([v for values in per_op.values() for v in values]))
        out[reader] = medians
    return out


def _photos() -> list[np.ndarray]:
    from pipeline.imageio import load_image
    from pipeline.sample_corpus import sample_paths

    paths = {p.name: p.path for p in sample_paths()}
    return [load_image(paths[name]) for name in PHOTOS]


def _scene(photo: np.ndarray, pixels: int, detector: Any) -> dict[str, Any]:
    """The photo scaled (bicubic) to about ``pixels`` pixels, as a base frame with its first face."""
    h, w = photo.shape[:2]
    factor = (pixels / (h * w)) ** 0.5
    image = cv2.resize(photo, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_CUBIC)
    return _scene_at(image, detector.detect(image).faces[0].landmarks[:, :2])


def _scene_at(image: np.ndarray, face: np.ndarray) -> dict[str, Any]:
    """``image`` as the base frame, ``face`` (478, 2) in it, and the 1024^2 crop frame of that face."""
    from pipeline.alignment import align_face
    from warps.landmarks import Landmarks

    alignment = align_face(face, 1024)
    return {"image": image, "landmarks": face, "alignment": alignment,
            "crop_landmarks": Landmarks(face=alignment.to_crop(face))}  # fmt: skip


def _edit(scene: dict[str, Any], calls: list, config: Any) -> Any:
    """``calls`` planned in the crop frame and pasted into the scene as the simulated recipe
    does: an object with ``after``, ``mask`` (the region) and ``field``."""
    from types import SimpleNamespace

    from pipeline.recipes.common import paste
    from pipeline.recipes.simulated import plan_in_crop

    image = scene["image"]
    _, field, _ = plan_in_crop(scene["alignment"], scene["landmarks"], calls, config.simulated.warp, image.shape[:2])
    pasted = paste(image, field, [], config.simulated.warp)
    return SimpleNamespace(after=pasted.after, mask=pasted.region, field=field)


def _pasted(scene: dict[str, Any], calls: list) -> np.ndarray:
    """``after`` of ``calls`` planned in the crop frame and pasted into the scene."""
    from pipeline.config import MirrorsetConfig

    return _edit(scene, calls, MirrorsetConfig()).after


def _views(edit: Any, size: tuple[int, int], config: Any, seeds: list[int]) -> list:
    """The views the build would draw for ``edit`` (its region kept in view)."""
    from pipeline.recipes import EditRejected
    from warps.augment import AugmentError, sample_transform

    ys, xs = np.nonzero(edit.mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    try:
        return [sample_transform(np.random.Generator(np.random.PCG64(s)), size, config.simulated.augment, must_contain=box)
                for s in seeds]  # fmt: skip
    except AugmentError as exc:
        raise EditRejected(exc.code, exc.detail) from exc


def _measure_size(scenes: list[dict], models: Any, mesh: Any, edits: int, views: int) -> dict[str, Any]:
    from detectors.gates import inter_ocular
    from pipeline.config import MirrorsetConfig
    from pipeline.fidelity import allowed_groups, measure_view, moving_landmarks
    from pipeline.fidelity_geometry import align_err_px, collateral_ratio, follow_landmarks, track_points
    from pipeline.fidelity_pixels import codec_noise, outside_change, roi_in_view
    from warps.catalog import FEATURE_GROUPS
    from warps.field import WarpField
    from warps.measure import detail_ratio
    from pipeline.imageio import encode_jpeg, encode_map_png
    from pipeline.seeding import derive_seed
    from pipeline.recipes import EditRejected
    from warps.augment import apply_image, apply_mask
    from warps.chain import sample_chain

    config = MirrorsetConfig()
    sim = config.simulated
    times: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = fn()
        times.setdefault(name, []).append(1e3 * (time.perf_counter() - start))
        return value

    pixels = []
    for index, scene in enumerate(scenes):
        before = scene["image"]
        size = (before.shape[1], before.shape[0])
        reference = timed("face_reference", lambda: models.face_reference(before, scene["landmarks"]))
        for edit_index in range(edits):
            rng = np.random.Generator(np.random.PCG64(derive_seed(config.seed, "chain", index, edit_index)))
            calls = sample_chain(rng, "simulated", min_ops=sim.min_ops, max_ops=sim.max_ops,
                                 strengths=sim.strengths, reads=("face478",))  # fmt: skip
            try:
                edit = _edit(scene, calls, config)
                transforms = _views(edit, size, config, [derive_seed(config.seed, "view", index, edit_index, v)
                                                         for v in range(views)])  # fmt: skip
            except EditRejected:
                continue
            names = [c.name for c in calls]
            field, after, lms = edit.field, edit.after, scene["landmarks"]
            moving = moving_landmarks(names)
            qa = timed("measure_edit", lambda: models.measure_edit(reference, before, after, field, edit.mask, names,
                                                                   diagnostics=False))  # as the build calls it
            timed("jacobian", lambda: WarpField.jacobian.func(field))  # uncached: measure_edit filled the cache
            timed("collateral", lambda: collateral_ratio(lms, field.forward_points(lms), FEATURE_GROUPS,
                                                         allowed_groups(names), target=moving))  # fmt: skip
            timed("follow", lambda: follow_landmarks(before, after, lms[moving], inter_ocular(lms)))
            timed("redetect", lambda: mesh.detect(after, reference.window))
            timed("flow_track", lambda: track_points(before, after, lms[moving]))
            timed("detail_ratio", lambda: detail_ratio(before, after, field))
            timed("embed", lambda: models.embedder.embed(after, lms))
            timed("codec_noise", lambda: codec_noise(before, edit.mask, roi_in_view(field.roi, np.eye(2, 3))))
            for t in transforms:
                start = time.perf_counter()
                view_before, view_after = apply_image(t, before), apply_image(t, after)
                view_mask = apply_mask(t, edit.mask, binary=True)
                encode_jpeg(view_after, config.output.jpeg_quality)
                encode_jpeg(view_before, config.output.jpeg_quality)
                encode_map_png(view_mask)
                times.setdefault("pair", []).append(1e3 * (time.perf_counter() - start))
                pixels.append(t.size[0] * t.size[1])
                timed("align_err_px", lambda: align_err_px(before, after, view_before, view_after, t.matrix, edit.mask))
                timed("outside_change", lambda: outside_change(view_before, view_after, view_mask,
                                                               roi_in_view(field.roi, t.matrix), noise=qa.codec_noise))
                timed("measure_view", lambda: measure_view(before, after, edit.mask, field.roi, view_before, view_after,
                                                           view_mask, t.matrix, codec_noise=qa.codec_noise))
    typical = {name: statistics.median(values) for name, values in times.items()}
    pairs = len(times["pair"])
    per_pair = typical["measure_view"] + typical["measure_edit"] * len(times["measure_edit"]) / pairs \
        + typical["face_reference"] * len(times["face_reference"]) / pairs  # fmt: skip
    return {
        "pairs": pairs,
        "edits": len(times["measure_edit"]),
        "mean_view_pixels": float(np.mean(pixels)),
        "pair_ms": typical["pair"],
        "qa_ms": {name: value for name, value in sorted(typical.items()) if name != "pair"},
        "qa_per_pair_ms": per_pair,
        "qa_over_pair": per_pair / typical["pair"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
