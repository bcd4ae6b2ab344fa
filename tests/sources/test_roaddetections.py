"""Microsoft RoadDetections TSVs, written in the published layout (github.com/microsoft/RoadDetections
README, FAQ "What is the data format?": alpha-3 region code, TAB, the road's GeoJSON Feature with a
``WidthMeters`` property) from the real Kotka roads, read as candidates."""
from __future__ import annotations

import gzip
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely

from osmgap.errors import InputError
from osmgap.sources import roaddetections
from osmgap.sources.candidates import load_candidates
from tests.roads import extent_aoi

PARIS_ROW = 'FRA\t{"type":"Feature","geometry":{"type":"LineString","coordinates":[[2.2812,48.9811],[2.2829,48.9826]]},"properties":{"WidthMeters":6.0}}'  # noqa: E501
ONE_POINT_ROW = 'FIN\t{"type":"Feature","geometry":{"type":"LineString","coordinates":[[26.95,60.53]]},"properties":{}}'


def _rows(kotka) -> list[str]:
    """One row per real Kotka way, as the published files have them (compact JSON, 7 decimals)."""
    rows = []
    for i, line in enumerate(kotka.ways.geometry):
        feature = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": np.round(
            shapely.get_coordinates(line), 7).tolist()}, "properties": {"WidthMeters": 4.0 + i % 5}}
        rows.append("FIN\t" + json.dumps(feature, separators=(",", ":")))
    return rows


def _write(path: Path, rows: list[str]) -> Path:
    data = ("\n".join(rows) + "\n").encode()
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("Northern_Europe-Full.tsv", data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["Northern_Europe-Full.tsv", "Northern_Europe-Full.tsv.gz", "Northern_Europe.zip"])
def test_every_road_near_the_aoi_is_read_from_the_published_layout(kotka, tmp_path, monkeypatch, caplog, name):
    """Read in chunks (7 rows here, so chunk borders fall everywhere): the roads far from the AOI
    (a Paris row) are not kept, a road of one point is skipped and counted, the rest are the
    Kotka ways, unclassed, with the default confidence."""
    monkeypatch.setattr(roaddetections, "CHUNK_ROWS", 7)
    rows = _rows(kotka)
    path = _write(tmp_path / name, [PARIS_ROW, *rows[:100], ONE_POINT_ROW, *rows[100:]])
    aoi = extent_aoi(kotka)
    with caplog.at_level(logging.WARNING):
        got = load_candidates(path, aoi, default_confidence=0.6)
    crs = aoi.metric_crs
    assert got.to_crs(crs).length.sum() == pytest.approx(kotka.ways.to_crs(crs).length.sum(), rel=1e-5)
    assert (got["highway"] == "road").all() and (got["confidence"] == 0.6).all()
    assert [r.getMessage() for r in caplog.records] == [f"{path}: skipped 1 row(s) whose road is no line "
                                                        "(a single point or one repeated point)"]


def test_a_bare_geometry_per_row_is_read_too(kotka, tmp_path):
    rows = [r.split("\t")[0] + "\t" + json.dumps(json.loads(r.split("\t")[1])["geometry"]) for r in _rows(kotka)[:3]]
    got = load_candidates(_write(tmp_path / "roads.tsv", rows), extent_aoi(kotka), default_confidence=0.75)
    assert len(got) >= 3


@pytest.mark.parametrize("row, text", [("FIN\tnot json at all", "row 3: the second column is not the GeoJSON"),
                                       ("FIN", "row 3: the second column is not the GeoJSON"),
                                       ("FIN\t{}\textra", "not a RoadDetections TSV")])
def test_a_row_that_is_not_the_layout_is_an_input_error_naming_it(kotka, tmp_path, row, text):
    path = _write(tmp_path / "roads.tsv", [*_rows(kotka)[:2], row, *_rows(kotka)[2:4]])
    with pytest.raises(InputError) as err:
        load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    assert text in str(err.value) and path.name in str(err.value) and "\n" not in str(err.value)


def test_a_file_with_no_road_near_the_aoi_says_so(kotka, tmp_path):
    with pytest.raises(InputError, match="no candidate road line lies near the AOI"):
        load_candidates(_write(tmp_path / "paris.tsv", [PARIS_ROW]), extent_aoi(kotka), default_confidence=0.75)
