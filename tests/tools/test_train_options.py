"""`osmgap train` refuses option mixes it would silently ignore, an --out that holds an earlier
run, and labels without a road, each in one line before any training; a Ctrl-C names the state
file and the command that resumes it."""
import json

from osmgap.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_imagery_and_osm_without_an_aoi_are_refused_not_ignored(paris, tmp_path, capsys):
    out = tmp_path / "m.pt"
    for given in (["--imagery", str(paris / "image.tif")], ["--osm", str(paris / "osm_roads.geojson")]):
        assert main(["train", *given, "--data", "deepglobe", "--steps", "1", "--out", str(out)]) == 2
        err = _one_line(capsys)
        assert "--pair IMAGE=LABELS" in err and "--aoi" in err and "--folds" in err
    assert not out.exists()


def test_an_aoi_without_folds_or_with_pairs_names_the_right_options(paris, tmp_path, capsys):
    aoi = str(paris / "aoi.geojson")
    assert main(["train", "--aoi", aoi, "--imagery", str(paris / "image.tif"), "--steps", "1",
                 "--out", str(tmp_path / "m.pt")]) == 2
    err = _one_line(capsys)
    assert "--folds" in err and "--pair IMAGE=LABELS" in err
    assert main(["train", "--data", "", "--pair", f"{paris / 'image.tif'}={paris / 'osm_roads.geojson'}",
                 "--aoi", aoi, "--folds", "2", "--steps", "1", "--out", str(tmp_path / "cv")]) == 2
    err = _one_line(capsys)
    assert err.startswith("osmgap: error: --pair") and "--candidates" not in err
    assert main(["train", "--aoi", aoi, "--folds", "2", "--steps", "1", "--out", str(tmp_path / "cv")]) == 2
    err = _one_line(capsys)  # a plain AOI file needs --imagery; train has no --candidates or --gps
    assert "--imagery" in err and "--candidates" not in err and "--gps" not in err
    assert sorted(tmp_path.iterdir()) == []


def test_an_existing_out_is_refused_unless_resumed_or_overwritten(paris, tmp_path, capsys):
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier model")
    pair = f"{paris / 'image.tif'}={paris / 'osm_roads.geojson'}"
    assert main(["train", "--data", "", "--pair", pair, "--steps", "1", "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert "--overwrite" in err and f"--resume {out}.state" in err and "another --out" in err
    assert out.read_bytes() == b"an earlier model"
    folds = tmp_path / "cv"
    folds.mkdir()
    (folds / "probability.tif").write_bytes(b"an earlier cross-prediction")
    assert main(["train", "--aoi", str(paris), "--folds", "2", "--steps", "1", "--out", str(folds)]) == 2
    assert "--overwrite" in _one_line(capsys)
    assert (folds / "probability.tif").read_bytes() == b"an earlier cross-prediction"


def test_cross_prediction_on_labels_without_a_road_is_refused(paris, tmp_path, capsys):
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    out = tmp_path / "cv"
    assert main(["train", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(paris / "image.tif"),
                 "--osm", str(empty), "--folds", "2", "--steps", "1", "--out", str(out)]) == 2
    assert "no road" in _one_line(capsys)
    assert not out.exists()


def test_ctrl_c_names_the_state_file_and_the_resume_command(paris, tmp_path, capsys, monkeypatch):
    import osmgap.model.train

    out = tmp_path / "m.pt"

    def stopped(samples, cfg, out, log, **kw):
        out.write_bytes(b"best so far")
        (tmp_path / "m.pt.state").write_bytes(b"state")
        raise KeyboardInterrupt

    monkeypatch.setattr(osmgap.model.train, "train", stopped)
    assert main(["train", "--data", "", "--pair", f"{paris / 'image.tif'}={paris / 'osm_roads.geojson'}",
                 "--steps", "6", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"{out}.state" in err and f"--resume {out}.state" in err and "osmgap: interrupted" in err
