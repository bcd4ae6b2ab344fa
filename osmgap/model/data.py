"""Training samples from the real datasets beside the project, at one ground resolution.

Every sample is an (image, mask) pair: image float32 (3, H, W) in [0, 1], mask uint8 (H, W) in
{0, 1}, resampled to the model's resolution so that a road is as many pixels wide in training
as at inference. Validation images are chosen by a hash of their name, so the split never
changes between runs or machines.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from osmgap.core.aoi import utm_crs_for
from osmgap.core.grid import grid_over
from osmgap.errors import InputError
from osmgap.sources.imagery import WindowReader, open_imagery

# Nominal ground resolution of the datasets that carry no georeference.
MASSACHUSETTS_M = 1.0
DEEPGLOBE_M = 0.5


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (3, H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) uint8 0/1


def is_validation(name: str, fraction: float = 0.1) -> bool:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def _resize_pair(img: Image.Image, mask: Image.Image, scale: float) -> tuple[np.ndarray, np.ndarray]:
    if abs(scale - 1.0) > 1e-6:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BILINEAR)
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    image = np.asarray(img.convert("RGB"), np.float32).transpose(2, 0, 1) / 255.0
    m = np.asarray(mask.convert("L"))
    return image, (m > 127).astype(np.uint8)


def load_png_pairs(image_dir: Path, mask_dir: Path, image_glob: str, mask_name, native_m: float,
                   resolution_m: float, prefix: str) -> list[Sample]:
    """Pairs of plain images and masks (Massachusetts, DeepGlobe)."""
    samples = []
    for img_path in sorted(image_dir.glob(image_glob)):
        mask_path = mask_dir / mask_name(img_path)
        if not mask_path.exists():
            continue
        image, mask = _resize_pair(Image.open(img_path), Image.open(mask_path), native_m / resolution_m)
        samples.append(Sample(f"{prefix}/{img_path.name}", image, mask))
    return samples


def load_geotiff_pair(image_path: Path, mask_path: Path, resolution_m: float, prefix: str) -> Sample:
    """A georeferenced chip and its mask, reprojected to UTM at ``resolution_m``."""
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


def load_training_data(root: Path, datasets: list[str], resolution_m: float) -> list[Sample]:
    """All samples of the named datasets (massachusetts, deepglobe, spacenet) under ``root``."""
    samples: list[Sample] = []
    for name in datasets:
        if name == "massachusetts":
            d = root / "massachusetts"
            samples += load_png_pairs(d / "images", d / "masks", "*.png", lambda p: p.name,
                                      MASSACHUSETTS_M, resolution_m, "massachusetts")
        elif name == "deepglobe":
            d = root / "deepglobe" / "train"
            samples += load_png_pairs(d, d, "*_sat.jpg", lambda p: p.name.replace("_sat.jpg", "_mask.png"),
                                      DEEPGLOBE_M, resolution_m, "deepglobe")
        elif name == "spacenet":
            d = root / "chips" / "vegas-solaris"
            samples.append(load_geotiff_pair(d / "image_pan_uint16.tif", d / "road_mask.tif", resolution_m, "spacenet"))
        else:
            raise InputError(name, "unknown training dataset (known: massachusetts, deepglobe, spacenet)")
    if not samples:
        raise InputError(root, f"no training samples found for {', '.join(datasets)}")
    return samples


def load_labelled_image(image_path: str | Path, labels_path: str | Path, resolution_m: float) -> Sample:
    """Any georeferenced image (any CRS, 1-4+ bands, 8 or 16 bit, as ``osmgap diff`` reads it) with
    road labels of any kind ``osmgap.model.labels`` reads: a mask, OSM ways (per-class widths) or road
    centrelines such as SpaceNet's, on a UTM grid at ``resolution_m``."""
    from osmgap.model.labels import footprint_grid, load_labels  # labels reads OSM: imported when used

    imagery = open_imagery(image_path)
    grid, aoi = footprint_grid(imagery, resolution_m)
    labels = load_labels(labels_path, grid, aoi)
    with WindowReader(imagery, grid) as reader:
        image, valid = reader.read_all()
    return Sample(f"pair/{Path(image_path).name}+{Path(labels_path).name}", image, labels.mask * valid)
