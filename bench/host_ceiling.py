"""How fast could any GPU make the whole diff on this host? The host's share of ``osmgap diff`` (issue 17).

Beside a GPU the forward pass takes a fraction of a second (stop 29: 0.2 s of a 21 km2 diff on an
H200); what is left is the host's work: reading and warping the imagery, stitching windows,
extracting and stitching the graph, conflation, writing. Issue 17 asks >= 20,000 km2/h of the whole
diff on one GPU, which no GPU reaches if the host's work alone takes longer. This measures that
work without a GPU: the same diff run three times on the real Paris chip mosaicked N x N
(bench/scale.py's AOI: a mosaic of real data, not a real large area):

1. ``osmgap diff`` as a user runs it (a subprocess): wall, seconds per stage, and its start-up
   (wall minus the stages: imports, model load);
2. the same diff in this process with every forward pass recorded, keyed by its input window's
   bytes (the forward pass is a pure function of the window);
3. the same diff again with every forward pass answered from that record (saved to a file): the
   model costs nothing, everything else runs as it did (the same windows read and warped, the same
   graph, conflation and files; checked byte for byte against run 2's suggestion files),
   ``--answered`` times (2), the fastest counted: a shared machine's noise only ever slows a run.
   Each answered run is a fresh process, as a user's run is (stop 44: answered in the bench's own
   process, after the recording run, conflation took 7-10 s where the user's run took 5-6.5 s).

Printed: run 1 and run 3 side by side, per stage, and the ceiling: the area over (run 1's start-up
+ run 3's wall), the km2/h of a diff whose forward pass were free on this host. Run on a GPU machine
it splits that machine's diff the same way (there run 3's windows are read by osmgap's GPU reading
threads). Run 3 is timed from the diff's call in its process, imports already done (loading the
record needs torch), which is why run 1's start-up is added back.

    python bench/host_ceiling.py [--repeats 29] [--keep DIR] [--answered 2]   # 29: 21 km2; 64: 102.7 km2
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import osmgap.model.infer as infer  # noqa: E402
from bench.scale import build_mosaic, run  # noqa: E402
from osmgap.cli import main as osmgap_main  # noqa: E402
from osmgap.model.infer import reading_threads  # noqa: E402
from osmgap.model.nets import pick_device  # noqa: E402

Forward = Callable[..., torch.Tensor]
OUTPUTS = ("suggestions.osm", "suggestions.geojson", "maproulette.geojson")
TARGET_KM2_PER_H = 20_000  # issue 17, on one GPU


def window_key(x: torch.Tensor) -> bytes:
    """A digest of one normalized window's values: equal windows, equal answers."""
    return hashlib.blake2b(x.detach().float().cpu().contiguous().numpy().tobytes(), digest_size=16).digest()


class Record:
    """The forward pass's answers, one (H, W) probability per window, in float32 as it gave them."""

    def __init__(self) -> None:
        self.answers: dict[bytes, torch.Tensor] = {}
        self.misses = 0

    def recording(self, real: Forward) -> Forward:
        def forward(net: torch.nn.Module, x: torch.Tensor, views: int = 1) -> torch.Tensor:
            out = real(net, x, views)
            for i in range(x.shape[0]):
                self.answers[window_key(x[i])] = out[i].detach().float().cpu().clone()
            return out
        return forward

    def replaying(self) -> Forward:
        def forward(net: torch.nn.Module, x: torch.Tensor, views: int = 1) -> torch.Tensor:
            outs = []
            for i in range(x.shape[0]):
                known = self.answers.get(window_key(x[i]))
                if known is None:
                    self.misses += 1
                    known = torch.zeros(x.shape[2:])
                outs.append(known)
            return torch.stack(outs).to(x.device)
        return forward


@contextmanager
def forward_replaced(forward: Forward) -> Iterator[None]:
    """osmgap's forward pass (``osmgap.model.infer.forward_probability``) swapped for the block."""
    saved = infer.forward_probability
    infer.forward_probability = forward
    try:
        yield
    finally:
        infer.forward_probability = saved


def diff_here(image: Path, osm: Path, bbox: str, out: Path) -> tuple[float, dict]:
    """``osmgap diff`` in this process: its wall seconds and summary.json."""
    started = time.perf_counter()
    code = osmgap_main(["diff", "--aoi", bbox, "--imagery", str(image), "--osm", str(osm), "--out", str(out)])
    wall = time.perf_counter() - started
    if code:
        raise SystemExit(f"osmgap diff exited {code}")
    return wall, json.loads((out / "summary.json").read_text())


