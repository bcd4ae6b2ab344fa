"""GPS-only discovery over a large traced area: peak memory and time of ``osmgap diff --gps``.

The real Chicago UIC traces and their real OSM graph (mapconstruction files), laid side by side
K x K times, each copy shifted by the traces' extent plus 1 km: SYNTHETIC copies of real data,
for memory and time only (the copies' seams and sameness say nothing about roads). Every copy's
traces are matched to its own copy of the graph, so the evidence is what the real traces leave
off the real map, K x K times over. Run as a subprocess, sampled for the peak RSS of its largest
process and of its process tree (bench/scale.measured); ``--baseline CHECKOUT`` runs another
checkout's osmgap first, on the same input (e.g. ``git worktree add ../base HEAD~3``).

    python bench/gps_area.py --copies 4      # 16 copies: ~600 km2 of traced ground, 1.9 million fixes
    python bench/gps_area.py --copies 9      # 81 copies: 9.6 million fixes (issue 16's 10 million)
    python bench/gps_area.py --copies 9 --resample 30   # the same ground, one fix per 30 s: 1.1 million

``--resample S`` keeps one fix per S seconds of each real trip first (osmgap.core.traces.resample,
as bench/gps.py's sparse rows), so the sparse path (route tables of 1-3 km, lone fixes drawn as
discs and heading segments, missing connections) is measured at scale too.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scale import measured  # noqa: E402
from osmgap.core.datapaths import data_root  # noqa: E402
from osmgap.core.traces import resample  # noqa: E402
from osmgap.sources.gps import GpsSource, read_gps  # noqa: E402

CRS = "EPSG:32616"  # the Chicago data's UTM zone
GAP_M = 1000.0


def build(copies: int, dst: Path, every_s: float | None = None) -> tuple[Path, Path, Path, str]:
    """(traces CSV, vertices, edges, AOI bbox in lon/lat) of the K x K copies; ``every_s``: one fix
    per that many seconds of each trip (None: every fix)."""
    root = data_root() / "gps" / "chicago-uic"
    traces = read_gps([root / "trips"], GpsSource(crs=CRS)).to_crs(CRS)
    if every_s:
        traces = resample(traces, every_s)
    vertices = pd.read_csv(root / "chicago_vertices_osm.txt", header=None, names=["id", "x", "y"])
    edges = pd.read_csv(root / "chicago_edges_osm.txt", header=None, names=["id", "a", "b", "flag"])
    x0, y0 = min(traces.x.min(), vertices.x.min()), min(traces.y.min(), vertices.y.min())
    x1, y1 = max(traces.x.max(), vertices.x.max()), max(traces.y.max(), vertices.y.max())
    step_x, step_y = x1 - x0 + GAP_M, y1 - y0 + GAP_M
    frames, vs, es = [], [], []
    for k, (i, j) in enumerate((i, j) for i in range(copies) for j in range(copies)):
        dx, dy = i * step_x, j * step_y
        frames.append(pd.DataFrame({"x": traces.x + dx, "y": traces.y + dy, "time": traces.t,
                                    "trip": traces.trip + k * (int(traces.trip.max()) + 1)}))
        vs.append(vertices.assign(id=vertices.id + k * 10_000_000, x=vertices.x + dx, y=vertices.y + dy))
        es.append(edges.assign(id=edges.id + k * 10_000_000, a=edges.a + k * 10_000_000, b=edges.b + k * 10_000_000))
    csv, vfile, efile = dst / "traces.csv", dst / "copies_vertices.txt", dst / "copies_edges.txt"
    pd.concat(frames).to_csv(csv, index=False)
    pd.concat(vs).to_csv(vfile, header=False, index=False)
    pd.concat(es).to_csv(efile, header=False, index=False)
    to_wgs = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(np.array([x0, x1 + (copies - 1) * step_x]), np.array([y0, y1 + (copies - 1) * step_y]))
    return csv, vfile, efile, f"{lon[0]:.6f},{lat[0]:.6f},{lon[1]:.6f},{lat[1]:.6f}"


def run(csv: Path, vfile: Path, efile: Path, bbox: str, out: Path, checkout: Path | None = None) -> dict:
    r = measured(["diff", "--aoi", bbox, "--osm", f"{vfile},{efile}", "--gps", str(csv), "--gps-crs", CRS,
                  "--out", str(out)], checkout)
    summary = json.loads((out / "summary.json").read_text())
    return {**r, "suggestions": summary["suggestions"], "grid": summary["grid"], "fixes": summary["gps_matching"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4, help="K: the traces and graph laid side by side K x K times")
    ap.add_argument("--baseline", type=Path, metavar="CHECKOUT", help="run another checkout's osmgap first")
    ap.add_argument("--keep", type=Path, help="keep inputs and outputs here")
    ap.add_argument("--resample", type=float, metavar="SECONDS", help="one fix per SECONDS of each trip first")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="osmgap-gps-area-"))
    tmp.mkdir(parents=True, exist_ok=True)
    csv, vfile, efile, bbox = build(args.copies, tmp, args.resample)
    every = f" (one fix per {args.resample:g} s)" if args.resample else ""
    print(f"the Chicago traces{every} and OSM graph laid side by side {args.copies} x {args.copies} times (SYNTHETIC "
          f"copies of real data, for memory and time only); AOI {bbox}", flush=True)
    runs = [(f"baseline {args.baseline}", args.baseline)] if args.baseline else []
    for name, checkout in [*runs, ("this checkout", None)]:
        r = run(csv, vfile, efile, bbox, tmp / name.split()[0], checkout)
        px = r["grid"]["width"] * r["grid"]["height"]
        print(f"  {name}: wall {r['wall_s']:.0f} s, CPU {r['cpu_s']:.0f} s, peak RSS largest process "
              f"{r['rss_process_mb']:.0f} MB, tree {r['rss_tree_mb']:.0f} MB; evidence grid {px / 1e6:.1f} Mpx "
              f"({px * 16 / 1e6:.0f} km2 at 4 m); {r['suggestions']} suggestions", flush=True)
        m = r["fixes"]
        print(f"    matching: route limit {m['route_limit_m']} m, {m['cpu_seconds']:.0f} CPU s (route tables "
              f"included), {m['matched_share']:.3f} of fixes matched, {m['missing_connections']} missing connections",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
