"""How long osmgap takes to read each real OSM extract (the OSM stage of a diff), in fresh processes.

    python bench/osm_load.py [--repeats 6] [--baseline CHECKOUT]

Each extract of the data directory (osm/helsinki.osm.pbf, osm/kotka.osm.pbf, osm/west-oakland.osm)
is read whole (the world as the AOI) by ``osmgap.sources.osm.load_osm``, once to warm the page
cache and then timed, in a fresh interpreter per try. ``--baseline CHECKOUT`` reads with another
checkout's osmgap in turn with this one, in the same run (the machine is shared and noisy: the
ratio of the two bests is the figure), e.g. a ``git worktree`` of the commit before a change.
Prints per extract: roads, other ways (RoadNetwork.other_ways), best and median seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from osmgap.core.datapaths import data_root  # noqa: E402

EXTRACTS = ("helsinki.osm.pbf", "kotka.osm.pbf", "west-oakland.osm")
READ = """
import json, logging, sys, time
from shapely.geometry import box
from osmgap.core.aoi import Aoi
from osmgap.sources.osm import load_osm
logging.disable(logging.WARNING)
aoi = Aoi(box(-180, -85, 180, 85), name="everywhere", source=sys.argv[1])
load_osm(sys.argv[1], aoi)
started = time.perf_counter()
roads = load_osm(sys.argv[1], aoi)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "ways": len(roads.ways), "other": len(getattr(roads, "other_ways", ()))}))
"""


def read_once(checkout: Path, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", READ, str(path)], cwd=checkout, capture_output=True, text=True,
                         env={"PYTHONPATH": str(checkout), "PATH": "/usr/bin:/bin"}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--baseline", type=Path, metavar="CHECKOUT", help="another checkout to read with, in turn")
    args = ap.parse_args()
    checkouts = [("this", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    print(f"{'extract':<20} {'osmgap':<9} {'roads':>6} {'other':>6} {'best s':>7} {'median s':>9}")
    for name in EXTRACTS:
        path = data_root() / "osm" / name
        runs: dict[str, list[dict]] = {label: [] for label, _ in checkouts}
        for _ in range(args.repeats):
            for label, checkout in checkouts:
                runs[label].append(read_once(checkout, path))
        for label, tries in runs.items():
            seconds = [t["seconds"] for t in tries]
            print(f"{name:<20} {label:<9} {tries[0]['ways']:>6} {tries[0]['other']:>6} {min(seconds):>7.3f} "
                  f"{statistics.median(seconds):>9.3f}")
        if args.baseline:
            ratio = min(t["seconds"] for t in runs["this"]) / min(t["seconds"] for t in runs["baseline"])
            print(f"{name:<20} this / baseline, best: {ratio:.2f}")


if __name__ == "__main__":
    main()
