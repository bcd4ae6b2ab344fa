"""A training pack: the loaded training samples in one file, to train where the data and the GIS
stack are not (a rented GPU machine with torch alone, no GDAL, no data directory).

``osmgap train --write-pack --out FILE`` writes what ``--data``/``--pair`` load (held-out
images are never loaded, so never packed); ``osmgap train --pack FILE`` trains on it. Images are
the stretched [0, 1] samples quantised to 8 bits and stored as JPEG at quality 90 (colour with
4:2:0 chroma, a panchromatic image's equal bands once): the data directory's 67 Mpx then fit in
~36 MB instead of ~200 MB raw, small enough to travel to a rented GPU. It is lossy: on these
images the mean absolute error is ~4-6/255 (~20/255 on one crop of striped sensor noise), of the order of the training noise augmentation
(up to 10/255) and of the JPEG compression much user imagery (XYZ tiles) already carries.
Masks and no-data masks are lossless PNGs. The container is a plain ``.npz`` read without pickle.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from osmgap.core.atomic import write_bytes_atomic
from osmgap.errors import InputError, nesting_refused, one_line
from osmgap.model.data import Sample

PACK_VERSION = 1
JPEG_QUALITY = 90


def _png(array: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(array.astype(bool)).save(buf, format="PNG", optimize=True)
    return np.frombuffer(buf.getvalue(), np.uint8)


def _jpeg(pixels: np.ndarray) -> np.ndarray:
    """(h, w) or (h, w, 3) pixels in [0, 1] as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(
        buf, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")
    return np.frombuffer(buf.getvalue(), np.uint8)


def _image_parts(image: np.ndarray) -> list[np.ndarray]:
    """A colour image as one JPEG, a panchromatic one (equal bands) as one grey JPEG, any other
    band count one grey JPEG per band."""
    if all(np.array_equal(image[0], band) for band in image[1:]):
        return [_jpeg(image[0])]
    if image.shape[0] == 3:
        return [_jpeg(image.transpose(1, 2, 0))]
    return [_jpeg(band) for band in image]


def _image(parts: list[np.ndarray], bands: int) -> np.ndarray:
    decoded = [_decode(p) for p in parts]
    if len(decoded) == 1 and decoded[0].ndim == 3:  # colour
        return decoded[0].transpose(2, 0, 1)
    if len(decoded) == 1:  # panchromatic: its bands are equal
        return np.repeat(decoded[0][None], bands, axis=0)
    return np.stack(decoded)


def _decode(data: np.ndarray) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data.tobytes())))


def write_pack(samples: list[Sample], path: str | Path, resolution_m: float) -> int:
    """Write ``samples`` (at ``resolution_m``) to ``path`` atomically; returns its size in bytes."""
    arrays: dict[str, Any] = {}  # Any: numpy's stubs read a **kwargs of arrays as allow_pickle
    parts_of: list[int] = []
    for i, s in enumerate(samples):
        parts = _image_parts(s.image)
        for p, part in enumerate(parts):
            arrays[f"image_{i}_{p}"] = part
        arrays[f"mask_{i}"] = _png(s.mask)
        if s.valid is not None:
            arrays[f"valid_{i}"] = _png(s.valid)
        parts_of.append(len(parts))
    header = {"osmgap_pack": PACK_VERSION, "resolution_m": resolution_m, "names": [s.name for s in samples],
              "bands": [int(s.image.shape[0]) for s in samples], "parts": parts_of}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(Path(path), buf.getvalue())
    return len(buf.getvalue())


def read_pack(path: str | Path) -> tuple[list[Sample], float]:
    """The samples of a pack written by :func:`write_pack` and their ground resolution (m/px)."""
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        raise InputError(path, "not an osmgap training pack (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            with nesting_refused(path, "training pack header JSON"):
                header = json.loads(npz["header"].tobytes())
            if header.get("osmgap_pack") != PACK_VERSION:
                raise InputError(path, f"not an osmgap training pack of version {PACK_VERSION} "
                                       f"(found {header.get('osmgap_pack')!r})")
            samples = []
            for i, (name, bands, parts) in enumerate(zip(header["names"], header["bands"], header["parts"], strict=True)):
                mask = _decode(npz[f"mask_{i}"]).astype(np.uint8)
                valid = _decode(npz[f"valid_{i}"]).astype(bool) if f"valid_{i}" in npz else None
                image = _image([npz[f"image_{i}_{p}"] for p in range(parts)], bands).astype(np.float32) / 255
                if valid is not None:
                    image *= valid  # no-data stays 0, whatever JPEG's ringing left there
                samples.append(Sample(name, image, mask, valid))
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, "no such training pack") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(path, f"not a readable osmgap training pack ({one_line(exc)[:120]})") from None
    if not samples:
        raise InputError(path, "the training pack holds no samples")
    return samples, float(header["resolution_m"])
