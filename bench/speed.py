"""Speed that scales (issue 17): the whole ``osmgap diff`` against the bare forward pass of the
shipped model over the same windows, untiled, tiled in-process and with ``--workers N`` (1 by default), on a
large AOI written the way real imagery ships; peak memory; start-up; what the faster forward
pass does to the scores on the real chips.

The AOI is the real SpaceNet Paris chip (sample_aoi/paris-1447) MOSAICKED N x N into one JPEG
(YCbCr) GeoTIFF with 512 px tiles and internal overviews, with the chip's real OSM ways copied
per repeat (bench/scale.py builds it): real imagery and roads, but a mosaic, not a real large
area, and its seams give suggestions a real area would not. It measures speed and memory only.

Every figure of one run comes from the same process at the same time, so ratios are fair on a
shared machine; the load average before and after is printed. The bare forward pass is timed
here, in this process, over exactly the windows the diff runs (their count is printed), on
random inputs (a convolution's speed does not depend on the pixels), with the net the diff uses
(BatchNorm folded, channels-last) and all the cores the load average shows free (``--threads``
sets it, and then passes it to every diff too). Each diff otherwise chooses its own threads, as a
user's would (the free cores when it starts, which its forward pass shares with its window reader:
osmgap.model.infer.cpu_lanes); each row prints what it used. The ratios compare fp32
with fp32 (every diff of the ratio rows runs with ``--fp32``); where the device has native bf16, the bare pass and one untiled diff also run at
osmgap's default precision (bf16 autocast), which is what the km2/h target is read from. Each diff runs as a subprocess, sampled every 0.2 s for the RSS of
its largest process and its whole process tree. A GPU is used when present (and named).

    python bench/speed.py                 # 29 x 29 chips (21 km2), plus 64 x 64 (102 km2) for memory
    python bench/speed.py --quick         # 8 x 8 chips (1.6 km2), no memory run: a few minutes
    python bench/speed.py --eval          # also: eval IoU on the real chips, per forward-pass option
    python bench/speed.py --workers 4     # beside a GPU: four Dask workers share it and the host's cores
    python bench/speed.py --memory-only --baseline ../base   # 102 km2 with another checkout, then this one
    python bench/speed.py --memory-only --eval-memory        # also osmgap eval of the 102 km2 mosaic
    python bench/speed.py --memory-only --change-memory      # also osmgap change of it against itself
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scale import CHIP, build_mosaic, measured, run  # noqa: E402
from osmgap.core.aoi import load_aoi  # noqa: E402
from osmgap.core.datapaths import data_root  # noqa: E402
from osmgap.core.precision import forced_fp32  # noqa: E402
from osmgap.model.infer import (  # noqa: E402
    auto_batch,
    autocast_dtype,
    default_threads,
    default_views,
    forward_probability,
    tile_origins,
)
from osmgap.model.nets import inference_net, load_checkpoint, pick_device  # noqa: E402
from osmgap.sources.imagery import analysis_grid, open_imagery  # noqa: E402

WINDOW, OVERLAP = 512, 64  # osmgap diff's defaults (--tile, --overlap)
GPS_STARTUP_TARGET_S = 2.0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def forward_seconds(net: torch.nn.Module, windows: int, batch: int, device: torch.device,
                    fp32: bool = True) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) of the bare forward pass (sigmoid
    included) over ``windows`` 512 px windows, in fp32 or at osmgap's default precision (bf16
    autocast where the hardware has native bf16: ``osmgap.model.infer.autocast_dtype``), each
    window in as many views as a diff runs it in (``osmgap.model.infer.default_views``)."""
    views = default_views(device)
    x = torch.rand(batch, 3, WINDOW, WINDOW, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), forced_fp32(fp32):
        forward_probability(net, x[:1], views)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        started, cpu = time.perf_counter(), time.process_time()
        for done in range(0, windows, batch):
            out = forward_probability(net, x[:min(batch, windows - done)], views)
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.cpu()
    return time.perf_counter() - started, time.process_time() - cpu


