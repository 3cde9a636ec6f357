"""A compact retouching-operation extractor.

From an exemplar pair (Xs, Xt) it extracts an operation code, predicts which catalog ops
the edit used (logits) and their strengths (tanh, in [-1, 1] = applied strength / 100),
and, conditioned on that code, a displacement field for a query photo Xq that
:func:`warp` turns into the predicted Yq.

Images enter as float in [0, 1], (B, C, H, W), H = W = resolution (a multiple of 16).
The displacement is a backward map in grid_sample's normalised frame (align_corners=False,
x then y, -1..1 across the image): output pixel p samples Xq at ``identity(p) + d(p)``; one
unit is half the canvas side. It is bounded by :data:`MAX_DISPLACEMENT` and starts at zero,
so an untrained model returns Xq unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Largest displacement per axis, normalised units (0.125 = 1/16 of the canvas side).
MAX_DISPLACEMENT = 0.125


@dataclass(frozen=True)
class Prediction:
    """``op_logits`` / ``strengths`` (B, num_ops); ``displacement`` (B, 2, H, W), x then y."""

    op_logits: torch.Tensor
    strengths: torch.Tensor
    displacement: torch.Tensor


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(min(8, cout), cout), nn.SiLU()
    )


class OpExtractor(nn.Module):
    """``forward(exemplar (B, 6, H, W), query (B, 3, H, W)) -> Prediction``; the exemplar
    holds Xs then Xt (RGB each). ``width`` sets the channel count (4 * width at the bottom)."""

    def __init__(self, num_ops: int, width: int) -> None:
        super().__init__()
        w = width
        self.exemplar_encoder = nn.Sequential(
            _block(9, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 2), _block(4 * w, 4 * w)
        )
        self.code = nn.Sequential(nn.Linear(8 * w, 4 * w), nn.SiLU())
        self.op_head = nn.Linear(4 * w, num_ops)
        self.strength_head = nn.Linear(4 * w, num_ops)
        self.query_down = nn.ModuleList(
            [nn.Sequential(_block(3, w, 2), _block(w, w)), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2)]
        )
        self.film_bottom = nn.Linear(4 * w, 8 * w)
        self.film_middle = nn.Linear(4 * w, 4 * w)
        self.bottom = _block(4 * w, 4 * w)
        self.up_middle = _block(6 * w, 2 * w)
        self.up_top = _block(3 * w, w)
        self.field_head = nn.Conv2d(w, 2, 3, padding=1)
        nn.init.zeros_(self.field_head.weight)
        nn.init.zeros_(self.field_head.bias)

    def operation_code(self, exemplar: torch.Tensor) -> torch.Tensor:
        """(B, 4 * width) code of the edit that turns Xs into Xt."""
        xs, xt = exemplar[:, :3], exemplar[:, 3:]
        features = self.exemplar_encoder(torch.cat([xs, xt, xt - xs], dim=1) * 2 - 1)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.code(pooled)

    def forward(self, exemplar: torch.Tensor, query: torch.Tensor) -> Prediction:
        code = self.operation_code(exemplar)
        top = self.query_down[0](query * 2 - 1)
        middle = self.query_down[1](top)
        bottom = _film(self.query_down[2](middle), self.film_bottom(code))
        bottom = self.bottom(bottom)
        middle = self.up_middle(torch.cat([_up(bottom, middle), _film(middle, self.film_middle(code))], dim=1))
        top = self.up_top(torch.cat([_up(middle, top), top], dim=1))
        field = F.interpolate(self.field_head(top), size=query.shape[-2:], mode="bilinear", align_corners=False)
        return Prediction(
            op_logits=self.op_head(code),
            strengths=torch.tanh(self.strength_head(code)),
            displacement=MAX_DISPLACEMENT * torch.tanh(field),
        )


def _film(features: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    scale, shift = params[:, :, None, None].chunk(2, dim=1)
    return features * (1 + scale) + shift


def _up(features: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(features, size=like.shape[-2:], mode="bilinear", align_corners=False)


def warp(image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Resample ``image`` (B, C, H, W) at identity + ``displacement`` (B, 2, H, W), bilinear,
    border padding; a zero displacement returns ``image`` exactly."""
    b, _, h, w = image.shape
    identity = torch.eye(2, 3, dtype=image.dtype, device=image.device).expand(b, 2, 3)
    grid = F.affine_grid(identity, [b, 1, h, w], align_corners=False) + displacement.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
