"""A cross-prediction says what it made: the fold models' IoU is labelled as measured on their
own training tiles, the stitched prediction's held-out IoU against the OSM labels is printed and
recorded, and the closing lines say what probability.tif is and how to look at it."""
import json

from osmgap.cli import main
from tests.conftest import PROJECT


def test_cross_prediction_reports_its_held_out_iou_and_what_to_do(tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["train", "--aoi", str(PROJECT / "sample_aoi" / "paris-1447"), "--folds", "2", "--steps", "1",
                 "--batch", "1", "--crop", "64", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "val IoU" not in said and "IoU on training images" in said
    assert "held-out IoU" in said and "probability.tif" in said and "QGIS" in said
    held = json.loads((out / "folds.json").read_text())["held_out_scores"]
    assert 0 <= held["iou"] <= 1 and f"held-out IoU against the OSM labels {held['iou']:.4f}" in said
