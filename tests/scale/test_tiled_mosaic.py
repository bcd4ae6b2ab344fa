"""A tiled run gives the uncut run's suggestions, not only its probabilities: on a mosaic of the
real Paris chip cut by many seams, the stitched graph's edges are the uncut graph's vertex for
vertex (conflation reacts to where vertices lie: with tiles that simplified their own cuts of a
line, a 6 x 6 mosaic in 224 px tiles gave 94 suggestions instead of 93)."""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import rasterio
import shapely

from osmgap.cli import main
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.scale.tiling import tiled_graph

REPEATS = 3  # 393 x 591 px at 1 m
TILE_PX = 96  # 35 graph tiles: seams every 96 m, across roads and near junctions


def _mosaic(paris: Path, dst: Path) -> tuple[Path, Path, str]:
    """The chip repeated REPEATS x REPEATS and its real OSM ways copied to match, as
    bench/scale.py builds a large AOI; returns (imagery, OSM, bbox)."""
    with rasterio.open(paris / "image.tif") as src:
        data, t, profile = src.read(), src.transform, src.profile
    n, (_, h, w) = REPEATS, data.shape
    image = dst / "mosaic.tif"
    with rasterio.open(image, "w", **{**profile, "width": w * n, "height": h * n}) as out:
        for i in range(n):
            for j in range(n):
                out.write(data, window=rasterio.windows.Window(j * w, i * h, w, h))
    doc = json.loads((paris / "osm_roads.geojson").read_text())
    features = [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": [
                    [x + j * w * t.a, y + i * h * t.e] for x, y, *_ in f["geometry"]["coordinates"]]},
                 "properties": {**f["properties"], "osm_id": int(f["properties"]["osm_id"]) * 100 + i * n + j}}
                for i in range(n) for j in range(n) for f in doc["features"]]
    osm = dst / "osm.geojson"
    osm.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    margin = 2e-5  # inside the mosaic, as the sample AOI stays inside its chip
    bbox = (t.c + margin, t.f + n * h * t.e + margin, t.c + n * w * t.a - margin, t.f - margin)
    return image, osm, ",".join(f"{v:.7f}" for v in bbox)


def _edges(graph) -> collections.Counter:
    """Each edge's vertices, in either direction."""
    out: collections.Counter = collections.Counter()
    for *_, d in graph.edges(data=True):
        coords = tuple(map(tuple, shapely.get_coordinates(d["geometry"]).tolist()))
        out[min(coords, coords[::-1])] += 1
    return out


def test_tiled_mosaic_gives_the_uncut_suggestions(paris, tmp_path):
    image, osm, bbox = _mosaic(paris, tmp_path)
    args = ["diff", "--aoi", bbox, "--imagery", str(image), "--osm", str(osm), "--tile", "128", "--overlap", "16"]
    assert main([*args, "--out", str(tmp_path / "uncut")]) == 0
    assert main([*args, "--out", str(tmp_path / "tiled"), "--tile-size", str(TILE_PX), "--workers", "0",
                 "--work-dir", str(tmp_path / "work")]) == 0
    uncut, tiled = (json.loads((tmp_path / d / "suggestions.geojson").read_text())["features"] for d in ("uncut", "tiled"))
    assert len(uncut) >= 5
    assert tiled == uncut  # ids, geometries, lengths, confidences: all of it
    summaries = [json.loads((tmp_path / d / "summary.json").read_text())["conflation"] for d in ("uncut", "tiled")]
    assert summaries[1]["tolerance_m"] == summaries[0]["tolerance_m"]

    # the graph behind them: every edge the uncut graph's, vertex for vertex (float coordinates equal)
    with rasterio.open(tmp_path / "uncut" / "probability.tif") as src:
        prob = (src.read(1) / np.float32(255)).astype(np.float32)
        grid = Grid(src.transform, src.width, src.height, src.crs)
    params = GraphParams(threshold=0.4)
    whole = extract_graph(ProbabilityRaster(prob, grid.transform, grid.crs), params)
    cut = tiled_graph(lambda w: prob[w[0]:w[2], w[1]:w[3]], grid, params, TILE_PX, 96)
    assert whole.number_of_edges() > 50
    assert _edges(cut) == _edges(whole)
