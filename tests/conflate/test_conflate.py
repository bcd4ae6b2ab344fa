"""Conflation on the real sample's OSM roads, with the misalignment the sample really has."""
from dataclasses import replace

import numpy as np
import pytest
import shapely
from shapely.affinity import translate

from osmgap.conflate.conflate import Evidence, conflate, missing_roads
from osmgap.conflate.gaps import MIN_PIECE_M
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, ProbabilityRaster, RoadNetwork, no_parking
from osmgap.graph.lines import candidate_graph
from osmgap.graph.rasterize import rasterize_roads
from osmgap.graph.skeleton import extract_graph
from osmgap.sources.imagery import analysis_grid, open_imagery
from osmgap.sources.osm import load_osm
from tests.roads import as_candidates, extent_aoi, without


@pytest.fixture(scope="module")
def sample(paris, paris_aoi):
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    grid = analysis_grid(open_imagery(paris / "image.tif"), paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    area = reproject(paris_aoi.geometry, WGS84, grid.crs)
    return roads, grid, area


def _predicted_graph(ways, grid, shift_m):
    """A 'prediction' made by rasterizing real OSM roads shifted by ``shift_m`` east and north,
    as imagery misaligned with OSM would give."""
    metric = ways.to_crs(grid.crs)
    metric = metric.set_geometry(metric.geometry.translate(shift_m, shift_m * 0.5))
    mask = rasterize_roads(metric, grid).astype(np.float32)
    return extract_graph(ProbabilityRaster(mask, grid.transform, grid.crs)), mask


@pytest.mark.parametrize("shift_m", [0.0, 5.0, 8.0])
def test_mapped_roads_are_not_flagged_despite_misalignment(sample, shift_m):
    roads, grid, area = sample
    graph, _ = _predicted_graph(roads.ways, grid, shift_m)
    assert graph.number_of_edges() > 3
    assert missing_roads(graph, roads.ways, area) == []


def test_deleted_way_is_found(sample):
    roads, grid, area = sample
    graph, mask = _predicted_graph(roads.ways, grid, 6.0)
    metric = roads.ways.to_crs(grid.crs)
    inside = metric.geometry.intersection(area.buffer(-10)).length
    target = int(np.argmax(inside.values))
    remaining = roads.ways.drop(roads.ways.index[target])
    found = missing_roads(graph, remaining, area, ProbabilityRaster(mask, grid.transform, grid.crs))
    assert found, "the deleted way must come back as a suggestion"
    deleted = translate(metric.geometry.iloc[target], 6.0, 3.0)
    found_metric = [reproject(s.geometry, WGS84, grid.crs) for s in found]
    near = sum(shapely.intersection(g, deleted.buffer(10)).length for g in found_metric)
    total = sum(g.length for g in found_metric)
    assert near / total > 0.9  # what is flagged lies on the deleted road
    assert near > 0.6 * inside.iloc[target]  # and covers most of it
    assert sum(s.length_m for s in found) >= ConflateParams.min_length_m
    for s in found:
        assert s.kind == "missing_road" and s.confidence > 0.5 and s.length_m >= MIN_PIECE_M
        assert s.id.startswith("osmgap-") and not s.id.removeprefix("osmgap-").isdigit()


def test_offset_and_tolerance_are_what_save_us(sample):
    """Without the offset correction and with a tolerance far below the real offset, mapped
    roads would be flagged: the tests above are not passing for a trivial reason."""
    roads, grid, area = sample
    graph, mask = _predicted_graph(roads.ways, grid, 8.0)
    prob = ProbabilityRaster(mask, grid.transform, grid.crs)
    blind = ConflateParams(tolerance_m=2.0, max_offset_m=0.0)
    assert missing_roads(graph, roads.ways, area, prob, params=blind)
    corrected = conflate(Evidence(graph, prob), RoadNetwork(roads.ways), area, ConflateParams(tolerance_m=2.0))
    assert corrected.offset.applied
    assert corrected.offset.east_m == pytest.approx(8.0, abs=0.6) and corrected.offset.north_m == pytest.approx(4.0, abs=0.6)
    assert [s for s in corrected.suggestions if s.kind == "missing_road"] == []


def test_roads_inside_mapped_parking_lots_are_low_priority_aisles(kotka, data):
    """Kotka's mapped parking lots (amenity=parking) hold service ways: delete those, give every
    way back as unclassed candidates (as imagery would), and the ones found inside a lot are
    highway=service parking aisles of priority 2; without the lots they are plain roads."""
    lots = kotka.parking.geometry  # as the OSM reader gives them to the pipeline
    assert len(lots) >= 5
    crs = extent_aoi(kotka).metric_crs
    metric = kotka.ways.to_crs(crs)
    in_lot = shapely.union_all(shapely.buffer(np.asarray(lots.to_crs(crs).values, dtype=object), 2.0))
    share = metric.geometry.intersection(in_lot).length / metric.geometry.length
    gone = kotka.ways["osm_id"][(share >= 0.5) & (metric.geometry.length >= 40)].tolist()
    assert len(gone) >= 3
    osm = without(kotka, gone)
    aoi = extent_aoi(kotka)
    graph = candidate_graph(as_candidates(kotka.ways, classed=False), aoi.metric_crs)
    area = aoi.to_metric(aoi.geometry)

    def in_lots(result):
        lines = [(s, reproject(s.geometry, WGS84, crs)) for s in result.suggestions if s.kind == "missing_road"]
        return [s for s, g in lines if g.intersection(in_lot).length >= 0.5 * g.length]

    with_lots = in_lots(conflate(Evidence(graph), replace(osm, parking=kotka.parking), area, ConflateParams()))
    plain = in_lots(conflate(Evidence(graph), replace(osm, parking=no_parking()), area, ConflateParams()))
    assert len(with_lots) >= 2 and len(plain) == len(with_lots)  # measured: 2 (113 m, 82 m)
    for s in with_lots:
        assert s.highway == "service" and s.evidence.get("parking_aisle") and s.priority == 2
    assert not any(s.evidence.get("parking_aisle") for s in plain)


def test_mean_probabilities_of_many_lines_are_each_lines_own(sample, monkeypatch):
    """Gaps are scored in blocks of lines at once, blocks side by side on threads: the same numbers
    as one line at a time, on the real sample's ways over a graded raster (its roads blurred),
    lines running off it too."""
    from scipy import ndimage

    import osmgap.conflate.conflate as conflate_module
    from osmgap.conflate.conflate import mean_probabilities, mean_probability

    monkeypatch.setattr(conflate_module, "usable_cores", lambda: 3)  # threads even on a one-core machine

    roads, grid, _ = sample
    metric = roads.ways.to_crs(grid.crs)
    mask = rasterize_roads(metric, grid).astype(np.float32)
    prob = ProbabilityRaster(ndimage.gaussian_filter(mask, 3.0), grid.transform, grid.crs)
    lines = [*metric.geometry, *metric.geometry.translate(7.0, -3.0), *metric.geometry.translate(80.0, 0.0)]
    lines = [g for g in lines if g.geom_type == "LineString"]
    one_by_one = np.array([mean_probability(prob, g) for g in lines])
    assert len(lines) > 20 and np.ptp(one_by_one) > 0.2  # graded: the lines do not all read alike
    np.testing.assert_array_equal(mean_probabilities(prob, lines, release_every=7), one_by_one)
    np.testing.assert_array_equal(mean_probabilities(prob, lines[:1]), one_by_one[:1])
    assert len(mean_probabilities(prob, [])) == 0
