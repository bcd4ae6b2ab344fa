"""`osmgap eval` on real chips: label kinds, the scores' wiring, the table/JSON and bad inputs."""
import json
from pathlib import Path

import numpy as np
import pytest

from osmgap.cli import main
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.jobs.eval import score_roads
from osmgap.model.labels import footprint_grid, load_labels
from osmgap.sources.imagery import open_imagery


def grid_and_aoi(image, resolution_m=1.0):
    return footprint_grid(open_imagery(image), resolution_m)


def test_mask_and_centreline_labels_agree_on_vegas(vegas):
    """The Vegas chip's SpaceNet mask and its centrelines describe the same roads."""
    grid, aoi = grid_and_aoi(vegas / "image_pan_uint16.tif")
    from_mask = load_labels(vegas / "road_mask.tif", grid, aoi)
    from_lines = load_labels(vegas / "roads.geojson", grid, aoi)
    assert (from_mask.kind, from_lines.kind) == ("mask", "lines")
    both = np.count_nonzero(from_mask.mask & from_lines.mask)
    assert both / np.count_nonzero(from_mask.mask | from_lines.mask) > 0.4
    km_lines = sum(d["length"] for *_, d in from_lines.graph.edges(data=True)) / 1000
    assert 0.9 < km_lines < 1.1  # the README's 1.03 km of centrelines, clipped to the chip


def test_the_labels_themselves_score_perfectly(paris):
    grid, aoi = grid_and_aoi(paris / "image.tif")
    labels = load_labels(paris / "osm_roads.geojson", grid, aoi)
    assert labels.kind == "osm" and labels.mask.any()
    perfect = score_roads(ProbabilityRaster(labels.mask.astype(np.float32), grid.transform, grid.crs), labels, 0.5)
    assert perfect["iou"] == 1.0 and perfect["relaxed_f1@1m"] == 1.0
    # the graph scores compare OSM's centrelines with the skeleton of their own drawn mask: a
    # skeleton runs within a metre or two of the centreline, so both are high but not exactly 1
    assert perfect["apls"] > 0.7 and perfect["topo_f1"] > 0.8
    blank = score_roads(ProbabilityRaster(np.zeros_like(labels.mask, np.float32), grid.transform, grid.crs), labels, 0.5)
    assert blank["iou"] == 0.0 and blank["apls"] == 0.0 and blank["topo_recall"] == 0.0


