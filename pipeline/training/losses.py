"""The training objective, per quadruple.

- ``image``: weighted L1 between warp(Xq, field) and Yq, ``sum(w |pred - Yq|) / sum(w)``
  over pixels and channels, with w = 1 outside and ``region_weight`` (100) inside the
  query's edit region, 0 on letterbox padding (the reference's 100x region weighting).
- ``op``: binary cross-entropy of the 27 op logits against the ops of the record.
- ``strength``: squared error of the predicted strengths on the ops the edit used.
- ``loss`` = the three weighted by ``image_loss_weight`` / ``op_loss_weight`` /
  ``strength_loss_weight``.
- ``image_identity``: the image term of returning Xq unchanged, a do-nothing reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.training.config import TrainConfig
from pipeline.training.model import OpExtractor, warp

#: Names of the per-quadruple terms :func:`quad_losses` returns, in report order.
TERMS = ("loss", "image", "op", "strength", "image_identity")


def to_device(batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """The batch's tensors on ``device``, uint8 images as float in [0, 1]."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            out[key] = value.float() / 255.0 if value.dtype == torch.uint8 else value
    return out


def quad_losses(model: OpExtractor, batch: dict[str, torch.Tensor], config: TrainConfig) -> dict[str, torch.Tensor]:
    """Every term of :data:`TERMS` for each quadruple of ``batch`` (from :func:`to_device`), (B,)."""
    pred = model(batch["exemplar"], batch["query"])
    weight = batch["weight"]
    denominator = weight.sum(dim=(1, 2, 3)) * batch["target"].shape[1]

    def image_term(image: torch.Tensor) -> torch.Tensor:
        return (weight * (image - batch["target"]).abs()).sum(dim=(1, 2, 3)) / denominator

    image = image_term(warp(batch["query"], pred.displacement))
    with torch.no_grad():
        identity = image_term(batch["query"])
    op = F.binary_cross_entropy_with_logits(pred.op_logits, batch["ops"], reduction="none").mean(dim=1)
    present = batch["ops"]
    strength = ((pred.strengths - batch["strengths"]) ** 2 * present).sum(dim=1) / present.sum(dim=1).clamp(min=1)
    loss = config.image_loss_weight * image + config.op_loss_weight * op + config.strength_loss_weight * strength
    return {"loss": loss, "image": image, "op": op, "strength": strength, "image_identity": identity}