def answered_elsewhere(record_file: Path, image: Path, osm: Path, bbox: str, out: Path,
                       record: Record) -> tuple[float, dict]:
    """Run 3 once, in a fresh process (``--answer``): its wall seconds and summary.json; the
    windows it did not find in the record are added to ``record.misses``."""
    proc = subprocess.run([sys.executable, __file__, "--answer", str(record_file), str(image), str(osm), bbox, str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"the answered diff failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    record.misses += result["misses"]
    return result["wall_s"], json.loads((out / "summary.json").read_text())


def answer(record_file: Path, image: Path, osm: Path, bbox: str, out: Path) -> None:
    """The diff with every forward pass answered from ``record_file``; prints its wall and misses."""
    record = Record()
    record.answers = torch.load(record_file)
    with forward_replaced(record.replaying()):
        wall, _ = diff_here(image, osm, bbox, out)
    print(json.dumps({"wall_s": wall, "misses": record.misses}))


def stage_line(stages: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if k != "total")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=29, help="the chip repeated N x N (29: 21 km2; 64: 102.7 km2)")
    ap.add_argument("--keep", type=Path, help="keep the mosaic and outputs here")
    ap.add_argument("--answered", type=int, default=2, help="run 3 this many times, the fastest counted (default 2)")
    ap.add_argument("--answer", nargs=5, metavar=("RECORD", "IMAGE", "OSM", "BBOX", "OUT"),
                    help=argparse.SUPPRESS)  # one run 3, in the process this starts (answered_elsewhere)
    args = ap.parse_args()
    if args.answer:
        record_file, image, osm, bbox, out = args.answer
        answer(Path(record_file), Path(image), Path(osm), bbox, Path(out))
        return
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="osmgap-host-"))
    tmp.mkdir(parents=True, exist_ok=True)
    image, osm, bbox = build_mosaic(args.repeats, tmp, overviews=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"

    whole = run(image, osm, bbox, tmp / "diff", [])
    startup = whole["wall_s"] - whole["stages"]["total"]
    record = Record()
    with forward_replaced(record.recording(infer.forward_probability)):
        diff_here(image, osm, bbox, tmp / "recorded")
    record_file = tmp / "record.pt"
    torch.save(record.answers, record_file)
    answered = []  # (wall, summary, which run)
    for i in range(args.answered):
        answered.append((*answered_elsewhere(record_file, image, osm, bbox, tmp / f"replayed{i}", record), i))
    record_file.unlink()
    same = all((tmp / "recorded" / f).read_bytes() == (tmp / f"replayed{i}" / f).read_bytes()
               for f in OUTPUTS for i in range(args.answered))
    answered.sort(key=lambda run: run[0])
    host_wall, summary, _ = answered[0]
    area = whole["area_km2"]
    ceiling = area / (startup + host_wall) * 3600
    one_core = startup + sum(v for k, v in summary["seconds"].items() if k not in ("segment", "total"))
    share = 1 - (startup + host_wall) / whole["wall_s"]
    print("\n".join([
        f"AOI: the real Paris chip mosaicked {args.repeats}x{args.repeats} ({area:.1f} km2), {device}; "
        f"{len(record.answers)} windows recorded, {record.misses} not found when replayed; every replayed run's "
        f"suggestion files {'the same bytes as' if same else 'DIFFERENT from'} the recorded run's",
        f"1. osmgap diff (subprocess):        wall {whole['wall_s']:6.1f} s  {whole['km2_per_h']:7.0f} km2/h  "
        f"start-up {startup:.1f} s; stages: {stage_line(whole['stages'])}",
        f"3. the same, forward pass answered: wall {host_wall:6.1f} s (a fresh process, timed from the diff's call; fastest of "
        f"{', '.join(f'{wall:.1f}' for wall, _, _ in sorted(answered, key=lambda run: run[2]))} s); "
        f"stages: {stage_line(summary['seconds'])}",
        f"the forward pass's share of the whole diff here: {share:.2f}; the host's work: "
        f"{startup + host_wall:.1f} s with start-up",
        f"ceiling, a diff whose forward pass costs nothing on this host: {ceiling:,.0f} km2/h "
        "(issue 17's GPU target: >= 20,000 km2/h)",
        f"of that, one core at a time (start-up, inputs, osm, graph stitching, conflation, writing): {one_core:.1f} s, "
        f"against the {area / TARGET_KM2_PER_H * 3600:.1f} s the target allows at this area; the segment stage "
        f"(reading and warping on {reading_threads(pick_device())} reading thread(s) here): {summary['seconds']['segment']:.1f} s",
        *([f"outputs in {tmp}"] if args.keep else []),
    ]))


if __name__ == "__main__":
    main()
