"""The operation extractor, its warp and its loss; checkpoints and model files as safetensors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from pipeline.training.checkpoint import load_checkpoint, load_model_tensors, save_checkpoint, save_model
from pipeline.training.config import TrainConfig
from pipeline.training.data import OP_NAMES
from pipeline.training.losses import quad_losses
from pipeline.training.model import MAX_DISPLACEMENT, OpExtractor, warp
from tests.conftest import PHOTOS, read_rgb

CONFIG = TrainConfig(resolution=64, width=8)


def photo_batch(size: int = 64) -> torch.Tensor:
    """skimage's astronaut, (1, 3, size, size) float in [0, 1]."""
    rgb = torch.from_numpy(read_rgb(PHOTOS["astronaut.png"])).permute(2, 0, 1)[None].float() / 255
    return torch.nn.functional.interpolate(rgb, size=(size, size), mode="area")


def test_zero_displacement_is_the_identity_and_a_shift_moves_content() -> None:
    image = photo_batch()
    assert torch.allclose(warp(image, torch.zeros(1, 2, 64, 64)), image, atol=1e-5)
    shift = torch.zeros(1, 2, 64, 64)
    shift[:, 0] = 3 * 2 / 64  # 3 pixels in x, in normalised units (2 units per canvas side)
    moved = warp(image, shift)
    assert torch.allclose(moved[..., :, :-3], image[..., :, 3:], atol=1e-5)


def test_untrained_model_shapes_and_identity_warp() -> None:
    torch.manual_seed(0)
    model = OpExtractor(len(OP_NAMES), CONFIG.width)
    query = photo_batch().expand(2, 3, 64, 64)
    pred = model(torch.cat([query, query.flip(-1)], dim=1), query)
    assert pred.op_logits.shape == pred.strengths.shape == (2, 27)
    assert pred.displacement.shape == (2, 2, 64, 64)
    assert torch.all(pred.displacement == 0) and torch.all(pred.strengths.abs() <= 1)
    assert MAX_DISPLACEMENT > 0


def loss_batch(inside_error: bool) -> dict[str, torch.Tensor]:
    """Query = target except one 4x4 patch off by 0.5; the region (weight 100) is the patch or not."""
    query = photo_batch()
    target = query.clone()
    target[..., 10:14, 10:14] += 0.5
    weight = torch.ones(1, 1, 64, 64)
    region = (slice(10, 14), slice(10, 14)) if inside_error else (slice(40, 44), slice(40, 44))
    weight[..., region[0], region[1]] = 100.0
    ops = torch.zeros(1, 27)
    ops[0, 3] = 1
    strengths = torch.zeros(1, 27)
    strengths[0, 3] = 0.5
    return {"exemplar": torch.cat([query, query], 1), "query": query, "target": target, "weight": weight,
            "ops": ops, "strengths": strengths}  # fmt: skip


def test_error_inside_the_edit_region_weighs_100_times_more() -> None:
    torch.manual_seed(0)
    model = OpExtractor(len(OP_NAMES), CONFIG.width)
    inside, outside = (quad_losses(model, loss_batch(flag), CONFIG) for flag in (True, False))
    total_weight = 64 * 64 - 16 + 1600
    assert inside["image"].item() == pytest.approx(100 * 16 * 0.5 / total_weight, rel=1e-4)
    assert outside["image"].item() == pytest.approx(16 * 0.5 / total_weight, rel=1e-4)
    assert torch.allclose(inside["image"], inside["image_identity"], rtol=1e-5)  # the untrained field is zero
    no_image = dataclasses.replace(CONFIG, image_loss_weight=0.0)
    terms = quad_losses(model, loss_batch(True), no_image)
    assert terms["loss"].item() == pytest.approx((terms["op"] + terms["strength"]).item())


def trained_pair() -> tuple[OpExtractor, torch.optim.Optimizer]:
    torch.manual_seed(1)
    model = OpExtractor(len(OP_NAMES), CONFIG.width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        quad_losses(model, loss_batch(True), CONFIG)["loss"].mean().backward()
        optimizer.step()
    return model, optimizer


def test_checkpoint_round_trip_restores_model_optimizer_and_rng(tmp_path: Path) -> None:
    model, optimizer = trained_pair()
    torch.manual_seed(7)
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, optimizer, {"step": 2, "note": "x"})
    expected_draw = torch.rand(3)
    with safe_open(str(path), framework="pt") as f:  # a safetensors file, not a pickle
        assert f.metadata()["format"] == "mirrorset-train-checkpoint-v1"
    fresh = OpExtractor(len(OP_NAMES), CONFIG.width)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    torch.manual_seed(99)
    assert load_checkpoint(path, fresh, fresh_optimizer) == {"step": 2, "note": "x"}
    assert torch.equal(torch.rand(3), expected_draw)
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name
    saved, loaded = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for index, state in saved["state"].items():
        assert all(torch.equal(value, loaded["state"][index][key]) for key, value in state.items())


def test_model_file_holds_weights_and_how_to_read_them(tmp_path: Path) -> None:
    model, _ = trained_pair()
    path = tmp_path / "model.safetensors"
    save_model(path, model, OP_NAMES, {"width": CONFIG.width})
    tensors, metadata = load_model_tensors(path)
    assert json.loads(metadata["op_names"]) == list(OP_NAMES)
    rebuilt = OpExtractor(len(OP_NAMES), json.loads(metadata["config"])["width"])
    rebuilt.load_state_dict(tensors)
    batch = loss_batch(True)
    assert torch.equal(rebuilt(batch["exemplar"], batch["query"]).op_logits, model(batch["exemplar"], batch["query"]).op_logits)
    with pytest.raises(ValueError, match="format 'mirrorset-op-extractor-v1', expected"):
        load_checkpoint(path, rebuilt, torch.optim.AdamW(rebuilt.parameters()))