def startup_seconds(runs: int = 3) -> tuple[float, float, bool]:
    """Median wall and CPU seconds of ``runs`` starts of a GPS-only/candidates diff: the CLI, the
    diff verb and its job imported in a fresh interpreter; and whether torch came with them."""
    code = ("import sys, osmgap.cli, osmgap.tools.diff, osmgap.jobs.diff; "
            "print('torch' in sys.modules)")
    walls, cpus, torch_loaded = [], [], True
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        torch_loaded = done.stdout.strip() == "True"
    return float(np.median(walls)), float(np.median(cpus)), torch_loaded


def stages(r: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())


def diff_rows(image: Path, osm: Path, bbox: str, d: Path, threads: int | None, workers: int,
              default_precision: str | None) -> list[dict]:
    """The whole diff untiled, tiled in-process and with --workers N (0: not run), all in fp32
    (the ratio's terms); then untiled at the default precision when that is not fp32
    (``default_precision``)."""
    configs = [("untiled", ["--fp32"]), ("tiled in-process (--workers 0)", ["--fp32", "--workers", "0"])]
    if workers:
        configs.append((f"tiled, --workers {workers}", ["--fp32", "--workers", str(workers)]))
    if default_precision:
        configs.append((f"untiled, {default_precision} (default)", []))
    rows: list[dict] = []
    for name, extra in configs:
        slug = name.split()[0].rstrip(",") + str(len(rows))
        work = ["--work-dir", str(d / f"work-{slug}")] if "--workers" in extra else []  # --work-dir alone would tile the run
        r = run(image, osm, bbox, d / f"out-{slug}", [*thread_args(threads), *work, *extra])
        r["name"] = name
        rows.append(r)
        tiles = f", {r['tiles']} tiles" if r["tiles"] else ""
        print(f"  {name:32s} wall {r['wall_s']:7.1f} s  {r['km2_per_h']:8.0f} km2/h  CPU {r['cpu_s']:7.1f} s  "
              f"peak RSS largest process {r['rss_process_mb']:5.0f} MB, tree {r['rss_tree_mb']:5.0f} MB{tiles}, "
              f"{r['torch_threads']} torch thread(s)",
              flush=True)
        print(f"  {'':32s} seconds per stage: {stages(r)}", flush=True)
    return rows


def ratio(x: float) -> str:
    """A ratio to two decimals, or to two significant digits where that would read 0.00 (on a GPU
    the bare pass is hundreds of times faster than the diff)."""
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def thread_args(threads: int | None) -> list[str]:
    """``--threads N`` when the bench was given one, else nothing: the diff's own default."""
    return ["--threads", str(threads)] if threads else []


def memory_run(n: int, tmp: Path, threads: int | None, baseline: Path | None = None) -> dict:
    """Peak RSS of one untiled command on an n x n mosaic: what grows with the area. With
    ``baseline`` (another checkout, e.g. ``git worktree add ../base HEAD~5``), the same command
    with that code first, back to back: what a change did, and whether its outputs moved."""
    dm = tmp / f"m{n}"
    dm.mkdir(parents=True, exist_ok=True)
    image, osm, bbox = build_mosaic(n, dm, overviews=True)
    if baseline is not None:
        before = run(image, osm, bbox, dm / "baseline", thread_args(threads), checkout=baseline)
        print(f"\nbaseline ({baseline}), {n}x{n} mosaic: wall {before['wall_s']:.1f} s, CPU {before['cpu_s']:.1f} s, "
              f"{before['km2_per_h']:.0f} km2/h, peak RSS {before['rss_process_mb']:.0f} MB; {load()}", flush=True)
        print(f"  seconds per stage: {stages(before)}", flush=True)
    memory = run(image, osm, bbox, dm / "out", thread_args(threads))
    if baseline is not None:
        print(f"\nthis checkout: wall {memory['wall_s']:.1f} s, CPU {memory['cpu_s']:.1f} s "
              f"(x{memory['wall_s'] / before['wall_s']:.3f} wall, x{memory['cpu_s'] / before['cpu_s']:.3f} CPU "
              "against the baseline)", flush=True)
        for name in ("suggestions.osm", "suggestions.geojson", "maproulette.geojson"):
            same = (dm / "baseline" / name).read_bytes() == (dm / "out" / name).read_bytes()
            print(f"  {name}: {'the same bytes' if same else 'DIFFERENT'} as the baseline's", flush=True)
    print(f"\nmemory run, {n}x{n} mosaic ({memory['area_km2']:.1f} km2), untiled command: wall "
          f"{memory['wall_s']:.0f} s, {memory['km2_per_h']:.0f} km2/h, peak RSS largest process "
          f"{memory['rss_process_mb']:.0f} MB, tree {memory['rss_tree_mb']:.0f} MB"
          + (f", self-tiled in {memory['tiles']} tiles" if memory["tiles"] else "")
          + f" (target < 2048 MB; {load()})", flush=True)
    print(f"  seconds per stage: {stages(memory)}", flush=True)
    print("  peak RSS of the diff process when each stage ended (MB): "
          + ", ".join(f"{k} {v:.0f}" for k, v in memory["peak_rss_mb"].items()), flush=True)
    return memory