def test_cli_prints_the_table_and_writes_json(paris, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(paris / "osm_roads.geojson"),
                 "--json", str(out), "--slack-m", "2"]) == 0
    printed = capsys.readouterr().out
    for label in ("pixel IoU", "relaxed precision (2 m)", "APLS", "TOPO F1"):
        assert label in printed
    scores = json.loads(out.read_text())
    assert scores["labels_kind"] == "osm" and scores["resolution_m"] == 1.0
    assert scores["views"] == (8 if scores["device"].startswith("cuda") else 2)  # as a diff runs the model
    for key in ("iou", "f1", "relaxed_precision@2m", "relaxed_recall@2m", "apls", "topo_precision", "topo_recall"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["relaxed_precision@2m"] >= scores["precision"]  # slack can only help
    assert scores["iou"] > 0.1  # the shipped model finds some of Paris's roads


@pytest.mark.parametrize("name, content, problem", [
    ("missing.geojson", None, "labels file not found"),
    ("roads.txt", "not a road file", "not a mask raster, OSM file or line file"),
    ("mask.tif", "not a tiff", "not a raster rasterio can read"),
])
def test_bad_labels_exit_2_and_write_nothing(paris, tmp_path, capsys, name, content, problem):
    out = tmp_path / "scores.json"
    if content is not None:
        (tmp_path / name).write_text(content)
    code = main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(tmp_path / name), "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and problem in err and name in err and not out.exists()


@pytest.mark.parametrize("labels, problem", [
    ("chips/vegas-solaris/road_mask.tif", "the mask does not overlap the image"),  # a mask raster
    ("chips/vegas-solaris/roads.geojson", "none of its"),  # SpaceNet centrelines
    ("osm/helsinki.osm.pbf", "no road in or near the image"),  # OSM
    ("osm/kotka.osm.pbf", "no road in or near the image"),
])
def test_labels_of_another_place_exit_2(data, paris, tmp_path, capsys, labels, problem):
    """Scored against labels of elsewhere the model looked perfect (recall 1.0 of nothing). The
    advice is eval's: OSM labels were told to give "an OSM extract of the AOI (or --osm
    overpass)", a diff's words, and eval has neither an AOI nor --osm."""
    out = tmp_path / "scores.json"
    code = main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(data / labels), "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and problem in err and labels.split("/")[-1] in err and not out.exists(), err
    assert "--osm" not in err and "AOI" not in err and "are these the labels of this image?" in err, err


def test_line_labels_with_z_and_a_broken_vertex_are_scored(paris, tmp_path, caplog):
    """3D centrelines (Z 0, as many exports write them) with one NaN vertex: the broken line is
    left out with a warning and the rest scored as the same lines in 2D are (it was an internal error)."""
    roads = json.loads((paris / "osm_roads.geojson").read_text())
    for f in roads["features"]:
        f["properties"] = {}  # plain lines, not OSM
        f["geometry"]["coordinates"] = [c[:2] for c in f["geometry"]["coordinates"]]
    flat = tmp_path / "flat.geojson"
    flat.write_text(json.dumps(roads))
    for f in roads["features"]:
        f["geometry"]["coordinates"] = [[x, y, 0.0] for x, y in f["geometry"]["coordinates"]]
    roads["features"][3]["geometry"]["coordinates"][1] = [float("nan"), float("nan"), 0.0]
    broken = tmp_path / "broken.geojson"
    broken.write_text(json.dumps(roads))
    scores = {}
    for name in ("flat", "broken"):
        assert main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(tmp_path / f"{name}.geojson"),
                     "--json", str(tmp_path / f"{name}.json")]) == 0
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert "1 line(s) with a NaN or infinite coordinate left out" in caplog.text
    assert scores["broken"]["truth_km"] < scores["flat"]["truth_km"]  # one way fewer
    assert 0.1 < scores["broken"]["iou"] <= scores["flat"]["iou"] + 0.05


def test_a_truncated_mask_is_refused_before_the_model_runs(paris, tmp_path, capsys, monkeypatch):
    """A mask cut short (a broken download) was an internal error from the warp, after the model."""
    from osmgap.jobs import eval as eval_job

    mask = tmp_path / "mask.tif"
    whole = (paris.parent.parent / "chips" / "vegas-solaris" / "road_mask.tif").read_bytes()
    mask.write_bytes(whole[: len(whole) // 2])
    monkeypatch.setattr(eval_job, "predict_footprint", lambda *a: pytest.fail("the model ran"))
    code = main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(mask)])
    err = capsys.readouterr().err
    assert code == 2 and "mask.tif: the mask cannot be read whole" in err, err


def test_bad_slack_is_refused(paris, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # argparse's own one-line error
        main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(paris / "osm_roads.geojson"),
              "--slack-m", "one"])
    assert exc.value.code == 2 and "--slack-m" in capsys.readouterr().err


