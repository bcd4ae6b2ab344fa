"""Tiling: the real Paris chip cut into tiles gives the uncut run's probabilities, graph and
suggestions, running each model window once; a line cut by a seam is stitched back into one edge."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
from affine import Affine
from shapely.geometry import LineString

from osmgap.conflate.conflate import Evidence, conflate
from osmgap.core.aoi import load_aoi, reproject
from osmgap.core.datamodel import WGS84
from osmgap.core.grid import Grid
from osmgap.core.memory import FileRaster
from osmgap.graph.skeleton import GraphParams, extract_graph, graph_length_m
from osmgap.model.infer import predict_raster, tile_origins, window_size
from osmgap.model.nets import load_checkpoint
from osmgap.scale.graph_tiles import GPU_MAX_GRAPH_PROCESSES, GraphTiles, graph_processes, tiles_needed
from osmgap.scale.options import DEFAULT_MARGIN_PX, DEFAULT_TILE_PX, SELF_TILE_PX, ScaleOptions, self_tiling
from osmgap.scale.tiled import TileJob, _Adder, run_tile, run_tiles, tiled_evidence
from osmgap.scale.tilestore import TileStore
from osmgap.scale.tiling import SEAM_SNAP_M, Tile, _node_coords, plan_tiles, plan_window_tiles, stitch, window_box
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery
from osmgap.sources.osm import load_osm

KEPT_OSM_WAYS = slice(5, 10)  # half of the sample's real OSM ways: the other half become gaps


def half_osm(paris: Path, dst: Path) -> Path:
    """The sample's real OSM ways with half of them deleted (as bench/conflation.py does), so the
    run has missing roads to find, some of which cross tile seams."""
    doc = json.loads((paris / "osm_roads.geojson").read_text())
    doc["features"] = doc["features"][KEPT_OSM_WAYS]
    dst.write_text(json.dumps(doc))
    return dst


# model windows smaller than the 128 x 192 px chip, so tiles must pick and blend several of them
WINDOW, WINDOW_OVERLAP = 64, 16


@pytest.fixture(scope="module")
def chip(paris: Path):
    aoi = load_aoi(str(paris))
    imagery = open_imagery(paris / "image.tif")
    net, meta = load_checkpoint(None, torch.device("cpu"))
    grid = analysis_grid(imagery, aoi.geometry, aoi.metric_crs, meta.resolution_m)
    params = GraphParams(threshold=meta.threshold)
    with WindowReader(imagery, grid) as reader:
        prob = predict_raster(net, meta, reader, tile=WINDOW, overlap=WINDOW_OVERLAP, device=torch.device("cpu"))
    return aoi, imagery, grid, params, prob


def _tiled(chip, tile_px: int, margin_px: int, work: Path, temporary: bool = False):
    """The chip run tiled in this process, as ``osmgap diff --workers 0`` runs it."""
    aoi, imagery, grid, params, _ = chip
    _, meta = load_checkpoint(None, torch.device("cpu"))
    opts = ScaleOptions(workers=0, tile_px=tile_px, margin_px=margin_px, work_dir=None if temporary else work,
                        temporary=temporary)
    prob, graph, info = tiled_evidence(opts, imagery, grid, None, meta, params, WINDOW, WINDOW_OVERLAP, 4,
                                       work / "out")
    return plan_tiles(grid, tile_px, margin_px), prob, graph, info


def _seams(grid: Grid, tiles: list[Tile]) -> list[LineString]:
    full = window_box(grid, (0, 0, grid.height, grid.width)).bounds
    lines = []
    for t in tiles:
        x0, y0, x1, y1 = window_box(grid, t.core).bounds
        lines += [LineString([(x, full[1]), (x, full[3])]) for x in (x0, x1) if full[0] < x < full[2]]
        lines += [LineString([(full[0], y), (full[2], y)]) for y in (y0, y1) if full[1] < y < full[3]]
    return lines


def test_plan_covers_grid_once(chip):
    grid = chip[2]
    tiles = plan_tiles(grid, 96, 32)
    assert len(tiles) == 4  # the 128 x 192 px chip in 2 x 2 tiles
    owned = np.zeros((grid.height, grid.width), int)
    for t in tiles:
        r0, c0, r1, c1 = t.core
        owned[r0:r1, c0:c1] += 1
        assert t.region[0] <= r0 and t.region[2] >= r1 and (t.region[2] - t.region[0]) < grid.height + 1
    assert (owned == 1).all()


@pytest.mark.parametrize("tile_px,margin_px", [(96, 32), (64, 26)])
def test_tiled_run_equals_uncut(chip, paris, tmp_path, tile_px, margin_px):
    """Probabilities: equal up to float rounding (the tiles batch the same windows differently,
    ~1e-6). Graph: the same edges; the stated tolerance, 1 % of length and SEAM_SNAP_M of
    position, covers seam ends snapped across tiles. Suggestions: the same kinds and count."""
    aoi, imagery, grid, params, prob = chip
    tiles, tprob, tgraph, _ = _tiled(chip, tile_px, margin_px, tmp_path)
    assert np.abs(tprob.prob - prob.prob).max() < 1e-4
    graph = extract_graph(prob, params)
    assert graph_length_m(graph) > 100  # the chip has roads to compare
    assert tgraph.number_of_edges() == graph.number_of_edges()
    assert graph_length_m(tgraph) == pytest.approx(graph_length_m(graph), rel=0.01)
    whole = shapely.union_all([d["geometry"] for *_, d in graph.edges(data=True)])
    cut = shapely.union_all([d["geometry"] for *_, d in tgraph.edges(data=True)])
    assert whole.hausdorff_distance(cut) < SEAM_SNAP_M

    roads = load_osm(str(half_osm(paris, tmp_path / "half.geojson")), aoi)
    area = reproject(aoi.geometry, WGS84, grid.crs)
    uncut = conflate(Evidence(graph, prob), roads, area).suggestions
    tiled = conflate(Evidence(tgraph, tprob), roads, area).suggestions
    assert len(uncut) >= 2
    assert sorted(s.kind for s in tiled) == sorted(s.kind for s in uncut)
    assert sorted(s.length_m for s in tiled) == pytest.approx(sorted(s.length_m for s in uncut), rel=0.01, abs=1.0)
    seams = shapely.union_all(_seams(grid, tiles))
    edges = [d["geometry"] for *_, d in tgraph.edges(data=True)]
    assert any(e.crosses(seams) for e in edges)  # a road crossing a seam ...
    for e in edges:  # ... is one edge: no edge ends on a seam
        for end in (shapely.Point(e.coords[0]), shapely.Point(e.coords[-1])):
            assert end.distance(seams) > 1e-3


def _overlap(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


@pytest.mark.parametrize("tile_px,margin_px", [(64, 24), (96, 32)])
def test_graph_tiles_start_once_their_sums_are_final(chip, tmp_path, tile_px, margin_px):
    """A graph tile waits for the last model tile reaching into its region and no longer (some
    start before the model is done); extracted in two other processes while later model tiles are
    being added, it gives the pieces, bit for bit, that it gives from the finished sums here."""
    _, imagery, grid, params, _ = chip
    model_tiles = plan_window_tiles(grid, tile_px, WINDOW, WINDOW_OVERLAP)
    graph_tiles = plan_tiles(grid, tile_px, margin_px)
    needed = tiles_needed(graph_tiles, model_tiles)
    for g, n in zip(graph_tiles, needed, strict=True):
        assert n > 0 and _overlap(model_tiles[n - 1].extent, g.region)
        assert not any(_overlap(m.extent, g.region) for m in model_tiles[n:])
    # at the defaults, on a 21 km2 grid at 1 m (the speed bench's), all but the last row's
    # graph tiles can start before the model is done
    big = Grid(Affine(1, 0, 0, 0, -1, 0), 3775, 5688, grid.crs)
    big_model = plan_window_tiles(big, DEFAULT_TILE_PX, 512, 64)
    big_graph = plan_tiles(big, DEFAULT_TILE_PX, DEFAULT_MARGIN_PX)
    starts_early = [n < len(big_model) for n in tiles_needed(big_graph, big_model)]
    assert len(big_model) == 6 and sum(starts_early) >= len(big_graph) - 2

    shape = (grid.height, grid.width)
    acc, cov = FileRaster(tmp_path / "acc.f32", shape), FileRaster(tmp_path / "cov.f32", shape)
    early = GraphTiles(acc.path, cov.path, grid, graph_tiles, model_tiles, params, processes=2)
    try:
        for i, tile in enumerate(model_tiles):
            result = run_tile(TileJob(imagery, grid, tile, None, WINDOW, WINDOW_OVERLAP, 4, 0))
            r0, c0, r1, c1 = tile.extent
            acc.array[r0:r1, c0:c1] += result.acc
            cov.array[r0:r1, c0:c1] += result.cov
            early.added(i + 1)
        in_background = early.results()
    finally:
        early.close()
    late = GraphTiles(acc.path, cov.path, grid, graph_tiles, model_tiles, params, processes=0)
    late.added(len(model_tiles))
    here = late.results()
    assert sum(len(lines) for _, lines in here) > 0
    for (t1, a), (t2, b) in zip(in_background, here, strict=True):
        assert t1 == t2 and [x.wkb for x in a] == [x.wkb for x in b]


def test_graph_processes_follow_the_device_and_the_cores(monkeypatch):
    """Beside a CPU forward pass one process shares its cores; beside a GPU, the cores left by the
    reading threads, at most GPU_MAX_GRAPH_PROCESSES; none for a single model tile or one core."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert graph_processes(6, cpu) == 1 and graph_processes(1, cpu) == 0
    assert graph_processes(6, gpu) == GPU_MAX_GRAPH_PROCESSES == 4  # 16 cores - 1 - 8 readers = 7
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert graph_processes(6, gpu) == 1  # 4 cores - 1 - 3 readers = 0: still one
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert graph_processes(6, cpu) == graph_processes(6, gpu) == 0


