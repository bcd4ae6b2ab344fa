"""Training losses for road masks drawn from centrelines (issue 15, item 3).

- :func:`dice_bce_loss`: BCE for per-pixel calibration plus soft Dice, which copes with ~5 % road
  pixels. The base every run uses.
- :func:`cldice_loss`: soft-clDice (Shit et al., CVPR 2021), which scores how much of the
  predicted skeleton lies on road and how much of the true skeleton the prediction covers, so a
  gap in a road costs more than the same pixels lost from its edge.
- :class:`LossConfig` weighs the ingredients and adds two that tolerate labels taken from OSM, which
  misses roads and draws them metres off the imagery: negatives just beside a labelled road count
  less, and a negative's target is partly the net's own belief (Reed et al. 2015, soft
  bootstrapping), so a road missing from OSM that the net sees is not trained away.

Pixels where ``valid`` is 0 (no imagery) count in no term.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
                  negative_weight: torch.Tensor | None = None, bce_target: torch.Tensor | None = None) -> torch.Tensor:
    """BCE plus soft Dice. ``negative_weight`` scales the BCE of each pixel (the tolerant weights)
    and ``bce_target`` replaces the BCE's target (the bootstrapped one); Dice keeps the labels."""
    weight = torch.ones_like(target) if valid is None else valid
    bce_weight = weight if negative_weight is None else weight * negative_weight
    bce = F.binary_cross_entropy_with_logits(logits, target if bce_target is None else bce_target, reduction="none")
    bce = (bce * bce_weight).sum() / bce_weight.sum().clamp(min=1)
    prob = torch.sigmoid(logits) * weight
    inter = (prob * target).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + (target * weight).sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


def _soft_erode(x: torch.Tensor) -> torch.Tensor:
    # a plus-shaped minimum: erosion along rows, then columns, keeps diagonal lines one pixel thick
    return torch.minimum(-F.max_pool2d(-x, (3, 1), 1, (1, 0)), -F.max_pool2d(-x, (1, 3), 1, (0, 1)))


def _soft_dilate(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 1, 1)


def soft_skeleton(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """A differentiable skeleton of a probability map: what each successive erosion removes that
    an opening would not restore, accumulated. ``iterations`` must reach half the widest road."""
    skeleton = F.relu(x - _soft_dilate(_soft_erode(x)))
    for _ in range(iterations):
        x = _soft_erode(x)
        delta = F.relu(x - _soft_dilate(_soft_erode(x)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def cldice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
                iterations: int = 6) -> torch.Tensor:
    """1 - clDice: the harmonic mean of topology precision (predicted skeleton on labelled road)
    and topology sensitivity (labelled skeleton under the prediction), pooled over the batch."""
    weight = torch.ones_like(target) if valid is None else valid
    prob = torch.sigmoid(logits) * weight
    truth = target * weight
    skel_pred = soft_skeleton(prob, iterations)
    skel_true = soft_skeleton(truth, iterations)
    precision = ((skel_pred * truth).sum() + 1) / (skel_pred.sum() + 1)
    sensitivity = ((skel_true * prob).sum() + 1) / (skel_true.sum() + 1)
    return 1 - 2 * precision * sensitivity / (precision + sensitivity)


NEAR_ROAD_PX = 4  # "beside a labelled road": OSM centrelines sit metres off the imagery


@dataclass(frozen=True)
class LossConfig:
    """The weight of each ingredient; all zero (the default) is plain Dice+BCE."""

    cldice: float = 0.0  # share of the loss given to 1 - clDice (the rest to Dice+BCE)
    near_road_weight: float = 1.0  # BCE weight of negatives within NEAR_ROAD_PX of a labelled road
    bootstrap: float = 0.0  # share of a negative's BCE target taken from the net's own (detached) belief

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        negative_weight = bce_target = None
        if self.near_road_weight != 1.0:
            near = F.max_pool2d(target, 2 * NEAR_ROAD_PX + 1, 1, NEAR_ROAD_PX) > target
            negative_weight = torch.where(near, torch.full_like(target, self.near_road_weight), torch.ones_like(target))
        if self.bootstrap > 0:
            belief = torch.sigmoid(logits.detach())
            bce_target = torch.where(target > 0, target, self.bootstrap * belief)
        base = dice_bce_loss(logits, target, valid, negative_weight, bce_target)
        if self.cldice <= 0:
            return base
        return (1 - self.cldice) * base + self.cldice * cldice_loss(logits, target, valid)