def eval_memory_run(n: int, tmp: Path) -> dict:
    """``osmgap eval`` of the n x n mosaic against its OSM ways: wall, peak RSS, the scores (an
    image this large is run and scored by tiles, osmgap.jobs.eval)."""
    dm = tmp / f"m{n}"
    dm.mkdir(parents=True, exist_ok=True)
    image, osm, _ = build_mosaic(n, dm, overviews=True)
    r = measured(["eval", "--imagery", str(image), "--labels", str(osm), "--json", str(dm / "eval.json")])
    scores = json.loads((dm / "eval.json").read_text())
    print(f"\nosmgap eval, {n}x{n} mosaic ({scores['area_km2']:.1f} km2) against its OSM ways"
          f"{', by tiles' if scores.get('tiled') else ''}: wall {r['wall_s']:.0f} s, CPU {r['cpu_s']:.0f} s, peak RSS "
          f"largest process {r['rss_process_mb']:.0f} MB, tree {r['rss_tree_mb']:.0f} MB (target < 2048 MB; {load()})",
          flush=True)
    print("  " + ", ".join(f"{k} {scores[k]:.3f}" for k in ("iou", "relaxed_f1@3m", "apls", "topo_f1")), flush=True)
    return r


def change_memory_run(n: int, tmp: Path) -> dict:
    """``osmgap change`` of the n x n mosaic against itself, with its OSM ways: wall, peak RSS
    (an area this large tiles itself, osmgap.scale.changes); the same image twice shows no change."""
    dm = tmp / f"m{n}"
    dm.mkdir(parents=True, exist_ok=True)
    image, osm, bbox = build_mosaic(n, dm, overviews=True)
    out = dm / "change"
    r = measured(["change", "--aoi", bbox, "--before", str(image), "--after", str(image), "--osm", str(osm),
                  "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    print(f"\nosmgap change, {n}x{n} mosaic against itself{', self-tiled' if summary.get('self_tiled') else ''}: "
          f"wall {r['wall_s']:.0f} s, CPU {r['cpu_s']:.0f} s, peak RSS largest process {r['rss_process_mb']:.0f} MB, "
          f"tree {r['rss_tree_mb']:.0f} MB (target < 2048 MB; {load()}); {summary['appeared']['count']} appeared, "
          f"{summary['vanished']['count']} vanished", flush=True)
    return r


def eval_chips() -> list[tuple[str, Path, Path]]:
    root = data_root()
    chips = [("paris-1447 vs OSM", root / CHIP / "image.tif", root / CHIP / "osm_roads.geojson"),
             ("vegas vs SpaceNet (seen in training)", root / "chips/vegas-solaris/image_pan_uint16.tif",
              root / "chips/vegas-solaris/roads.geojson")]
    shanghai = root / "chips" / "shanghai"
    for n in (144, 308, 1841, 1700, 1916):
        chips.append((f"shanghai img{n}", shanghai / f"AOI_4_Shanghai_img{n}_pan.tif",
                      shanghai / f"AOI_4_Shanghai_img{n}_roads.geojson"))
    return chips


def eval_variants() -> None:
    """IoU of ``osmgap eval`` on the real chips: as before issue 17 (full-resolution warp, BatchNorm
    as trained), with the decimated read, with BatchNorm folded as well (the default now), and
    with bf16 autocast on top (what a GPU runs, here on the CPU)."""
    import osmgap.model.infer as infer
    import osmgap.sources.imagery as imagery
    from osmgap.jobs.eval import evaluate_imagery

    def unfolded(net: torch.nn.Module, in_channels: int = 3) -> torch.nn.Module:
        return net.to(memory_format=torch.channels_last)

    variants = {  # name -> (decimate from, inference net, autocast dtype on this device)
        "before (full-res warp)": (float("inf"), unfolded, lambda device: None),
        "decimated read": (imagery.DECIMATE_FROM, unfolded, lambda device: None),
        "decimated + BN folded (fp32)": (imagery.DECIMATE_FROM, inference_net, lambda device: None),
        "... + bf16 autocast": (imagery.DECIMATE_FROM, inference_net, lambda device: torch.bfloat16),
    }
    saved = (imagery.DECIMATE_FROM, infer.inference_net, infer.autocast_dtype)
    scores: dict[str, list[float]] = {}
    print("\neval IoU on the real chips (osmgap eval, shipped model):")
    try:
        for name, (decimate, make_net, autocast) in variants.items():
            imagery.DECIMATE_FROM, infer.inference_net, infer.autocast_dtype = decimate, make_net, autocast
            scores[name] = [evaluate_imagery(img, labels)["iou"] for _, img, labels in eval_chips()]
    finally:
        imagery.DECIMATE_FROM, infer.inference_net, infer.autocast_dtype = saved
    names = list(variants)
    print(f"  {'chip':38s}" + "".join(f"{n:>34s}" for n in names))
    for i, (chip, _, _) in enumerate(eval_chips()):
        print(f"  {chip:38s}" + "".join(f"{scores[n][i]:34.4f}" for n in names))
    base = np.asarray(scores[names[0]])
    for n in names[1:]:
        moved = np.asarray(scores[n]) - base
        print(f"  {n}: IoU moved by at most {np.abs(moved).max():.4f} (mean {moved.mean():+.4f}) against 'before'")
    fp32 = np.asarray(scores[names[2]])
    bf16 = np.abs(np.asarray(scores[names[3]]) - fp32).max()
    print(f"  bf16 against fp32 (both decimated + folded): at most {bf16:.4f} IoU; target < 0.005 to use it "
          f"by default: {'met' if bf16 < 0.005 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="an 8 x 8 mosaic (1.6 km2), no memory run")
    ap.add_argument("--repeats", type=int, help="the chip repeated N x N (default 29: 21 km2; 8 with --quick)")
    ap.add_argument("--memory-repeats", type=int, default=64,
                    help="an N x N mosaic run untiled for peak memory only (default 64: 102 km2; 0: skip)")
    ap.add_argument("--threads", type=int,
                    help="torch threads here and in every diff (default: the free cores here, each diff's own choice)")
    ap.add_argument("--no-workers", action="store_true", help="skip the --workers run")
    ap.add_argument("--workers", type=int, default=1,
                    help="Dask workers of the --workers row (default 1; beside a GPU more use its host's cores)")
    ap.add_argument("--eval", action="store_true", help="eval IoU on the real chips per forward-pass option")
    ap.add_argument("--eval-only", action="store_true", help="only the eval IoU part")
    ap.add_argument("--memory-only", action="store_true", help="only the --memory-repeats run (peak RSS)")
    ap.add_argument("--eval-memory", action="store_true",
                    help="with the memory run: also osmgap eval of the same mosaic (peak RSS, by tiles)")
    ap.add_argument("--change-memory", action="store_true",
                    help="with the memory run: also osmgap change of the same mosaic against itself (peak RSS)")
    ap.add_argument("--keep", type=Path, help="keep mosaics and outputs here")
    ap.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                    help="with --memory-only: run the same diff with another checkout first and compare")
    args = ap.parse_args()
    if args.eval_only:
        eval_variants()
        return
    if args.baseline is not None and not (args.memory_only and (args.baseline / "osmgap" / "__main__.py").is_file()):
        ap.error("--baseline needs --memory-only and a checkout of osmgap (a folder holding osmgap/)")
    if args.memory_only:
        tmp = Path(args.keep or tempfile.mkdtemp(prefix="osmgap-speed-"))
        memory_run(args.memory_repeats, tmp, args.threads, args.baseline)
        if args.eval_memory:
            eval_memory_run(args.memory_repeats, tmp)
        if args.change_memory:
            change_memory_run(args.memory_repeats, tmp)
        return
    n = args.repeats or (8 if args.quick else 29)
    memory_n = 0 if args.quick else args.memory_repeats
    device = pick_device()
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else None
    print(f"device: {gpu or 'CPU'}; torch {torch.__version__}, {threads} torch threads; {load()}"
          + ("" if gpu else "; no GPU in this run: GPU throughput NOT measured"))
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="osmgap-speed-"))
    tmp.mkdir(parents=True, exist_ok=True)

    d = tmp / f"m{n}"
    d.mkdir(exist_ok=True)
    started = time.perf_counter()
    image, osm, bbox = build_mosaic(n, d, overviews=True)
    built = time.perf_counter() - started
    aoi = load_aoi(bbox)
    print(f"AOI: the real Paris chip ({CHIP}) MOSAICKED {n}x{n} ({aoi.area_km2():.2f} km2) into a JPEG GeoTIFF with "
          f"512 px tiles and overviews x2-x16 ({image.stat().st_size / 2**20:.0f} MB, "
          f"{'reused from --keep' if built < 5 else f'built in {built:.0f} s'}), real OSM ways copied per repeat: "
          f"a mosaic of real data, not a real large area")

    net, meta = load_checkpoint(None, device)
    grid = analysis_grid(open_imagery(image), aoi.geometry, aoi.metric_crs, meta.resolution_m)
    windows = len(tile_origins(grid.height, WINDOW, OVERLAP)) * len(tile_origins(grid.width, WINDOW, OVERLAP))
    batch = auto_batch(WINDOW, device, windows)
    folded = inference_net(net, meta.in_channels)
    print(f"\nanalysis grid {grid.width} x {grid.height} px at {meta.resolution_m:g} m/px: {windows} windows of "
          f"{WINDOW} px ({OVERLAP} px overlap), batch {batch}, each window in {default_views(device)} views "
          f"(osmgap.model.infer.default_views: the forward passes a diff runs here, on both sides of every ratio)")
    bare_s, bare_cpu = forward_seconds(folded, windows, batch, device)
    bare = aoi.area_km2() / bare_s * 3600
    print(f"  bare forward pass (BN folded, channels-last, fp32): {bare_s:.1f} s wall, {bare_cpu:.1f} s CPU, "
          f"{bare:.0f} km2/h", flush=True)
    low = autocast_dtype(device)
    precision = None if low is None else str(low).removeprefix("torch.")
    low_s, low_cpu = bare_s, bare_cpu
    if precision:
        low_s, low_cpu = forward_seconds(folded, windows, batch, device, fp32=False)
        print(f"  bare forward pass at the default precision ({precision} autocast): {low_s:.1f} s wall, "
              f"{low_cpu:.1f} s CPU, {aoi.area_km2() / low_s * 3600:.0f} km2/h (x{bare_s / low_s:.2f} fp32)", flush=True)
    else:
        print("  no native bf16 on this device: the default precision is fp32", flush=True)
    sample = min(windows, 4 * batch)  # the variants on a sample of the windows, each against the same sample
    variants = {"BN folded": forward_seconds(folded, sample, batch, device),
                "as trained (BN unfolded)": forward_seconds(net.to(memory_format=torch.channels_last), sample, batch,
                                                            device),
                "BN folded, default precision": forward_seconds(folded, sample, batch, device, fp32=False)}
    base_wall, base_cpu = variants["BN folded"]
    for name, (wall, cpu) in variants.items():
        print(f"  {sample} windows, {name:26s} {wall:6.2f} s wall, {cpu:6.2f} s CPU: "
              f"x{base_wall / wall:.2f} wall, x{base_cpu / cpu:.2f} CPU against BN folded fp32")

    print(f"\nwhole osmgap diff on the {n}x{n} mosaic, "
          f"{f'{threads} torch thread(s)' if args.threads else 'torch threads of its own choosing'} ({load()}):")
    rows = diff_rows(image, osm, bbox, d, args.threads, 0 if args.no_workers else args.workers, precision)
    print(f"  {load()}")

    print("\nratios (this run):")
    workers = next((r for r in rows if r["name"].startswith("tiled, --workers")), None)
    for r in rows:
        fp32_row = "(default)" not in r["name"]
        ref_s, ref_cpu = (bare_s, bare_cpu) if fp32_row else (low_s, low_cpu)
        print(f"  {r['name']:32s} whole diff / bare forward pass ({'fp32' if fp32_row else precision}) = "
              f"{ratio(r['km2_per_h'] / (aoi.area_km2() / ref_s * 3600))} wall, "
              f"{ratio(ref_cpu / r['cpu_s'])} CPU seconds (less sensitive to a busy machine)")
    print(f"  tiled in-process / untiled = {rows[1]['km2_per_h'] / rows[0]['km2_per_h']:.2f}"
          + (f"; {workers['name'].removeprefix('tiled, ')} / untiled = "
             f"{workers['km2_per_h'] / rows[0]['km2_per_h']:.2f}" if workers else ""))

    memory = memory_run(memory_n, tmp, args.threads) if memory_n else None
    evaluated = eval_memory_run(memory_n, tmp) if memory_n and args.eval_memory else None
    changed = change_memory_run(memory_n, tmp) if memory_n and args.change_memory else None

    start_s, start_cpu, torch_loaded = startup_seconds()
    print(f"\nstart-up of a GPS-only/candidates diff (CLI + diff verb + job imported, fresh interpreter): "
          f"{start_s:.2f} s wall, {start_cpu:.2f} s CPU, torch imported: {torch_loaded}")

    if args.eval:
        eval_variants()

    untiled, tiled = rows[0], rows[1]
    area = f"{untiled['area_km2']:.1f} km2"
    print(f"\ntargets (issue 17) beside this run's figures ({load()}):")
    print(f"  whole diff / bare forward >= 0.50 untiled at >= 20 km2: {ratio(untiled['km2_per_h'] / bare)} wall, "
          f"{ratio(bare_cpu / untiled['cpu_s'])} CPU, at {area}")
    print(f"  whole diff / bare forward >= 0.45 tiled:               {ratio(tiled['km2_per_h'] / bare)} wall, "
          f"{ratio(bare_cpu / tiled['cpu_s'])} CPU, at {area}"
          + (f" ({workers['name'].removeprefix('tiled, ')}: {ratio(workers['km2_per_h'] / bare)} wall, "
             f"{ratio(bare_cpu / workers['cpu_s'])} CPU)" if workers else ""))
    peak = max(r["rss_process_mb"] for r in rows)
    print(f"  peak RSS < 2048 MB at 20 km2:  {peak:.0f} MB (largest process, any of the runs above, at {area})")
    print("  peak RSS < 2048 MB at 100 km2: "
          + (f"{memory['rss_process_mb']:.0f} MB at {memory['area_km2']:.0f} km2" if memory else "not run")
          + (f"; osmgap eval of it {evaluated['rss_process_mb']:.0f} MB" if evaluated else "")
          + (f"; osmgap change of it {changed['rss_process_mb']:.0f} MB" if changed else ""))
    fastest = rows[-1] if precision else untiled
    print(f"  whole diff >= 2,500 km2/h at 1 m/px ({'GPU' if gpu else 'this CPU'}): {fastest['km2_per_h']:.0f} km2/h "
          f"untiled at the default precision ({precision or 'fp32'}) at {area}, {max(r['km2_per_h'] for r in rows):.0f} at best"
          + (f"; {memory['km2_per_h']:.0f} km2/h at {memory['area_km2']:.0f} km2 (the memory run, same precision)"
             if memory else ""))
    print(f"  GPS-only and candidates start-up < {GPS_STARTUP_TARGET_S:g} s: {start_s:.2f} s wall, {start_cpu:.2f} s CPU "
          f"(torch imported: {torch_loaded})")
    if gpu:
        print(f"  GPU whole diff >= 20,000 km2/h on one H100/H200: {fastest['km2_per_h']:.0f} km2/h untiled at the "
              f"default precision at {area}, "
              + "; ".join(f"{r['name']} {r['km2_per_h']:.0f}" for r in rows)
              + (f"; {memory['km2_per_h']:.0f} km2/h at {memory['area_km2']:.0f} km2" if memory else "")
              + f" on {gpu}")
    print(f"peak RSS of this bench process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"outputs in {tmp}" if args.keep else "")


if __name__ == "__main__":
    main()