@pytest.mark.parametrize("tile_px", [64, 96, 200, 4096])
def test_every_window_runs_in_exactly_one_model_tile(chip, tile_px):
    """Model tiles deal out the uncut run's windows: none is left out, none runs twice, and a
    tile's extent is its windows' footprint (so the tiles' extents cover the grid)."""
    grid = chip[2]
    window, overlap = window_size(grid.height, grid.width, WINDOW, WINDOW_OVERLAP)
    uncut = [(r, c) for r in tile_origins(grid.height, window, overlap) for c in tile_origins(grid.width, window, overlap)]
    tiles = plan_window_tiles(grid, tile_px, WINDOW, WINDOW_OVERLAP)
    dealt = [o for t in tiles for o in t.origins]
    assert sorted(dealt) == sorted(uncut) and len(dealt) == len(set(dealt))
    covered = np.zeros((grid.height, grid.width), bool)
    for t in tiles:
        r0, c0, r1, c1 = t.extent
        assert (r0, c0) == t.origins[0] and r1 == min(grid.height, t.rows[-1] + window)
        covered[r0:r1, c0:c1] = True
    assert covered.all()
    assert len(tiles) == {64: 12, 96: 4, 200: 1, 4096: 1}[tile_px]  # 3 x 4 windows, 1 or 2 or all a side


