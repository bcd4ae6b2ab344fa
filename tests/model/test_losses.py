"""The loss ingredients of issue 15 on real road masks: soft-clDice punishes a broken road more
than the same pixels lost from road edges, and the OSM-tolerant terms forgive exactly what they
say (a false road just beside a labelled one; a road the net sees that the labels lack)."""
import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.morphology import skeletonize

from osmgap.model.data import load_training_data
from osmgap.model.losses import NEAR_ROAD_PX, LossConfig, cldice_loss, dice_bce_loss, soft_skeleton


@pytest.fixture(scope="module")
def mask(data):
    s = max(load_training_data(data, ["deepglobe"], 1.0), key=lambda s: s.mask.sum())
    return torch.from_numpy(s.mask[None, None].astype(np.float32))[..., :384, :384]


def logits_of(prob: torch.Tensor) -> torch.Tensor:
    return (prob * 2 - 1) * 8


def test_soft_skeleton_is_thin_and_follows_the_roads(mask):
    soft = soft_skeleton(mask, 6)[0, 0].numpy()
    road = mask[0, 0].numpy() > 0
    assert soft.max() <= 1.0 + 1e-6 and (soft[~road] == 0).all()
    assert (soft > 0.5).sum() < 0.5 * road.sum()  # thin
    hard = skeletonize(road)
    near_soft = ndimage.binary_dilation(soft > 0.5, iterations=2)
    assert near_soft[hard].mean() > 0.85  # the true centrelines are traced


def test_cldice_punishes_a_break_more_than_lost_edges(mask):
    road = mask[0, 0].numpy() > 0
    centre = skeletonize(road)
    ys, xs = np.nonzero(centre)
    rng = np.random.default_rng(0)
    broken = road.copy()
    for i in rng.choice(len(ys), 12, replace=False):  # 12 cuts across roads
        broken[max(0, ys[i] - 4):ys[i] + 5, max(0, xs[i] - 4):xs[i] + 5] = False
    lost = road.sum() - broken.sum()
    edge = road & ~ndimage.binary_erosion(road)
    edge &= ~ndimage.binary_dilation(centre, iterations=1)  # an edge pixel that is not centreline
    thinned = road.copy()
    ey, ex = np.nonzero(edge)
    pick = rng.choice(len(ey), min(lost, len(ey)), replace=False)
    thinned[ey[pick], ex[pick]] = False
    assert abs(int(road.sum() - thinned.sum()) - lost) <= lost * 0.05
    as_logits = [logits_of(torch.from_numpy(m[None, None].astype(np.float32))) for m in (broken, thinned)]
    dice = [dice_bce_loss(x, mask).item() for x in as_logits]
    cl = [cldice_loss(x, mask).item() for x in as_logits]
    assert abs(dice[0] - dice[1]) < 0.02  # Dice+BCE barely tells them apart
    assert cl[0] > cl[1] + 0.03 and cl[0] > 1.5 * cl[1]


def test_cldice_ignores_pixels_without_imagery(mask):
    valid = torch.ones_like(mask)
    valid[..., :, 200:] = 0
    right = logits_of(mask)
    wrong_outside = right.clone()
    wrong_outside[..., :, 200:] = -right[..., :, 200:]
    assert torch.isclose(cldice_loss(right, mask, valid), cldice_loss(wrong_outside, mask, valid))
    assert cldice_loss(wrong_outside, mask) > cldice_loss(right, mask) + 0.1


def test_default_ingredients_are_plain_dice_bce(mask):
    logits = logits_of(mask) * 0.3 + torch.randn_like(mask)
    assert torch.isclose(LossConfig()(logits, mask), dice_bce_loss(logits, mask))
    assert not torch.isclose(LossConfig(cldice=0.3)(logits, mask), dice_bce_loss(logits, mask))


def false_road(mask: torch.Tensor, distance_px: int) -> torch.Tensor:
    """The truth plus a 1-pixel band drawn ``distance_px`` beside every road (outside the roads)."""
    road = mask[0, 0].numpy() > 0
    grown = ndimage.binary_dilation(road, iterations=distance_px)
    band = grown & ~ndimage.binary_dilation(road, iterations=distance_px - 1)
    return logits_of(torch.from_numpy((road | band)[None, None].astype(np.float32)))


def test_near_road_negatives_count_less_only_beside_roads(mask):
    near, far = false_road(mask, NEAR_ROAD_PX - 1), false_road(mask, NEAR_ROAD_PX + 6)
    plain, tolerant = LossConfig(), LossConfig(near_road_weight=0.25)
    assert tolerant(near, mask) < plain(near, mask) - 0.03  # Dice still counts the band in full
    # far from any road the band costs the same (only the shared normaliser moves)
    assert abs(tolerant(far, mask).item() - plain(far, mask).item()) < 0.01


def test_bootstrap_forgives_a_road_the_labels_lack(mask):
    road = mask[0, 0].numpy() > 0
    missing = road.copy()
    missing[:, 192:] = False  # the labels lack the right half's roads; the net sees them all
    labels = torch.from_numpy(missing[None, None].astype(np.float32))
    sees_all = logits_of(mask)
    plain, boot = LossConfig(), LossConfig(bootstrap=0.3)
    assert boot(sees_all, labels) < plain(sees_all, labels) - 0.02  # Dice still counts them in full
    agrees = logits_of(labels)  # a net that agrees with the labels is judged as before
    assert abs(boot(agrees, labels).item() - plain(agrees, labels).item()) < 0.005
    # where the net is unsure, a negative still pulls it down
    unsure = torch.zeros_like(mask, requires_grad=True)
    boot(unsure, labels).backward()
    assert unsure.grad is not None and unsure.grad[labels == 0].mean() > 0
