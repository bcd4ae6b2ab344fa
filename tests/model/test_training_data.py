"""The training data of issue 15 on the real files: no-data is neither road nor background,
held-out images never reach training, every image is stretched the way inference reads imagery,
and a few chips of a new sensor are not drowned by hundreds of crops of the old one."""
import numpy as np
import pytest
import torch

from osmgap.core.stretch import stretch_pixels
from osmgap.model.augment import erase_patches, photometric, random_crop, road_direction
from osmgap.model.data import (
    HELD_OUT,
    Sample,
    held_out_massachusetts_tiles,
    held_out_shanghai_chips,
    is_held_out,
    load_training_data,
)
from osmgap.model.losses import dice_bce_loss
from osmgap.model.train import sampling_weights


@pytest.fixture(scope="module")
def tiles(data):
    return load_training_data(data, ["massachusetts-tiles"], 1.0)


def test_white_nodata_of_massachusetts_tiles_is_masked_out_with_its_roads(data, tiles):
    # the data README: the masks draw roads across the white no-data areas (21-91 % of a tile)
    assert tiles and all(s.valid is not None for s in tiles)
    for s in tiles:
        assert 0.05 < s.valid.mean() < 0.95
        assert not s.mask[~s.valid].any()  # no road label left where there is no imagery
        assert (s.image[:, ~s.valid] == 0).all()
        assert s.mask[s.valid].mean() > 0.001


def test_held_out_images_never_reach_training(data, tiles):
    held_tiles = held_out_massachusetts_tiles(data, 1.0)
    assert held_tiles and {s.name for s in held_tiles}.isdisjoint({s.name for s in tiles})
    assert len(held_tiles) + len(tiles) == 9
    shanghai = load_training_data(data, ["shanghai"], 1.0)
    held_chips = held_out_shanghai_chips(data)
    assert held_chips and shanghai
    assert not any(f"img{n}_" in s.name for n in held_chips for s in shanghai)
    assert all(not is_held_out(s.name) or s.mask.sum() == 0 for s in shanghai)  # only road-free chips are exempt
    # pixel 0 (outside the satellite strip, undeclared in the files) is no-data there
    assert any(s.valid is not None and s.valid.mean() < 0.5 for s in shanghai)
    assert set(HELD_OUT) == {"massachusetts-tiles", "shanghai"}
    # the same places in the 8-band multispectral image: the same chips held out, read in colour
    mul = load_training_data(data, ["shanghai-mul"], 1.0)
    assert sorted(s.name.split("_img")[1] for s in mul) == sorted(s.name.split("_img")[1].replace("_pan", "_mul")
                                                                  for s in shanghai)
    assert all(s.domain == "shanghai-mul" for s in mul)
    for m in mul:  # true colour (bands 5, 3, 2): the three channels differ, as a panchromatic image's do not
        seen = m.valid if m.valid is not None else np.ones(m.mask.shape, bool)
        assert np.abs(m.image[0] - m.image[2])[seen].mean() > 0.01


def test_a_dark_image_is_stretched_like_the_original(tiles):
    s = tiles[0]
    raw = s.image * 255.0
    dark = np.round(raw * 30.0 / max(np.median(raw[:, s.valid]), 1.0))  # median grey ~30, 8-bit
    a, b = stretch_pixels(raw, s.valid), stretch_pixels(dark, s.valid)
    assert np.abs(a - b)[:, s.valid].mean() < 0.02
    assert np.abs(dark / 255.0 - s.image)[:, s.valid].mean() > 0.1  # without the stretch it would differ


def test_loss_ignores_pixels_outside_the_imagery():
    target = torch.zeros(1, 1, 32, 32)
    target[..., 10:14, :] = 1
    valid = torch.ones_like(target)
    valid[..., :, 20:] = 0
    logits = (target * 2 - 1) * 6
    wrong_outside = logits.clone()
    wrong_outside[..., :, 20:] = -logits[..., :, 20:]
    assert torch.isclose(dice_bce_loss(logits, target, valid), dice_bce_loss(wrong_outside, target, valid))
    assert dice_bce_loss(wrong_outside, target) > dice_bce_loss(logits, target) + 0.1


def test_crops_keep_nodata_dark_and_unlabelled(tiles):
    s = min(tiles, key=lambda t: t.valid.mean())
    rng = np.random.default_rng(0)
    for _ in range(10):
        x, y, v = random_crop(s, 96, rng)
        assert x.shape == (3, 96, 96) and y.shape == v.shape == (96, 96)
        assert not y[v == 0].any() and (x[:, v == 0] == 0).all()
        assert v.mean() > 0  # a crop that holds some imagery (the draw retries)


def test_greyscale_augmentation_makes_a_panchromatic_like_image(tiles):
    s = tiles[1]
    x = np.ascontiguousarray(s.image[:, 200:296, 200:296])
    valid = s.valid[200:296, 200:296]
    grey = 0
    for seed in range(40):
        out = photometric(x, valid, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
        grey += int(np.allclose(out[0], out[1]) and np.allclose(out[1], out[2]))
    assert 3 <= grey <= 20  # about a quarter of draws


def test_a_few_chips_of_a_new_domain_get_a_fair_share(data, tiles):
    crops = load_training_data(data, ["massachusetts"], 1.0)
    shanghai = load_training_data(data, ["shanghai"], 1.0)
    samples: list[Sample] = crops + tiles + shanghai
    w = sampling_weights(samples)
    assert np.isclose(w.sum(), 1.0)
    share = {d: w[[i for i, s in enumerate(samples) if s.domain == d]].sum() for d in ("massachusetts", "shanghai")}
    pixels = {d: sum(s.mask.size for s in samples if s.domain == d) for d in share}
    pixel_share = pixels["shanghai"] / sum(s.mask.size for s in samples)
    assert share["shanghai"] > 3 * pixel_share  # by pixels alone it would be a crop in a hundred
    assert share["massachusetts"] > share["shanghai"]


def test_erased_strips_hide_roads_under_flat_paint_and_unlabel_them(data):
    crops = load_training_data(data, ["massachusetts"], 1.0)
    rng = np.random.default_rng(0)
    hit = 0
    for s in crops[:40]:
        x, y, v = random_crop(s, 128, rng)
        x2, y2 = erase_patches(x, y, v, rng)
        painted = np.abs(x2 - x).max(axis=0) > 0
        assert painted.any() and not y2[painted].any()  # no road label left under the paint
        assert (y2 <= y).all() and np.array_equal(y2[~painted], y[~painted])  # nothing else relabelled
        assert np.abs(x2[:, painted] - np.median(x2[:, painted], axis=1)[:, None]).max() < 0.06  # flat, up to faint noise
        assert (x2[:, v == 0] == 0).all()  # no-data stays dark
        hit += int(y.sum() > 0 and y2.sum() < y.sum())
    assert hit >= 10  # a strip lies across a labelled road when the crop has one


def test_a_strip_along_a_road_follows_its_direction():
    """Half of the strips lie along the road (a stretch of it gone): the road's main axis, measured
    near the chosen pixel; a junction or a blob has none, and the random angle stays."""
    diagonal = np.argwhere(np.eye(64, dtype=bool))
    assert road_direction(diagonal, 32, 32, fallback=-1.0) == pytest.approx(np.pi / 4)
    vertical = np.array([(r, 5) for r in range(64)])
    assert road_direction(vertical, 30, 5, fallback=-1.0) == pytest.approx(np.pi / 2)
    crossing = np.array([(r, 32) for r in range(64)] + [(32, c) for c in range(64)])
    assert road_direction(crossing, 32, 32, fallback=-1.0) == -1.0
