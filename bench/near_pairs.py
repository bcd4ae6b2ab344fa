"""Conflation's bulk geometry on several threads: ``osmgap.core.segments.near_pairs`` on one
thread and on the threads it chooses (issue 17: the host's work beside a GPU is what is left).

The real OSM ways of central Helsinki (data/osm/helsinki.osm.pbf) in their UTM zone, copied
``--copies`` x ``--copies`` side by side (as bench/scale.py copies the Paris chip's ways: real ways,
not a real city), and as the candidates to probe, the same ways moved 3 m east and sampled every
metre: the shape of the query conflation makes for every candidate road
(``osmgap.conflate.alignment.probe``), about as many points as a 100 km2 diff's candidates. Both ways of querying are timed (per point, and per
candidate segment, as conflation does), best of ``--repeats``, alternately in one run; the pairs
must be the same arrays.

    python bench/near_pairs.py [--copies 6] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import osmgap.core.segments as segments  # noqa: E402
from osmgap.core.aoi import Aoi  # noqa: E402
from osmgap.core.datapaths import data_root  # noqa: E402
from osmgap.sources.osm import load_osm  # noqa: E402

RADIUS_M = 8.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=6, help="the extract's ways copied N x N side by side")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = data_root() / "osm" / "helsinki.osm.pbf"
    ways = load_osm(str(path), Aoi(box(-180, -85, 180, 85), name="everywhere", source=str(path))).ways
    ways = ways.to_crs(ways.estimate_utm_crs())
    extract = np.asarray(ways.geometry.values, dtype=object)
    x0, y0, x1, y1 = shapely.total_bounds(extract)
    lines = np.concatenate([shapely.transform(extract, lambda xy, i=i, j=j: xy + [i * (x1 - x0), j * (y1 - y0)])
                            for i in range(args.copies) for j in range(args.copies)])
    osm = segments.explode(lines)
    cands = segments.explode(shapely.transform(lines, lambda xy: xy + [3.0, 0.0]))
    points = segments.sample(cands, 1.0)
    _ = osm.tree
    chosen = segments.query_threads
    print(f"{len(ways)} real ways copied {args.copies} x {args.copies} ({shapely.length(lines).sum() / 1000:.0f} km), "
          f"{len(osm)} segments; {len(points)} candidate points; threads chosen here: {chosen(len(points))}")
    for name, source in (("per point", None), ("per candidate segment", cands)):
        best: dict[int, tuple[float, float]] = {}
        answers = {}
        for _ in range(args.repeats):
            for threads in (1, chosen(len(points))):
                segments.query_threads = lambda items, k=threads: k  # type: ignore[misc]
                wall, cpu = time.perf_counter(), time.process_time()
                answers[threads] = segments.near_pairs(points, osm, RADIUS_M, source=source)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                best[threads] = min(best.get(threads, (wall, cpu)), (wall, cpu))
        segments.query_threads = chosen
        one, many = answers[1], answers[max(answers)]
        same = all(np.array_equal(getattr(one, f), getattr(many, f)) for f in ("sample", "segment", "distance", "t", "angle"))
        line = ", ".join(f"{k} thread(s) {w:.2f} s wall, {c:.2f} s CPU" for k, (w, c) in sorted(best.items()))
        print(f"  {name:22s} {len(one.sample)} pairs: {line}; x{best[1][0] / best[max(best)][0]:.2f} wall; "
              f"the same pairs: {same}")


if __name__ == "__main__":
    main()
