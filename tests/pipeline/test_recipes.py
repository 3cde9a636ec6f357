"""Subset recipes on real photos: targets, framing, edits, determinism, exact reproducibility."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from detectors.gates import inter_ocular
from pipeline.alignment import align_face
from pipeline.config import MirrorsetConfig, with_overrides
from pipeline.framing import FramingRejected, crop_frame, face_frame, photo_frame
from pipeline.recipes import EditRejected, recipe_for
from pipeline.regions import region_counts, region_index, region_map
from pipeline.render import PairContext, max_displacement, render_view, sample_views, warp_view
from pipeline.seeding import derive_seed
from warps.augment import SpatialTransform, apply_image, transform_points
from warps.catalog import CATALOG
from warps.region import JPEG_BLOCK, view_mask
from warps.chain import OpCall, plan_chain
from warps.landmarks import Landmarks

CONFIG = with_overrides(MirrorsetConfig(), {"output.image_format": "png"})


def _edit(recipe, photo, detections, target, edit_index=0, attempt=0):
    seed = derive_seed(0, "edit", recipe.subset, "src", target.person_index, edit_index, attempt)
    return recipe.make_edit(photo, detections, target, edit_index, np.random.Generator(np.random.PCG64(seed)))


def _context(subset: str, target, edit_index: int = 0) -> PairContext:
    return PairContext(
        subset=subset, source_id="88431cd9653ccd53", path="p", photo_size=(512, 512), person_index=target.person_index,
        face_index=target.face_index, edit_index=edit_index, attempt=0, shard=f"{subset}-000000", split="train",
        global_seed=0, edit_seed=1, image_format="png", jpeg_quality=95, detector_models=(), versions={},
    )  # fmt: skip


def _decode(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_crop_frame_matrix_maps_pixels_exactly(detected: dict) -> None:
    photo = detected["astronaut"][0]
    frame = crop_frame(photo, (100, 50, 300, 250), (400, 400))  # 2x, Lanczos
    # A photo pixel centre lands where resize puts it: compare a smooth patch's centre of mass.
    assert frame.matrix[:, :2] == pytest.approx(np.diag([2.0, 2.0]))
    np.testing.assert_allclose(frame.from_photo(np.array([[100.0, 50.0]])), [[0.5, 0.5]])
    same = crop_frame(photo, (0, 0, 512, 512), (512, 512))
    np.testing.assert_array_equal(same.image, photo)
    assert photo_frame(photo, 256).image.shape == (256, 256, 3)


def test_face_frame_scales_the_face_to_the_target_iod(detected: dict) -> None:
    photo, detections, _ = detected["zidane"]
    face = detections.faces[detections.usable_faces()[0]].landmarks[:, :2]
    iod = inter_ocular(face)
    centre = tuple(face.mean(axis=0))
    frame = face_frame(photo, centre, iod, 120.0, frame_size=1024, iod_min=100.0, max_upscale=2.5)
    assert inter_ocular(frame.from_photo(face)) == pytest.approx(120.0, rel=0.01)
    assert max(frame.size) <= 1024
    with pytest.raises(FramingRejected, match="face_too_small_for_output"):
        face_frame(photo, centre, iod, 400.0, frame_size=1600, iod_min=300.0, max_upscale=2.5)


def test_simulated_targets_and_rejects_name_every_face(detected: dict) -> None:
    recipe = recipe_for("simulated", CONFIG)
    _, detections, source_id = detected["astronaut"]
    targets, rejects = recipe.targets(source_id, detections)
    assert [(t.person_index, t.face_index, t.edits) for t in targets] == [(0, 0, 2 + 4)] and not rejects
    strict = recipe_for("simulated", with_overrides(CONFIG, {"simulated.framing.max_upscale": 1.0}))
    targets, rejects = strict.targets(source_id, detections)
    assert not targets and [r.reason for r in rejects] == ["face_too_small_for_output"]
    _, bus, bus_id = detected["bus"]
    targets, rejects = recipe.targets(bus_id, bus)
    assert not targets and rejects and all(r.reason for r in rejects)


def test_simulated_edits_are_deterministic_and_local(detected: dict) -> None:
    recipe = recipe_for("simulated", CONFIG)
    photo, detections, source_id = detected["astronaut"]
    (target,), _ = recipe.targets(source_id, detections)
    first, second = _edit(recipe, photo, detections, target), _edit(recipe, photo, detections, target)
    np.testing.assert_array_equal(first.after, second.after)
    assert [r.to_record() for r in first.records] == [r.to_record() for r in second.records]
    other = _edit(recipe, photo, detections, target, edit_index=1)
    assert not np.array_equal(other.after, first.after)
    lo, hi = CONFIG.simulated.framing.iod_px
    assert lo <= inter_ocular(first.face) <= hi
    changed = np.any(first.after != first.before, axis=2)
    assert changed.any() and not changed[~(first.region > 0)].any()  # every change is inside the region
    x0, y0, x1, y1 = first.field.roi
    outside = np.ones(changed.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert not changed[outside].any()  # the edit stays in the field's box: no seam anywhere else
    bits = np.unique(first.opmask)
    assert set(int(b) for b in bits) <= set(range(1 << len(first.records)))
    assert all((first.opmask & (1 << k)).any() for k in range(len(first.records)))


def test_record_reproduces_the_pair_exactly(detected: dict) -> None:
    """Everything in the JSON record, applied to the photo, gives the pair's pixels again."""
    recipe = recipe_for("simulated", with_overrides(CONFIG, {"simulated.spatial_strength.probability": 0.0}))
    photo, detections, source_id = detected["astronaut"]
    (target,), _ = recipe.targets(source_id, detections)
    edit = _edit(recipe, photo, detections, target)
    seeds = [derive_seed(0, "view", v) for v in range(3)]
    transforms = sample_views(edit, seeds)
    regions = region_map(edit.field, region_index(edit.before.shape[:2], edit.face, None, None), edit.face, None)
    pair = render_view(edit, warp_view(edit, transforms[1], regions, lossy=False), regions, 1, seeds[1], _context("simulated", target),
                       {"max_disp_base_px": 5.0})  # fmt: skip
    record = json.loads(pair.sample["json"])
    x0, y0, x1, y1 = record["base"]["rect"]
    frame = crop_frame(photo, (x0, y0, x1, y1), tuple(record["base"]["size"]))
    np.testing.assert_allclose(frame.matrix, record["base"]["matrix"], atol=1e-8)
    face = frame.from_photo(detections.faces[0].landmarks[:, :2])
    alignment = align_face(face, CONFIG.simulated.crop_size)
    np.testing.assert_allclose(alignment.matrix, record["crop"]["matrix"], atol=1e-8)
    calls = [OpCall(op["name"], op["requested_strength"]) for op in record["ops"]]
    plan = plan_chain((1024, 1024), Landmarks(face=alignment.to_crop(face)), calls, settings=CONFIG.simulated.warp, window=True)
    after = plan.field.reframe(alignment.matrix, frame.image.shape[:2]).apply(frame.image)
    view = SpatialTransform.from_record(record["aug"])
    np.testing.assert_array_equal(_decode(pair.sample["before.png"]), apply_image(view, frame.image))
    np.testing.assert_array_equal(_decode(pair.sample["after.png"]), apply_image(view, after))
    assert record["face_iod_px"] == pytest.approx(inter_ocular(transform_points(view.matrix, face)), abs=1e-3)


