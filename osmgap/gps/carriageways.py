"""A missing second carriageway: one direction of traffic runs beside a mapped two-way road, not on it.

Where a divided road is mapped as one two-way way drawn along one of its carriageways, the map
matcher puts both directions of traffic on that way: the traffic of the other carriageway lies
10-20 m from it, inside the GPS error the matcher allows, so nothing is off the map and no detour
shows (osmgap.gps.evidence sees nothing). What does show is the asymmetry: along the way, the
fixes of one direction of travel sit on it (median lateral offset within ``on_way_m``) while those
of the other direction keep to one side, their median ``apart_m`` or more from the way and from
the first direction's. Noise is symmetric and a badly aligned way displaces both directions
alike; a lane-level spread of a few metres is under ``apart_m``. So per network piece, ``bin_m``
stretch (longer for sparse traces: CarriagewayParams.for_sampling) and direction of travel (the
matched edge's), with
at least ``min_trips`` distinct trips on each side of the comparison, a stretch where one direction
is displaced and the other is not is evidence; ``min_run_m`` of such stretches in a row, displaced to
the same side, are a suggestion: the way's stretch offset by the displaced traffic's median
offset, drawn in its direction of travel.

Chicago bench (bench/gps.py, deleted ways of a map without oneway tags): half of the driven deleted
length is one carriageway of a divided road whose other carriageway is kept, which the density
ridge cannot separate from the kept one (conflation covers anything within 12 m of OSM). Of the
20 m stretches where one direction lies >= 8 m off and the other within 3 m (stop 29), 48 lay beside a deleted
way and 3 elsewhere (seed 0). Real OSM tags both carriageways of a divided road ``oneway``, and the
matcher honours it (osmgap.gps.network), so there the other direction's traffic is off the map and
this is not needed; it is for roads mapped, or left, as one two-way way.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from osmgap.conflate.ids import PREFIX
from osmgap.conflate.osmindex import OsmIndex
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, Suggestion
from osmgap.core.traces import SHAPELY_BLOCK, GpsTraces
from osmgap.gps.evidence import noise_sigma
from osmgap.gps.matching import Matches
from osmgap.gps.network import RoadGraph

KIND = "missing_road"  # a road with known geometry: every export draws it like any missing road
MEDIAN_SE = 1.2533  # standard error of a median / (sigma / sqrt(n)) for Gaussian noise


@dataclass(frozen=True)
class CarriagewayParams:
    bin_m: float = 20.0
    # sparse traces (a median step of sparse_step_m or more: ~30 s sampling in a city) leave a fix
    # every few hundred metres, too few in 20 m for any median: their stretches are sparse_bin_m,
    # one is enough (Chicago at 30 s, seeds 0-2: 0.30 / 0.68 / 0.73 km at precision 1.00 / 0.87 /
    # 1.00 alone, none on the complete graph; dense traces lose precision with such long stretches)
    sparse_step_m: float = 100.0
    sparse_bin_m: float = 100.0
    min_trips: int = 3  # distinct trips per direction and stretch: one trip's offset is its receiver's
    # the displaced direction's median offset this far from the way and from the other
    # direction's: beyond a lane's spread and the GPS bias
    apart_m: float = 8.0
    # the other direction's median offset: on the mapped way. Dense traces: within 5 m (a
    # receiver's bias, a curb lane; stop 32: Chicago dense recall +0.01 / +0.03 / +0.02 over 3 m,
    # seeds 0-2, precision kept); sparse ones read each stretch from a few fixes, and 5 m there
    # cost precision at 30 s (0.90 / 0.97 / 0.97 -> 0.85 / 0.96 / 0.96), so they keep 3 m
    on_way_m: float = 5.0
    sparse_on_way_m: float = 3.0
    min_run_m: float = 40.0  # stretches in a row at least this long: a lone 20 m is a bus stop or a parked car
    end_m: float = 10.0  # fixes this close to a piece's ends turn at the junction: not read
    min_step_m: float = 3.0  # a fix this close to the one before is a standing vehicle's: not read again
    max_se_m: float = 2.0  # each median offset known to +-2 m (its standard error from the traces' noise)
    tangent_m: float = 3.0
    mapped_m: float = 5.0  # another mapped road this close along half the line: it is there already

    def for_sampling(self, traces: GpsTraces, pieces: np.ndarray) -> CarriagewayParams:
        """These settings with the stretch that the traces' sampling fills (``sparse_step_m``);
        ``pieces``: the trip piece of each fix (osmgap.gps.matching.trip_pieces)."""
        steps = traces.step_lengths()
        steps = steps[np.r_[False, pieces[1:] == pieces[:-1]] & (steps >= self.min_step_m)]
        sparse = len(steps) and float(np.median(steps)) >= self.sparse_step_m
        return replace(self, bin_m=self.sparse_bin_m, on_way_m=self.sparse_on_way_m) if sparse else self

    @property
    def min_bins(self) -> int:
        """Stretches in a row that make ``min_run_m``."""
        return max(1, int(np.ceil(self.min_run_m / self.bin_m - 1e-9)))


@dataclass(frozen=True)
class Carriageway:
    """A stretch of ``line`` (metric, drawn in the displaced traffic's direction of travel) beside
    OSM line ``source`` (an osmgap.conflate.osmindex line index), ``offset_m`` from it."""

    line: LineString
    source: int
    forward: bool  # the displaced traffic drives along the OSM line's own direction
    trips: int  # distinct trips of the displaced direction
    other_trips: int  # distinct trips of the other direction, on the way
    offset_m: float
    start_m: float  # where the stretch starts along its network piece


def missing_carriageways(traces: GpsTraces, matches: Matches, network: RoadGraph,
                         params: CarriagewayParams = CarriagewayParams(),
                         known: BaseGeometry | None = None) -> list[Carriageway]:
    """The second carriageways the traces (metric, in the network's CRS) show beside two-way pieces;
    only fixes inside ``known`` (where the map was loaded; None: everywhere) are read."""
    params = params.for_sampling(traces, matches.piece)
    # the standard error of a median of n fixes with the traces' noise: 1.2533 sigma / sqrt(n)
    min_fixes = (MEDIAN_SE * noise_sigma(matches) / params.max_se_m) ** 2
    out = [c for fixes in _fixes_along_pieces(traces, matches, network, params, known)
           for c in _carriageways_in(fixes, network, params, min_fixes)]
    if not out:
        return []
    tree = shapely.STRtree(network.lines)
    return [c for c in out if not _mapped_already(c, network, tree, params.mapped_m)]


def _carriageways_in(fixes: pd.DataFrame, network: RoadGraph, params: CarriagewayParams,
                     min_fixes: float) -> list[Carriageway]:
    """The carriageways that ``fixes`` (all those of the pieces they are on) show, by piece."""
    stats = fixes.groupby(["piece", "bin", "dir"]).agg(med=("rel", "median"), trips=("trip", "nunique"),
                                                       n=("rel", "size")).reset_index()
    stats = stats[(stats.trips >= params.min_trips) & (stats.n >= min_fixes)]
    other = stats.rename(columns={"med": "other_med", "trips": "other_trips", "n": "other_n"}).assign(dir=lambda d: -d["dir"])
    stats = stats.merge(other, on=["piece", "bin", "dir"], how="inner")
    hit = stats[_displaced(stats, params)].copy()
    hit["side"] = np.sign(hit.med)
    out = []
    for (piece, direction, _), run in hit.groupby(["piece", "dir", "side"]):
        for bins in _consecutive(run.bin.to_numpy()):
            if len(bins) < params.min_bins:
                continue
            found = _carriageway(network, int(piece), int(direction), bins, fixes, params)
            if found is not None:
                out.append(found)
    return out


def _displaced(stats: pd.DataFrame, params: CarriagewayParams) -> np.ndarray:
    """Stretches (one direction ``dir``, median offset ``med``; the other direction's ``other_med``,
    each + = left of its own direction of travel) where the other direction is on the way and this
    one runs ``apart_m`` or more from the way and from the other direction."""
    mine = stats.med.to_numpy() * stats["dir"].to_numpy()  # both in the piece's frame
    theirs = -stats.other_med.to_numpy() * stats["dir"].to_numpy()
    return ((np.abs(mine) >= params.apart_m) & (np.abs(mine - theirs) >= params.apart_m)
            & (np.abs(theirs) <= params.on_way_m))


def _mapped_already(c: Carriageway, network: RoadGraph, tree: shapely.STRtree, within_m: float) -> bool:
    """Does another mapped road already run along half the carriageway (a service road, a
    oneway carriageway the matcher did not choose)? Then it is no missing road."""
    near = [k for k in tree.query(c.line, predicate="dwithin", distance=within_m).tolist()
            if network.source[k] != c.source]
    if not near:
        return False
    cover = shapely.union_all(shapely.buffer(network.lines[near], within_m))
    return bool(shapely.length(shapely.intersection(c.line, cover)) >= 0.5 * c.line.length)


def _fixes_along_pieces(traces: GpsTraces, matches: Matches, network: RoadGraph,
                        params: CarriagewayParams, known: BaseGeometry | None = None) -> Iterator[pd.DataFrame]:
    """Per moving fix matched on a two-way piece: piece, ``bin_m`` bin, direction of travel (+1
    along the piece: the matched edge's, so sparse fixes have one too), signed lateral offset
    (+ = left of the direction of travel) and trip; pieces in order, all the fixes of a piece in
    one frame, about SHAPELY_BLOCK fixes a frame (each fix makes four shapely points on its way,
    and the frames of 9.6 million fixes at once took ~1 GB)."""
    n = len(traces)
    if not n or not len(network):
        return
    moved = ~(traces.step_lengths() < params.min_step_m)  # not standing (a trip's first fix: moved)
    inside = np.ones(n, bool) if known is None else shapely.contains_xy(known, traces.x, traces.y)
    i = np.flatnonzero(matches.matched & (matches.edge >= 0) & moved & inside)
    i = i[network.direction[matches.edge[i] // 2] == 0]  # on two-way pieces
    i = i[np.argsort(matches.edge[i] // 2, kind="stable")]
    k = matches.edge[i] // 2
    direction = np.where(matches.edge[i] % 2 == 0, 1, -1)
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.zeros(0, np.int64)
    at = np.searchsorted(first, np.arange(0, len(k), SHAPELY_BLOCK))  # the first piece starting there or after
    cuts = np.unique(np.r_[first[at[at < len(first)]], len(k)])
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        t, side, keep = _lateral(network.lines[k[a:b]], traces.x[i[a:b]], traces.y[i[a:b]], params)
        yield pd.DataFrame({"piece": k[a:b][keep], "bin": (t[keep] // params.bin_m).astype(np.int64),
                            "dir": direction[a:b][keep], "rel": (side * direction[a:b])[keep],
                            "trip": traces.trip[i[a:b][keep]]})


def _lateral(lines: np.ndarray, x: np.ndarray, y: np.ndarray, params: CarriagewayParams,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fix (x, y) on its line: the distance along it, the signed lateral offset (+ = left of
    the line's direction) and whether it is usable (``end_m`` from both ends, a tangent there)."""
    t = shapely.line_locate_point(lines, shapely.points(x, y))
    length = shapely.length(lines)
    a = shapely.line_interpolate_point(lines, np.maximum(t - params.tangent_m, 0.0))
    b = shapely.line_interpolate_point(lines, np.minimum(t + params.tangent_m, length))
    tx, ty = shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)
    norm = np.hypot(tx, ty)
    q = shapely.line_interpolate_point(lines, t)
    ox, oy = x - shapely.get_x(q), y - shapely.get_y(q)
    keep = (t >= params.end_m) & (t <= length - params.end_m) & (norm > 0)
    return t, (tx * oy - ty * ox) / np.where(norm > 0, norm, 1.0), keep


def _consecutive(bins: np.ndarray) -> list[np.ndarray]:
    """Sorted bin numbers split into runs of consecutive ones."""
    bins = np.sort(bins)
    return np.split(bins, np.flatnonzero(np.diff(bins) != 1) + 1) if len(bins) else []


def _carriageway(network: RoadGraph, piece: int, direction: int, bins: np.ndarray, fixes: pd.DataFrame,
                 params: CarriagewayParams) -> Carriageway | None:
    """The piece's stretch over ``bins`` offset by the displaced direction's median offset."""
    line = network.lines[piece]
    mine = fixes[(fixes.piece == piece) & fixes.bin.isin(bins)]
    displaced, stayed = mine[mine.dir == direction], mine[mine.dir == -direction]
    offset = float(np.median(displaced.rel)) * direction  # in the piece's frame: + = left of it
    start = float(bins[0] * params.bin_m)
    stretch = substring(line, start, min(float((bins[-1] + 1) * params.bin_m), line.length))
    shifted = offset_line(stretch, offset)
    if shifted is None:
        return None
    if direction < 0:
        shifted = shapely.reverse(shifted)
    return Carriageway(shifted, int(network.source[piece]), direction > 0, int(displaced.trip.nunique()),
                       int(stayed.trip.nunique()), abs(offset), start)


def offset_line(line: LineString, offset_m: float) -> LineString | None:
    """``line`` moved ``offset_m`` to its left (right if negative), corners kept sharp as a road's;
    None where a bend tighter than the offset splits it or it collapses (the inside of a hairpin)
    to less than half the line: there the way's shape says nothing of where the other carriageway
    runs (Chicago at 30 s, seed 0: the one split stretch was no road; precision 0.87 -> 0.90)."""
    shifted = shapely.offset_curve(line, offset_m, join_style="mitre", mitre_limit=2.0)
    if shifted.geom_type != "LineString":
        return None
    return shifted if shifted.length >= 0.5 * line.length else None


def as_suggestions(found: list[Carriageway], osm: OsmIndex, crs: object) -> list[Suggestion]:
    """The carriageways as ``missing_road`` suggestions (WGS84) with the OSM way they run beside,
    its class, and what a mapper should do in ``evidence``. Ids are anchored on that way, the
    direction and where the stretch starts (a multiple of ``bin_m``: a re-run moves it only when the
    first stretch in a row qualifies in one run and not in the other)."""
    out = []
    for c in sorted(found, key=lambda c: (c.source, c.forward, c.start_m)):
        way = int(osm.osm_id[c.source]) if c.source >= 0 else c.source
        anchor = f"second_carriageway|{way}|{int(c.forward)}|{round(c.start_m)}"
        out.append(Suggestion(
            id=PREFIX + hashlib.sha1(anchor.encode()).hexdigest()[:12], kind=KIND,
            geometry=reproject(c.line, crs, WGS84), length_m=float(c.line.length),
            confidence=float(min(1.0, c.trips / 10.0)), highway=str(osm.highway[c.source]) if c.source >= 0 else "road",
            evidence={"second_carriageway_of": way, "offset_m": round(c.offset_m, 1),
                      "trips": c.trips, "trips_other_direction": c.other_trips, "instruction": instruction(way, c)},
            attachments=[way]))
    return out


def instruction(way: int, c: Carriageway) -> str:
    """What a mapper reads (GeoJSON ``evidence_instruction``, so MapRoulette tasks carry it too)."""
    return (f"{c.trips} GPS trips drove this direction {c.offset_m:.0f} m beside way {way}, while {c.other_trips} "
            f"trips of the other direction drove on it: is this a separate carriageway? If so, draw it (the line "
            f"follows these trips' direction of travel) and tag it and way {way} oneway=yes.")


def not_suggested(found: list[Suggestion], suggestions: list[Suggestion], crs: object,
                  within_m: float = 10.0, share: float = 0.5) -> list[Suggestion]:
    """The carriageways (WGS84) that no other suggestion already draws: those with less than
    ``share`` of their length within ``within_m`` of another suggestion's line (measured in the
    metric ``crs``), so the GPS ridge and the carriageway do not give a mapper the same road twice."""
    others = [reproject(s.geometry, WGS84, crs) for s in suggestions if s.geometry.geom_type == "LineString"]
    if not others or not found:
        return list(found)
    near = shapely.union_all(shapely.buffer(np.asarray(others, dtype=object), within_m))
    lines = np.asarray([reproject(s.geometry, WGS84, crs) for s in found], dtype=object)
    inside = shapely.length(shapely.intersection(lines, near)) / np.maximum(shapely.length(lines), 1e-9)
    return [s for s, covered in zip(found, inside >= share) if not covered]
