"""Memory and speed of tiled runs on a large AOI built by mosaicking the real Paris sample chip.

The AOI is the real SpaceNet Paris chip (sample_aoi/paris-1447) repeated N x N times in a
GeoTIFF in a temp dir, with the chip's real OSM ways copied alongside each repeat: real imagery
and real roads, but a *mosaic*, not a real large area (the output says so). Each configuration
runs ``osmgap diff`` as a subprocess; a sampler adds up the RSS of its whole process tree (client,
Dask scheduler, nannies, workers) every 0.2 s. Printed: peak RSS of the largest single process
and of the tree, wall time, km2/h, and the 2-worker / 1-worker speed ratio measured in this run.

    python bench/scale.py [--repeats 8] [--small 4] [--tile-size 512] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from osmgap.core.datapaths import data_root  # noqa: E402

CHIP = "sample_aoi/paris-1447"


def build_mosaic(n: int, dst: Path, overviews: bool = False) -> tuple[Path, Path, str]:
    """The chip repeated n x n (GeoTIFF, tiled, compressed) and its OSM ways copied to match;
    returns (imagery, osm geojson, bbox). With ``overviews``, written the way large imagery ships:
    JPEG (YCbCr) 512 px tiles with internal overviews (x2 .. x16, averaged)."""
    chip = data_root() / CHIP
    with rasterio.open(chip / "image.tif") as src:
        data, t = src.read(), src.transform
        profile = {**src.profile, "width": src.width * n, "height": src.height * n, "tiled": True,
                   "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
        if overviews:
            profile.update(compress="jpeg", photometric="ycbcr", jpeg_quality=90, interleave="pixel")
        w_deg, h_deg = src.width * t.a, src.height * -t.e
    image = dst / f"paris-mosaic-{n}x{n}{'-ovr' if overviews else ''}.tif"
    done = image.with_name(image.name + ".done")  # a mosaic kept (--keep) by an earlier run is reused
    if not done.exists():
        # compressed and overviews built on every core (a 102 km2 mosaic took ~5 min on one)
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), \
                rasterio.open(image, "w", **profile, num_threads="ALL_CPUS") as out:
            for i in range(n):
                for j in range(n):
                    out.write(data, window=rasterio.windows.Window(j * data.shape[2], i * data.shape[1],
                                                                   data.shape[2], data.shape[1]))
            if overviews:
                out.build_overviews([2, 4, 8, 16], rasterio.enums.Resampling.average)
        done.touch()
    doc = json.loads((chip / "osm_roads.geojson").read_text())
    features = []
    for i in range(n):
        for j in range(n):
            for f in doc["features"]:
                coords = [[x + j * w_deg, y - i * h_deg] for x, y, *_ in f["geometry"]["coordinates"]]
                props = {**f["properties"], "osm_id": int(f["properties"]["osm_id"]) * 10_000 + i * n + j}
                features.append({"type": "Feature", "properties": props,
                                 "geometry": {"type": "LineString", "coordinates": coords}})
    osm = dst / "osm.geojson"
    osm.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    margin = 2e-5  # stay inside the mosaic, as the sample AOI stays inside its chip
    bbox = (t.c + margin, t.f - n * h_deg + margin, t.c + n * w_deg - margin, t.f - margin)
    return image, osm, ",".join(f"{v:.7f}" for v in bbox)


def sample_rss(proc: subprocess.Popen, peaks: dict[str, float], stop: threading.Event) -> None:
    """Peak RSS (MB) of the largest process and of the whole tree, sampled until ``stop``."""
    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            rss = []
            for p in procs:
                try:
                    rss.append(p.memory_info().rss / 2 ** 20)
                except psutil.Error:
                    rss.append(0.0)
            peaks["process"] = max(peaks.get("process", 0.0), max(rss, default=0.0))
            peaks["client"] = max(peaks.get("client", 0.0), rss[0])
            peaks["other"] = max(peaks.get("other", 0.0), max(rss[1:], default=0.0))
            peaks["tree"] = max(peaks.get("tree", 0.0), sum(rss))
        except psutil.Error:
            pass
        stop.wait(0.2)


def measured(args: list[str], checkout: Path | None = None) -> dict:
    """``python -m osmgap ARGS`` as a subprocess: its stdout, wall and CPU seconds (of the whole
    process tree) and peak RSS (MB: ``process`` the largest, ``tree`` all, ``client`` the first,
    ``other`` the largest child); ``checkout``: the osmgap of another checkout (default: this one)."""
    cmd = [sys.executable, "-m", "osmgap", *args]
    peaks: dict[str, float] = {}
    stop = threading.Event()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=checkout or Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=sample_rss, args=(proc, peaks, stop))
    sampler.start()
    stdout, stderr = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{stderr}")
    return {"stdout": stdout, "wall_s": wall, "cpu_s": cpu, "rss_process_mb": peaks.get("process", 0.0),
            "rss_tree_mb": peaks.get("tree", 0.0), "rss_client_mb": peaks.get("client", 0.0),
            "rss_other_mb": peaks.get("other", 0.0)}


def run(image: Path, osm: Path, bbox: str, out: Path, extra: list[str], checkout: Path | None = None) -> dict:
    """``osmgap diff`` as a subprocess (``measured``), with what its summary.json says (area,
    seconds per stage, tiles)."""
    m = measured(["diff", "--aoi", bbox, "--imagery", str(image), "--osm", str(osm), "--out", str(out), *extra],
                 checkout)
    summary = json.loads((out / "summary.json").read_text())
    area = summary["aoi"]["area_km2"]
    return {**m, "area_km2": area, "km2_per_h": area / m["wall_s"] * 3600, "segment_s": summary["seconds"]["segment"],
            "suggestions": summary["suggestions"], "tiles": summary.get("tiles", {}).get("tiles"),
            "stages": summary["seconds"], "grid": summary["grid"],
            "peak_rss_mb": summary.get("peak_rss_mb", {}), "torch_threads": summary.get("torch_threads")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8, help="the chip repeated N x N for the large AOI")
    ap.add_argument("--small", type=int, default=4, help="a smaller mosaic, to see whether RSS grows with area")
    ap.add_argument("--tile-size", type=int, default=512)
    ap.add_argument("--keep", type=Path, help="keep mosaics and outputs here")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="osmgap-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"AOI: the real Paris chip ({CHIP}) MOSAICKED {args.repeats}x{args.repeats} (and {args.small}x{args.small}) "
          f"with its real OSM ways copied per repeat; a synthetic mosaic of real data, not a real large area. "
          f"CPU cores: {os.cpu_count()}")
    rows = []
    for n, workers in ((args.small, 1), (args.repeats, 1), (args.repeats, 2)):
        d = tmp / f"m{n}"
        d.mkdir(exist_ok=True)
        image, osm, bbox = build_mosaic(n, d)
        r = run(image, osm, bbox, d / f"out-w{workers}", ["--workers", str(workers), "--tile-size", str(args.tile_size),
                                                          "--work-dir", str(d / f"work-w{workers}")])
        r.update(mosaic=f"{n}x{n}", workers=workers)
        rows.append(r)
        print(f"{r['mosaic']:>6} {r['area_km2']:.3f} km2, {r['tiles']} tiles, {workers} worker(s): "
              f"wall {r['wall_s']:.1f} s (segment {r['segment_s']:.1f} s), {r['km2_per_h']:.2f} km2/h, "
              f"peak RSS largest process {r['rss_process_mb']:.0f} MB (client {r['rss_client_mb']:.0f}, "
              f"largest worker/nanny {r['rss_other_mb']:.0f}), whole tree {r['rss_tree_mb']:.0f} MB, "
              f"{r['suggestions']} suggestions", flush=True)
    one, two = rows[1], rows[2]
    print(f"speed ratio 2 workers / 1 worker (same {one['mosaic']} AOI, this run): "
          f"{two['km2_per_h'] / one['km2_per_h']:.2f}x wall, {one['segment_s'] / two['segment_s']:.2f}x segment stage")
    print(f"RSS growth with area ({rows[0]['area_km2']:.2f} -> {one['area_km2']:.2f} km2, 1 worker): largest process "
          f"{rows[0]['rss_process_mb']:.0f} -> {one['rss_process_mb']:.0f} MB; target < 2048 MB per process")
    print(f"outputs in {tmp}" if args.keep else "")


if __name__ == "__main__":
    main()