def test_self_tiling_above_the_threshold_leaves_no_work_directory(chip, tmp_path, tmp_path_factory, monkeypatch):
    """A run larger than SELF_TILE_PX tiles itself in this process, in a work directory of its own
    that is gone when it returns, while the probabilities it returns stay readable. Nothing can
    resume it, so its tiles, each added as it finishes, are never written to disk (a resumable
    run writes every one)."""
    assert self_tiling(SELF_TILE_PX) is None
    opts = self_tiling(SELF_TILE_PX + 1)
    assert opts is not None and opts.workers == 0 and opts.temporary
    saved: list[str] = []
    real_save = TileStore.save
    monkeypatch.setattr(TileStore, "save", lambda store, result: (saved.append(result.key), real_save(store, result)))
    _tiled(chip, 64, 26, tmp_path_factory.mktemp("resumable"))
    assert len(saved) == 12
    saved.clear()
    _, prob, graph, info = _tiled(chip, 64, 24, tmp_path, temporary=True)
    assert saved == []
    assert info["self_tiled"] and info["tiles"] == 12
    assert list(tmp_path.iterdir()) == []  # no work directory left beside the output
    assert np.abs(prob.prob - chip[4].prob).max() < 1e-4 and graph.number_of_edges() > 0


def test_stitch_joins_a_line_cut_by_a_seam():
    """Two tiles each hold half of one line (ends 0.5 m apart at the seam): one edge results."""
    grid = Grid(Affine(1, 0, 0, 0, -1, 100), 200, 100, "EPSG:32631")
    left, right = plan_tiles(grid, 100, 10)
    a = LineString([(10, 50), (40, 55), (100, 60)])
    b = LineString([(100, 60.5), (150, 70), (190, 72)])
    g = stitch([(left, [a]), (right, [b])], grid, GraphParams())
    assert g.number_of_edges() == 1
    (u, v, d), = g.edges(data=True)
    assert d["length"] == pytest.approx(a.length + b.length, abs=1.0)


def test_stitch_keeps_far_apart_ends_apart():
    grid = Grid(Affine(1, 0, 0, 0, -1, 100), 200, 100, "EPSG:32631")
    left, right = plan_tiles(grid, 100, 10)
    a = LineString([(10, 50), (100, 50)])
    b = LineString([(100, 80), (190, 80)])
    g = stitch([(left, [a]), (right, [b])], grid, GraphParams())
    assert g.number_of_edges() == 2