def test_a_multispectral_chip_is_scored_in_the_bands_asked_for(data, tmp_path, caplog):
    """A real WorldView-3 8-band chip (Shanghai img1700, a bridge) read in the bands its file tags
    red, green and blue (coastal, blue, green in truth) shows the model nothing it knows; read in
    true colour (--bands 5,3,2) it sees the roads as in the chip's panchromatic image."""
    chips = data / "chips" / "shanghai"
    image, labels = chips / "AOI_4_Shanghai_img1700_mul.tif", chips / "AOI_4_Shanghai_img1700_roads.geojson"
    scores = {}
    for name, extra in (("guessed", []), ("true colour", ["--bands", "5,3,2"])):
        out = tmp_path / f"{name}.json"
        assert main(["eval", "--imagery", str(image), "--labels", str(labels), "--json", str(out), *extra]) == 0
        scores[name] = json.loads(out.read_text())
        said = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
        caplog.clear()
        assert ("8 bands" in said and "--bands 5,3,2" in said) == (name == "guessed")
    assert scores["guessed"]["bands"] == [1, 2, 3] and scores["true colour"]["bands"] == [5, 3, 2]
    assert scores["true colour"]["relaxed_f1@3m"] > max(0.5, scores["guessed"]["relaxed_f1@3m"] + 0.3)


def _model_output(image):
    """The shipped model's probabilities over a real chip (one view: cheap) and their graph."""
    from osmgap.graph.skeleton import GraphParams, extract_graph
    from osmgap.jobs.eval import predict_footprint
    from osmgap.model.nets import load_checkpoint, pick_device

    device = pick_device()
    net, meta = load_checkpoint(None, device)
    prob, valid, grid, aoi = predict_footprint(image, net, meta, device, views=1)
    return prob, valid, grid, aoi, meta.threshold, extract_graph(prob, GraphParams(threshold=meta.threshold))


@pytest.mark.parametrize("chip, image, labels", [
    ("paris", "image.tif", "osm_roads.geojson"),  # OSM ways drawn per class
    ("vegas", "image_pan_uint16.tif", "roads.geojson"),  # SpaceNet centrelines
    ("vegas", "image_pan_uint16.tif", "road_mask.tif"),  # a mask raster: its graph is extracted by tiles too
])
def test_scores_counted_by_tiles_add_up_to_the_whole_images(request, chip, image, labels):
    """An image too large to hold whole is scored tile by tile: on real chips cut into 64 px
    tiles (seams through every street), the pixel and relaxed scores are the whole image's
    exactly, and so are the graph scores where the labels are lines; a mask's graph, stitched
    from tiles, keeps its length (and its pixels move by one)."""
    from osmgap.jobs.eval import score_in_tiles
    from osmgap.model.labels import open_labels

    root = request.getfixturevalue(chip)
    prob, valid, grid, aoi, threshold, proposal = _model_output(root / image)
    whole = score_roads(prob, load_labels(root / labels, grid, aoi), threshold, (1.0, 3.0), valid)
    assert 0.05 < whole["iou"] < 0.95 and whole["relaxed_f1@3m"] > whole["f1"]  # not a trivial case
    source = open_labels(root / labels, grid, aoi)
    masks: list = []

    def read_valid(window):
        masks.append(window)
        r0, c0, r1, c1 = window
        return valid[r0:r1, c0:c1]

    tiled, pixels = score_in_tiles(prob, proposal, source, read_valid, threshold, (1.0, 3.0), tile_px=64)
    assert len(masks) >= 6 and pixels == int(valid.sum())
    # a mask raster resampled window by window by GDAL (nearest) differs from the whole in 1 of
    # Vegas's 4,115 road pixels, where a pixel centre falls on a source pixel's edge
    exact = pytest.approx(whole["iou"], abs=1e-3) if source.kind == "mask" else whole["iou"]
    assert tiled["iou"] == exact and tiled["proposal_km"] == whole["proposal_km"]
    for key in ("precision", "recall", "f1", "relaxed_precision@1m", "relaxed_recall@1m",
                "relaxed_precision@3m", "relaxed_recall@3m", "relaxed_f1@3m"):
        assert tiled[key] == (pytest.approx(whole[key], abs=1e-3) if source.kind == "mask" else whole[key]), key
    if source.kind == "mask":
        assert tiled["truth_km"] == pytest.approx(whole["truth_km"], rel=0.05)
    else:
        assert tiled["truth_km"] == whole["truth_km"]
    # per tile, as SpaceNet's per chip: APLS the tiles' mean, TOPO 100 seeds for each tile (not
    # 100 in all: on a chip this small, only the draw of seeds differs)
    assert tiled["apls_windows"] >= 4 and 0.0 <= tiled["apls"] <= 1.0
    assert tiled["topo_f1"] == pytest.approx(whole["topo_f1"], abs=0.06)


