"""Training packs: real samples survive the trip (masks exactly, pixels within JPEG's error),
bad files are one-line errors, and a pack trains where the GIS stack is missing (a bare GPU
machine), through the same `osmgap train` command."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from osmgap.errors import InputError
from osmgap.model.data import load_training_data
from osmgap.model.pack import read_pack, write_pack

ROOT = Path(__file__).resolve().parents[2]
GIS_STACK = ("rasterio", "pyproj", "shapely", "geopandas", "osmium", "pyogrio", "affine", "sknw", "skimage",
             "networkx", "scipy", "dask", "distributed", "overpy", "cv2",
             "segmentation_models_pytorch", "timm", "torchvision")  # the shipped LinkNet: osmgap.model.linknet


@pytest.fixture(scope="module")
def samples(data):
    """Real samples of each kind: colour crops with no-data (Massachusetts), colour without
    (DeepGlobe), a panchromatic chip (Vegas, three equal bands)."""
    mass = load_training_data(data, ["massachusetts"], 1.0)
    with_nodata = [s for s in mass if s.valid is not None][:2]
    return with_nodata + mass[:2] + load_training_data(data, ["deepglobe"], 1.0)[:1] + \
        load_training_data(data, ["spacenet"], 1.0)


def test_samples_survive_the_pack(samples, tmp_path):
    size = write_pack(samples, tmp_path / "p.npz", 1.0)
    back, resolution = read_pack(tmp_path / "p.npz")
    assert resolution == 1.0 and size == (tmp_path / "p.npz").stat().st_size
    raw = sum(s.image.size for s in samples)  # 8-bit raw would be this many bytes
    assert size < 0.35 * raw
    assert [s.name for s in back] == [s.name for s in samples]
    errors = []
    for s, b in zip(samples, back, strict=True):
        assert b.image.dtype == np.float32 and b.image.shape == s.image.shape
        assert np.array_equal(b.mask, s.mask)
        assert (s.valid is None) == (b.valid is None)
        if s.valid is not None:
            assert np.array_equal(b.valid, s.valid) and not b.image[:, ~b.valid].any()  # no-data stays 0
        errors.append(float(np.abs(b.image - s.image).mean()))
    # JPEG at quality 90: ~4-5/255 on aerial imagery; img-1002, a crop of striped sensor noise in
    # every colour, loses ~20/255 to 4:2:0 chroma and is the worst
    assert np.mean(errors) < 8 / 255 and max(errors) < 25 / 255, errors
    pan = back[-1]
    assert pan.domain == "spacenet" and np.array_equal(pan.image[0], pan.image[1])


@pytest.mark.parametrize("content", [b"", b"not a zip", None])
def test_a_bad_pack_is_an_input_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    if content is None:
        np.savez(path, header=np.frombuffer(b'{"osmgap_pack": 99}', np.uint8))
    else:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_pack(path)
    assert "bad.npz" in str(err.value)
    with pytest.raises(InputError, match="no such"):
        read_pack(tmp_path / "missing.npz")


def test_a_pack_trains_without_the_gis_stack(samples, tmp_path):
    """What a rented GPU machine with torch alone runs: `osmgap train --pack` and `osmgap pretrain
    --pack` with rasterio, pyproj, shapely, smp and the rest unimportable; and a pack of another
    resolution is refused."""
    write_pack(samples[:4], tmp_path / "p.npz", 1.0)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in GIS_STACK))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    cmd = [sys.executable, "-m", "osmgap", "train", "--pack", str(tmp_path / "p.npz"), "--out",
           str(tmp_path / "m.pt"), "--steps", "2", "--batch", "2", "--crop", "64", "--eval-every", "2",
           "--schedule", "cosine-fit", "--max-minutes", "5"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "wrote" in done.stdout and (tmp_path / "m.pt").stat().st_size > 1_000_000
    refused = subprocess.run([*cmd, "--resolution", "0.5", "--overwrite"], env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "p.npz" in refused.stderr and "--resolution 1.0" in refused.stderr
    pretrain = [sys.executable, "-m", "osmgap", "pretrain", "--data", "", "--pack", str(tmp_path / "p.npz"), "--out",
                str(tmp_path / "enc.pt"), "--steps", "2", "--batch", "2", "--crop", "64"]
    done = subprocess.run(pretrain, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "wrote" in done.stdout and (tmp_path / "enc.pt").stat().st_size > 1_000_000


def test_out_that_is_a_directory_is_refused_before_loading(tmp_path, capsys):
    from osmgap.cli import main

    assert main(["train", "--data", "deepglobe", "--write-pack", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "is a directory" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_pack_onto_an_existing_file_needs_overwrite(tmp_path, capsys):
    """--out names a file that exists (here a model someone mistyped for the pack): it is kept, not
    replaced by the pack, unless --overwrite says so."""
    from osmgap.cli import main

    model = tmp_path / "model.pt"
    model.write_bytes(b"a checkpoint of days of training")
    assert main(["train", "--data", "deepglobe", "--write-pack", "--out", str(model)]) == 2
    err = capsys.readouterr().err
    assert str(model) in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == b"a checkpoint of days of training"
    assert main(["train", "--data", "deepglobe", "--write-pack", "--out", str(model), "--overwrite"]) == 0
    assert len(read_pack(model)[0]) == 4  # DeepGlobe's four labelled pairs


def test_a_pack_and_cross_prediction_are_refused_together(tmp_path, capsys):
    from osmgap.cli import main

    assert main(["train", "--write-pack", "--aoi", "paris-1447", "--folds", "2", "--out", str(tmp_path / "p.npz")]) == 2
    assert "cross-prediction" in capsys.readouterr().err and not any(tmp_path.iterdir())