def test_stitched_nodes_sit_at_their_own_junction_ends_else_at_the_mean_of_all():
    """_node_coords on many random nodes (ends on a seam or not) against the plain per-node rule."""
    rng = np.random.default_rng(0)
    ends = rng.uniform(0, 5000, size=(4000, 2))
    node_of = rng.integers(0, 1500, size=len(ends))
    on_seam = rng.random(len(ends)) < 0.6
    got = _node_coords(ends, node_of, on_seam)
    assert sorted(got) == sorted(int(n) for n in np.unique(node_of))
    for node, (x, y) in got.items():
        member = node_of == node
        own = member & ~on_seam
        chosen = ends[own if own.any() else member]
        assert (x, y) == pytest.approx((chosen[:, 0].mean(), chosen[:, 1].mean()), abs=1e-9)


def test_piece_ends_equal_to_six_decimals_share_a_node_numbered_by_first_appearance(chicago_ways):
    """Stitching numbers the piece ends as a dict of their coordinates rounded to 6 decimals
    would, first seen first, without a Python call per end: ends of real Chicago ways, repeated
    (shared nodes) and nudged below and above the rounding."""
    from osmgap.scale.tiling import _rounded_keys

    edges = np.asarray(chicago_ways.geometry.values, dtype=object)
    xy = np.vstack([shapely.get_coordinates(shapely.get_point(edges, 0)),
                    shapely.get_coordinates(shapely.get_point(edges, -1))])
    xy = np.vstack([xy, xy[::3] + [4e-8, 0.0], xy[1::5] + [0.0, 3e-6]])
    keys: dict[tuple[float, float], int] = {}
    expected = np.asarray([keys.setdefault((round(x, 6), round(y, 6)), len(keys)) for x, y in xy])
    numbers, count = _rounded_keys(xy)
    assert count == len(keys) < len(xy)  # shared nodes and sub-micrometre nudges share a number
    np.testing.assert_array_equal(numbers, expected)


def test_tiles_in_one_stream_sum_as_each_alone_and_read_ahead_across_tiles(chip, monkeypatch):
    """``run_tiles`` runs a process's tiles as one stream of windows: each tile's sums are bit for
    bit those of :func:`run_tile` alone (two CPU lanes), and the next tile's windows are read
    while the caller is still busy with this one (tile by tile, nothing was read until it asked)."""
    aoi, imagery, grid, _, _ = chip
    tiles = plan_window_tiles(grid, 64, WINDOW, WINDOW_OVERLAP)
    jobs = [TileJob(imagery, grid, t, None, WINDOW, WINDOW_OVERLAP, 1, 0) for t in tiles]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        alone = [run_tile(job) for job in jobs]
        read: list[tuple[int, int]] = []
        real_read = WindowReader.read
        monkeypatch.setattr(WindowReader, "read", lambda self, r, c, h, w: (read.append((r, c)), real_read(self, r, c, h, w))[1])
        streamed = run_tiles(jobs)
        for i, one in enumerate(alone):
            result = next(streamed)
            assert result.key == one.key
            np.testing.assert_array_equal(result.acc, one.acc)
            np.testing.assert_array_equal(result.cov, one.cov)
            if i + 1 < len(jobs):
                time.sleep(0.3)  # the caller at work on this tile: the stream goes on reading
                assert jobs[i + 1].tile.origins[0] in read
        assert next(streamed, None) is None
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_finished_tiles_are_added_beside_the_next_in_order_and_their_errors_raised():
    """``_Adder`` hands tiles to ``finished`` in its own thread, one behind the caller, in the order
    given; an error there is raised at the next tile, and on leaving the block."""
    done: list[int] = []
    callers: set[str] = set()

    def finished(n: int) -> None:
        time.sleep(0.05)
        callers.add(threading.current_thread().name)
        done.append(n)

    started = time.perf_counter()
    with _Adder(finished) as adder:
        for n in range(4):
            adder.submit(n)
        handed = time.perf_counter() - started
    assert done == [0, 1, 2, 3]
    assert handed < 0.2 and threading.current_thread().name not in callers  # the last one was added after

    def broken(n: int) -> None:
        if n == 1:
            raise OSError("disk full: probability.f32")
        done.append(n)

    with pytest.raises(OSError, match="disk full"):
        with _Adder(broken) as adder:
            adder.submit(1)
            adder.submit(2)
    with pytest.raises(OSError, match="disk full"):
        with _Adder(broken) as adder:
            adder.submit(1)
