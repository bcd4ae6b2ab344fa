"""Training samples from the real datasets beside the project, at one ground resolution.

Every sample is an (image, mask) pair: image float32 (3, H, W) in [0, 1], mask uint8 (H, W) in
{0, 1}, resampled to the model's resolution so that a road is as many pixels wide in training
as at inference, plus where known a validity mask (no-data is neither road nor background: the
loss and the scores leave it out). Every image is stretched between its robust percentiles, as
``osmgap diff`` reads imagery, whatever its bit depth. Validation images are chosen by a hash of
their name, so the split never changes between runs or machines; images held out for
``bench/generalize.py`` (:func:`is_held_out`) are never loaded for training.

The GIS stack (rasterio, pyproj) is imported by the loaders of georeferenced images alone: the
sample and split code serves training from a pack (``osmgap.model.pack``) on a bare GPU machine.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from osmgap.core.stretch import stretch_pixels
from osmgap.errors import InputError
from osmgap.model.choices import DATASETS

# Nominal ground resolution of the datasets that carry no georeference.
MASSACHUSETTS_M = 1.0
DEEPGLOBE_M = 0.5
# Shares of whole datasets held out of training for bench/generalize.py's (b) rows, chosen by the
# same name hash as validation (a rule fixed before any run, not a pick of easy images).
HELD_OUT = {"massachusetts-tiles": 0.34, "shanghai": 0.4}
SHANGHAI_NO_ROADS = ("1227", "1890")  # open water: real negatives, always trained on
MUL_TRUE_COLOUR = (5, 3, 2)  # WorldView-3 8-band: coastal, blue, green, yellow, red, red edge, NIR1, NIR2


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (3, H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) uint8 0/1
    valid: np.ndarray | None = None  # (H, W) bool; None: every pixel is imagery

    @property
    def domain(self) -> str:
        return self.name.split("/", 1)[0]


def is_validation(name: str, fraction: float = 0.1) -> bool:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def is_held_out(name: str) -> bool:
    """Images of a dataset in :data:`HELD_OUT` that no training run loads (scored by bench/generalize.py)."""
    domain = name.split("/", 1)[0]
    return domain in HELD_OUT and is_validation(name, HELD_OUT[domain])


def shanghai_chip_name(chip: str) -> str:
    return f"shanghai/AOI_4_Shanghai_img{chip}_pan.tif"


def _resize_pair(img: Image.Image, mask: Image.Image, scale: float,
                 white_is_nodata: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    img = img.convert("RGB")
    nodata = Image.fromarray(((np.asarray(img) == 255).all(axis=2) * 255).astype(np.uint8))
    if abs(scale - 1.0) > 1e-6:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BILINEAR)
        mask = mask.resize(size, Image.Resampling.BILINEAR)
        nodata = nodata.resize(size, Image.Resampling.BILINEAR)
    valid = np.asarray(nodata) < 128 if white_is_nodata else np.ones((img.height, img.width), bool)
    image = stretch_pixels(np.asarray(img, np.float32).transpose(2, 0, 1), valid)
    m = np.asarray(mask.convert("L"))
    return image, ((m > 127) & valid).astype(np.uint8), None if valid.all() else valid


def load_png_pairs(image_dir: Path, mask_dir: Path, image_glob: str, mask_name, native_m: float,
                   resolution_m: float, prefix: str, white_is_nodata: bool = False,
                   held_out: bool = False) -> list[Sample]:
    """Pairs of plain images and masks (Massachusetts, DeepGlobe). ``white_is_nodata``: pure white
    pixels are outside the imagery (Massachusetts: its masks still draw roads across them).
    ``held_out``: only the images :func:`is_held_out` keeps from training (to score them)."""
    samples = []
    for img_path in sorted(image_dir.glob(image_glob)):
        mask_path = mask_dir / mask_name(img_path)
        name = f"{prefix}/{img_path.name}"
        if not mask_path.exists() or is_held_out(name) != held_out:
            continue
        image, mask, valid = _resize_pair(Image.open(img_path), Image.open(mask_path), native_m / resolution_m,
                                          white_is_nodata)
        samples.append(Sample(name, image, mask, valid))
    return samples


def load_geotiff_pair(image_path: Path, mask_path: Path, resolution_m: float, prefix: str) -> Sample:
    """A georeferenced chip and its mask, reprojected to UTM at ``resolution_m``."""
    from rasterio.enums import Resampling
    from rasterio.warp import transform_bounds

    from osmgap.core.aoi import utm_crs_for
    from osmgap.core.grid import grid_over
    from osmgap.sources.imagery import WindowReader, open_imagery

    imagery = open_imagery(image_path)
    lon = (imagery.bounds_wgs84[0] + imagery.bounds_wgs84[2]) / 2
    lat = (imagery.bounds_wgs84[1] + imagery.bounds_wgs84[3]) / 2
    crs = utm_crs_for(lon, lat)
    grid = grid_over(transform_bounds("EPSG:4326", crs, *imagery.bounds_wgs84), crs, resolution_m)
    with WindowReader(imagery, grid) as reader:
        image, _ = reader.read_all()
    with WindowReader(open_imagery(mask_path), grid, Resampling.bilinear) as reader:
        mask, _ = reader.read_all()
    return Sample(f"{prefix}/{image_path.name}", image, (mask[0] > 0.5).astype(np.uint8))


def load_shanghai(root: Path, resolution_m: float, tmp: Path, sensor: str = "pan") -> list[Sample]:
    """The SpaceNet Shanghai chips not held out, with their centrelines drawn at the per-class
    width; pixel value 0 (outside the satellite strip, undeclared in the files) is no-data.
    ``sensor``: "pan" (0.3 m panchromatic, dataset ``shanghai``) or "mul" (the same places in the
    1.2 m 8-band multispectral image, read in true colour: dataset ``shanghai-mul``); the chips
    held out are the same for both."""
    import rasterio  # only this loader rewrites a chip

    chips = root / "chips" / "shanghai"
    empty = tmp / "no_roads.geojson"  # the road-free chips' label files are empty and carry no CRS
    empty.write_text('{"type": "FeatureCollection", "crs": {"type": "name", "properties": '
                     '{"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}, "features": []}')
    samples = []
    for image in sorted(chips.glob(f"AOI_4_Shanghai_img*_{sensor}.tif")):
        chip = image.name.split("_img")[1].split("_")[0]
        if is_held_out(shanghai_chip_name(chip)) and chip not in SHANGHAI_NO_ROADS:
            continue
        declared = tmp / image.name
        with rasterio.open(image) as src, rasterio.open(declared, "w", **{**src.profile, "nodata": 0}) as out:
            out.write(src.read())
        labels = empty if chip in SHANGHAI_NO_ROADS else chips / f"AOI_4_Shanghai_img{chip}_roads.geojson"
        s = load_labelled_image(declared, labels, resolution_m, MUL_TRUE_COLOUR if sensor == "mul" else None)
        name = shanghai_chip_name(chip) if sensor == "pan" else f"shanghai-mul/{image.name}"
        samples.append(Sample(name, s.image, s.mask, s.valid))
    return samples


def held_out_massachusetts_tiles(root: Path, resolution_m: float) -> list[Sample]:
    """The full Massachusetts tiles no training run loads."""
    d = root / "massachusetts-tiles"
    return load_png_pairs(d / "images", d / "masks", "*.png", lambda p: p.name, MASSACHUSETTS_M, resolution_m,
                          "massachusetts-tiles", white_is_nodata=True, held_out=True)


def held_out_shanghai_chips(root: Path) -> list[str]:
    """Numbers of the labelled Shanghai chips no training run loads."""
    names = sorted(p.name.split("_img")[1].split("_")[0] for p in (root / "chips" / "shanghai").glob("*_pan.tif"))
    return [n for n in names if n not in SHANGHAI_NO_ROADS and is_held_out(shanghai_chip_name(n))]


def load_training_data(root: Path, datasets: list[str], resolution_m: float) -> list[Sample]:
    """All samples of the named datasets (:data:`DATASETS`) under ``root``, less the held-out images."""
    samples: list[Sample] = []
    for name in datasets:
        if name == "massachusetts":
            d = root / "massachusetts"
            samples += load_png_pairs(d / "images", d / "masks", "*.png", lambda p: p.name,
                                      MASSACHUSETTS_M, resolution_m, "massachusetts", white_is_nodata=True)
        elif name == "massachusetts-tiles":
            d = root / "massachusetts-tiles"
            samples += load_png_pairs(d / "images", d / "masks", "*.png", lambda p: p.name,
                                      MASSACHUSETTS_M, resolution_m, "massachusetts-tiles", white_is_nodata=True)
        elif name in ("shanghai", "shanghai-mul"):
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                samples += load_shanghai(root, resolution_m, Path(tmp), "mul" if name == "shanghai-mul" else "pan")
        elif name == "deepglobe":
            d = root / "deepglobe" / "train"
            samples += load_png_pairs(d, d, "*_sat.jpg", lambda p: p.name.replace("_sat.jpg", "_mask.png"),
                                      DEEPGLOBE_M, resolution_m, "deepglobe")
        elif name == "spacenet":
            d = root / "chips" / "vegas-solaris"
            samples.append(load_geotiff_pair(d / "image_pan_uint16.tif", d / "road_mask.tif", resolution_m, "spacenet"))
        else:
            raise InputError(name, f"unknown training dataset (known: {', '.join(DATASETS)})")
    if not samples:
        raise InputError(root, f"no training samples found for {', '.join(datasets)}")
    return samples


def load_unlabelled(root: Path, datasets: list[str], resolution_m: float) -> list[Sample]:
    """Imagery without labels for pretraining: DeepGlobe's valid and test images when
    ``deepglobe`` is named (their masks are all zero and must not be trained on as roads)."""
    samples = []
    if "deepglobe" in datasets:
        for img_path in sorted([*(root / "deepglobe" / "valid").glob("*_sat.jpg"),
                                *(root / "deepglobe" / "test").glob("*_sat.jpg")]):
            img = Image.open(img_path)
            image, _, _ = _resize_pair(img, Image.new("L", img.size), DEEPGLOBE_M / resolution_m, False)
            samples.append(Sample(f"deepglobe-unlabelled/{img_path.name}", image, np.zeros(image.shape[1:], np.uint8)))
    return samples


def load_image(image_path: str | Path, resolution_m: float) -> Sample:
    """Any georeferenced image over its footprint at ``resolution_m``, without labels (mask all 0)."""
    from osmgap.model.labels import footprint_grid
    from osmgap.sources.imagery import WindowReader, open_imagery

    imagery = open_imagery(image_path)
    grid, _ = footprint_grid(imagery, resolution_m)
    with WindowReader(imagery, grid) as reader:
        image, valid = reader.read_all()
    return Sample(f"imagery/{Path(image_path).name}", image, np.zeros(image.shape[1:], np.uint8),
                  None if valid.all() else valid)


def load_labelled_image(image_path: str | Path, labels_path: str | Path, resolution_m: float,
                        bands: tuple[int, ...] | None = None) -> Sample:
    """Any georeferenced image (any CRS, 1-4+ bands, 8 or 16 bit, as ``osmgap diff`` reads it, in
    ``bands`` when given) with road labels of any kind ``osmgap.model.labels`` reads: a mask, OSM
    ways (per-class widths) or road centrelines such as SpaceNet's, on a UTM grid at ``resolution_m``.
    No-data is what the image does not show (its nodata, undeclared zero fill, past its edge) and
    what the labels do not say (a mask's nodata, past its edge): neither road nor background."""
    from osmgap.model.labels import (  # reads OSM: imported when used
        area_on_grid,
        footprint_grid,
        open_labels,
        whole_labels,
    )
    from osmgap.sources.imagery import WindowReader, measure_coverage, open_imagery

    imagery = open_imagery(image_path, bands)
    grid, aoi = footprint_grid(imagery, resolution_m)
    shown = measure_coverage(imagery, aoi).area_wgs84  # a blank or all-nodata image teaches nothing: exit 2
    source = open_labels(labels_path, grid, aoi)
    labels = whole_labels(source)
    with WindowReader(imagery, grid) as reader:
        image, valid = reader.read_all()
    valid &= area_on_grid(shown, grid, touched=True) & source.known()
    image[:, ~valid] = 0.0  # dark, as no-data is everywhere (and as a training pack reads it back)
    return Sample(f"pair/{Path(image_path).name}+{Path(labels_path).name}", image, labels.mask * valid,
                  None if valid.all() else valid)