def test_a_degenerate_face_is_a_reject_not_a_crash(detected: dict) -> None:
    recipe = recipe_for("simulated", CONFIG)
    photo, detections, source_id = detected["astronaut"]
    (target,), _ = recipe.targets(source_id, detections)
    flat = dataclasses.replace(detections.faces[0], landmarks=np.zeros((478, 3), np.float32))
    broken = dataclasses.replace(detections, faces=(flat,))
    with pytest.raises(EditRejected) as info:
        _edit(recipe, photo, broken, target)
    assert info.value.code == "degenerate_face"


def test_professional_targets_enumerate_ops_and_combos(detected: dict) -> None:
    config = with_overrides(CONFIG, {
        "professional.combos": [{"size": 1, "views": 2, "max_edits": None}, {"size": 2, "views": 1, "max_edits": 5}],
        "professional.min_pixels": 10000,
    })  # fmt: skip
    recipe = recipe_for("professional", config)
    photo, detections, source_id = detected["bus"]
    targets, rejects = recipe.targets(source_id, detections)
    assert targets, [r.detail for r in rejects]
    for target in targets:
        singles, pairs = target.payload[: target.families[0].count], target.payload[target.families[0].count :]
        ops = sorted({name for (name, _), in singles})
        assert len(singles) == 2 * len(ops) and all(strength in (100, -100) for (_, strength), in singles)
        assert len(pairs) == min(5, len(ops) * (len(ops) - 1) // 2 * 4)
        assert all(CATALOG[name].group == "body" for name in ops)  # bus.jpg faces are too small for facial ops
    assert any(r.reason == "op_not_applicable" for r in rejects)
    again, _ = recipe.targets(source_id, detections)
    assert [t.payload for t in again] == [t.payload for t in targets]  # the same on every worker


def test_professional_views_contain_the_body_box_at_full_resolution(detected: dict) -> None:
    config = with_overrides(CONFIG, {"professional.min_pixels": 10000, "professional.ops": ["waist_slimming", "shoulder_width"]})
    recipe = recipe_for("professional", config)
    photo, detections, source_id = detected["bus"]
    targets, _ = recipe.targets(source_id, detections)
    target = targets[0]
    edit = _edit(recipe, photo, detections, target)
    assert edit.before is photo and edit.before.shape == photo.shape  # full resolution, no copy
    box = detections.persons[target.person_index].box
    x0, y0, x1, y1 = edit.must_contain
    assert x0 <= max(box[0] + 0.5, 0) and x1 >= min(box[2] - 0.5, photo.shape[1] - 1)
    for transform in sample_views(edit, [derive_seed(0, "v", i) for i in range(4)]):
        corners = transform_points(transform.matrix, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
        w, h = transform.size
        assert (corners >= -1e-6).all() and (corners[:, 0] <= w - 1 + 1e-6).all() and (corners[:, 1] <= h - 1 + 1e-6).all()
        assert w % 32 == 0 and h % 32 == 0


@pytest.mark.parametrize("subset", ["simulated", "professional"])
def test_view_masks_hold_every_change_and_match_the_whole_view_computation(detected: dict, subset: str) -> None:
    """warp_view makes its images and masks on the view's box around the field: the images are
    exactly the whole view's warps, nothing changes outside that box, and the masks equal those
    made on the whole view (region "any overlap" warp,
    changed pixels grown to JPEG blocks, op bits warped nearest)."""
    config = with_overrides(CONFIG, {"professional.min_pixels": 10000, "professional.ops": ["waist_slimming"]})
    recipe = recipe_for(subset, config)
    photo, detections, source_id = detected["astronaut" if subset == "simulated" else "bus"]
    targets, _ = recipe.targets(source_id, detections)
    edit = _edit(recipe, photo, detections, targets[0])
    regions = region_map(edit.field, region_index(edit.before.shape[:2], edit.face, None, None), edit.face, None)
    for transform in sample_views(edit, [derive_seed(3, "v", i) for i in range(6)]):
        for lossy in (True, False):
            view = warp_view(edit, transform, regions, lossy=lossy)
            assert np.array_equal(view.before, apply_image(transform, edit.before))
            assert np.array_equal(view.after, apply_image(transform, edit.after))
            changed = np.any(view.after != view.before, axis=2)
            assert changed.any() and not changed[view.mask == 0].any()
            reached = cv2.warpAffine(edit.region, transform.matrix, transform.size, flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
            whole = view_mask(view.before, view.after, reached, block=JPEG_BLOCK if lossy else 1)
            assert np.mean(whole != view.mask) < 1e-4
            opmask = cv2.warpAffine(edit.opmask, transform.matrix, transform.size, flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
            assert np.mean(opmask != view.opmask) < 1e-4
            x0, y0, x1, y1 = view.changed
            outside = np.ones(changed.shape, bool)
            outside[y0:y1, x0:x1] = False
            assert not (changed[outside].any() or view.mask[outside].any() or view.opmask[outside].any())
            pair = render_view(edit, view, regions, 0, 1, _context(subset, targets[0]), {"max_disp_base_px": 1.0})
            x, y, w, h = cv2.boundingRect(view.mask)
            assert pair.row["region_bbox"] == [x, y, x + w, y + h]
            assert pair.row["region_area_px"] == cv2.countNonZero(view.mask)
            for k, op_row in enumerate(pair.op_rows):
                assert op_row["area_px"] == np.count_nonzero(view.opmask & (1 << k)) > 0


def test_a_strength_ladder_moves_more_at_every_rung(detected: dict) -> None:
    recipe = recipe_for("simulated", with_overrides(CONFIG, {"simulated.ladders.per_face": 2}))
    photo, detections, source_id = detected["astronaut"]
    (target,), _ = recipe.targets(source_id, detections)
    first_rung = CONFIG.simulated.edits_per_face
    for ladder in range(2):
        rungs = [_edit(recipe, photo, detections, target, first_rung + 4 * ladder + j) for j in range(4)]
        assert len({e.ladder_id for e in rungs}) == 1 and rungs[0].ladder_id.endswith(f"l{ladder:02d}")
        assert len({(r.records[0].name, r.records[0].requested_strength > 0) for r in rungs}) == 1
        assert [abs(r.records[0].requested_strength) for r in rungs] == [25, 50, 75, 100]
        assert all(np.array_equal(r.before, rungs[0].before) for r in rungs)  # one base frame per face
        moved = [max_displacement(r) for r in rungs]
        assert all(a < b for a, b in zip(moved, moved[1:])), moved
        regions = [region_map(r.field, region_index(r.before.shape[:2], r.face, None, None), r.face, None) for r in rungs]
        strongest = [max(abs(v) for v in m.values) for m in regions]
        assert all(a <= b for a, b in zip(strongest, strongest[1:])), strongest


def test_spatial_strength_scales_the_edit_by_its_map(detected: dict) -> None:
    recipe = recipe_for("simulated", with_overrides(CONFIG, {"simulated.spatial_strength.probability": 1.0}))
    plain = recipe_for("simulated", with_overrides(CONFIG, {"simulated.spatial_strength.probability": 0.0}))
    photo, detections, source_id = detected["astronaut"]
    (target,), _ = recipe.targets(source_id, detections)
    varied, uniform = _edit(recipe, photo, detections, target), _edit(plain, photo, detections, target)
    assert uniform.strength_map is None and varied.record["strength_map"]["kind"] == "linear_smoothstep"
    ramp = varied.strength_map
    assert ramp.min() == pytest.approx(0.0, abs=1e-6) and ramp.max() == pytest.approx(1.0)
    # Same chain (the ramp is drawn after it): the varied field is the uniform one times the map.
    assert [r.to_record() for r in varied.records] == [r.to_record() for r in uniform.records]
    x0, y0, x1, y1 = uniform.field.roi
    udx, udy = uniform.field.displacement()
    vdx, vdy = varied.field.displacement()
    np.testing.assert_allclose(vdx, udx * ramp[y0:y1, x0:x1], atol=1e-4)
    np.testing.assert_allclose(vdy, udy * ramp[y0:y1, x0:x1], atol=1e-4)


def test_region_maps_name_the_features_an_op_moves(detected: dict) -> None:
    photo, detections, source_id = detected["astronaut"]
    face = detections.faces[0].landmarks[:, :2].astype(float)
    plan = plan_chain(photo.shape[:2], Landmarks(face=face), [OpCall("eye_size", 100)])
    index = region_index(photo.shape[:2], face, None, None)
    found = dict(zip(*(lambda m: (m.names, m.values))(region_map(plan.field, index, face, None))))
    target = min(found["right_eye"], found["left_eye"])
    assert target > 0.2  # enlarged: positive
    assert abs(found["jaw_chin"]) < 0.3 * target and abs(found["lips"]) < 0.3 * target
    shrink = plan_chain(photo.shape[:2], Landmarks(face=face), [OpCall("eye_size", -100)])
    found = dict(zip(*(lambda m: (m.names, m.values))(region_map(shrink.field, index, face, None))))
    assert found["right_eye"] < -0.15 and found["left_eye"] < -0.15


def test_region_sizes_are_counted_in_chunks_exactly(detected: dict) -> None:
    """Chunked counting (flat memory at 8K) gives every region's exact size, across chunk edges."""
    photo, detections, _ = detected["astronaut"]
    face = detections.faces[0].landmarks[:, :2].astype(float) * 3  # a 1536^2 frame: 2.25 chunks
    index = region_index((photo.shape[0] * 3, photo.shape[1] * 3), face, None, None)
    assert index.size > 2 * (1 << 20)
    counts = region_counts(index)
    assert counts.sum() == index.size and counts[1:].sum() > 0
    for region_id, count in enumerate(counts):
        assert count == np.count_nonzero(index == region_id)
