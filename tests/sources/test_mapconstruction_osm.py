"""`--osm` reads the mapconstruction graph GPS benchmarks ship (real Chicago UIC files), as a folder
or as VERTICES,EDGES, with its CRS from --gps-crs; bad forms exit 2 naming the file, writing nothing."""
from __future__ import annotations

import json
import shutil

import pytest
from shapely.geometry import box

from osmgap.cli import main
from osmgap.core.aoi import Aoi, reproject
from osmgap.core.datamodel import WGS84
from osmgap.errors import InputError
from osmgap.sources.osm import load_osm

CRS = "EPSG:32616"
CAMPUS = box(444700.0, 4635000.0, 445700.0, 4636100.0)  # metres, EPSG:32616


@pytest.fixture(scope="module")
def campus() -> Aoi:
    return Aoi(reproject(CAMPUS, CRS, WGS84), name="uic", source="test")


def test_folder_and_file_pair_read_the_same_ways(chicago_gps, campus):
    folder = load_osm(str(chicago_gps), campus, graph_crs=CRS)
    pair = load_osm(f"{chicago_gps / 'chicago_vertices_osm.txt'},{chicago_gps / 'chicago_edges_osm.txt'}", campus,
                    graph_crs=CRS)
    assert len(folder.ways) == len(pair.ways) > 50
    assert sorted(folder.ways.osm_id) == sorted(pair.ways.osm_id)
    inside = folder.ways.to_crs(CRS).geometry.within(CAMPUS.buffer(1.0))
    assert inside.all()  # clipped to the AOI
    assert set(folder.ways.highway) == {"road"}


def test_bad_graph_specs_name_the_file(chicago_gps, campus, tmp_path):
    with pytest.raises(InputError, match="--gps-crs"):
        load_osm(str(chicago_gps), campus)
    with pytest.raises(InputError, match="not found"):
        load_osm(f"{chicago_gps / 'chicago_vertices_osm.txt'},{tmp_path / 'nope.txt'}", campus, graph_crs=CRS)
    with pytest.raises(InputError, match="one \\*vertices\\*.txt"):
        load_osm(str(tmp_path), campus, graph_crs=CRS)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x_vertices.txt").write_text("not,a,graph\n")
    shutil.copy(chicago_gps / "chicago_edges_osm.txt", bad / "x_edges.txt")
    with pytest.raises(InputError, match="not a mapconstruction graph"):
        load_osm(str(bad), campus, graph_crs=CRS)
    # the real UTM graph said to be in lon/lat (one --gps-crs for WGS84 traces): refused, not read as nowhere
    with pytest.raises(InputError, match="chicago_vertices_osm.txt: vertex 1: .* is not lon/lat degrees"):
        load_osm(str(chicago_gps), campus, graph_crs="EPSG:4326")


def test_gps_only_diff_against_the_benchmark_graph(chicago_gps, tmp_path, capsys):
    bbox = ",".join(f"{v:.6f}" for v in reproject(CAMPUS, CRS, WGS84).bounds)
    out = tmp_path / "out"
    args = ["diff", f"--aoi={bbox}", "--osm", str(chicago_gps), "--gps", str(chicago_gps / "trips"), "--gps-crs", CRS]
    assert main([*args, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evidence"] == "gps" and summary["osm"]["ways"] > 50
    # the complete graph: what the traces cannot explain is little (item 8 of issue 16)
    assert summary["km_suggested"] < 0.5
    refused = tmp_path / "refused"
    assert main(["diff", f"--aoi={bbox}", "--osm", str(chicago_gps), "--gps", str(chicago_gps / "trips"),
                 "--out", str(refused)]) == 2
    assert "--gps-crs" in capsys.readouterr().err and not refused.exists()