def test_an_image_too_large_to_hold_whole_is_scored_as_a_tiled_diff_runs(paris, monkeypatch, tmp_path):
    """Above the size a diff tiles itself at, eval runs the model and the scores by tiles (here
    the threshold and the tiles shrunk so the real Paris chip crosses them): the same scores as
    the untiled run but for float rounding and the stitched graph, and no work files left."""
    import tempfile

    import osmgap.jobs.eval as eval_job
    from osmgap.scale.options import ScaleOptions

    untiled = eval_job.evaluate_imagery(paris / "image.tif", paris / "osm_roads.geojson", views=1)
    monkeypatch.setattr(eval_job, "self_tiling", lambda pixels: ScaleOptions(workers=0, tile_px=64, temporary=True))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    tiled = eval_job.evaluate_imagery(paris / "image.tif", paris / "osm_roads.geojson", views=1)
    assert tiled.get("tiled") and "tiled" not in untiled
    assert tiled["pixels"] == untiled["pixels"] and tiled["truth_km"] == untiled["truth_km"]
    for key in ("iou", "relaxed_f1@1m", "relaxed_f1@3m"):
        assert tiled[key] == pytest.approx(untiled[key], abs=2e-3), key
    for key in ("apls", "topo_f1"):
        assert tiled[key] == pytest.approx(untiled[key], abs=0.05), key
    assert tiled["proposal_km"] == pytest.approx(untiled["proposal_km"], rel=0.03)
    assert list(tmp_path.iterdir()) == []
    from osmgap.tools.eval import format_table

    assert f"APLS (mean of {tiled['apls_windows']:.0f} tiles)" in format_table(tiled, (1.0, 3.0))
    assert "APLS (mean" not in format_table(untiled, (1.0, 3.0))


def test_labels_with_no_road_give_the_false_road_per_km2_and_say_the_rest_is_void(paris, tmp_path, capsys):
    """Empty labels used to score TOPO precision / recall / F1 1.0000 with no word: a user read a
    perfect model. The false road per km2 is the figure, and the run says why the others mean nothing."""
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:4326"}}, '
                     '"features": []}')
    out = tmp_path / "scores.json"
    assert main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(empty), "--views", "1",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    scores = json.loads(out.read_text())
    assert scores["truth_km"] == 0 and scores["proposal_km"] > 0.1  # the model sees Paris's streets
    assert scores["false_road_km_per_km2"] == pytest.approx(scores["proposal_km"] / scores["area_km2"])
    assert "false road, km per km2" in printed and "the labels hold no road" in printed
    assert any("recall, APLS and TOPO say nothing" in w for w in scores["warnings"])


def test_an_image_the_model_was_trained_on_is_said(paris, tmp_path, capsys):
    """A model fine-tuned on the very image it is then scored on looked far better than the
    shipped one, and nothing said why. osmgap train's record beside the model names its images."""
    model = tmp_path / "mine.pt"
    model.write_bytes((Path(__file__).parents[2] / "osmgap" / "model" / "weights" / "default.pt").read_bytes())
    assert main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(paris / "osm_roads.geojson"),
                 "--model", str(model), "--views", "1"]) == 0
    assert "training set" not in capsys.readouterr().out  # no record: nothing to say
    Path(f"{model}.json").write_text(json.dumps({"train_names": ["pair/image.tif+osm_roads.geojson"]}))
    assert main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(paris / "osm_roads.geojson"),
                 "--model", str(model), "--views", "1", "--slack-m", "3,10"]) == 0
    printed = capsys.readouterr().out
    assert "an image named image.tif is in the training set of" in printed and "optimistic" in printed
    assert "--slack-m 3,10" not in printed  # scored at OSM's offset already: no note
