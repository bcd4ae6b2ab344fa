"""Which training ingredients help (issue 15, items 3 and 4)? One fine-tune per ingredient, same recipe.

Every variant is the "replay" fine-tune of the model card: the shipped model trained further on
Massachusetts, DeepGlobe and the Vegas chip plus two labelled Shanghai chips (img144, img1841, as a
user's ``--pair``s), 300 steps, batch 6, lr 5e-4, cosine, seed 0; the variants differ in one
ingredient only:

- ``base``: Dice+BCE (the recipe as shipped);
- ``cldice``: 30 % of the loss soft-clDice (``--cldice 0.3``);
- ``nearroad``: non-road pixels within 4 px of a labelled road at BCE weight 0.3 (``--near-road-weight 0.3``);
- ``bootstrap``: 20 % of a non-road pixel's target from the net's own belief (``--bootstrap 0.2``);
- ``ssl``: the encoder first pretrained by masked reconstruction on every image at hand (300 steps,
  ``osmgap pretrain``; held-out images excluded), then the base recipe (``--init-encoder``).

Each is scored by ``bench/generalize.py`` (Massachusetts crops and held-out tiles, held-out Shanghai
chips, Paris vs its OSM, Vegas) and the figures are printed side by side. One seed per variant:
``--seed`` gives another, to see how far a seed alone moves the figures. About 10 CPU minutes per
variant at one thread (25 for ssl); checkpoints are kept in --out and reused when there.

Usage: python bench/ingredients.py [--out runs/ingredients] [--variants base,cldice,...] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalize import with_nodata_zero  # noqa: E402

from osmgap.core.datapaths import data_root  # noqa: E402

VARIANTS = {"base": [], "cldice": ["--cldice", "0.3"], "nearroad": ["--near-road-weight", "0.3"],
            "bootstrap": ["--bootstrap", "0.2"], "ssl": []}
PAIR_CHIPS = ("144", "1841")
ROWS = [("massachusetts crops (b)", "iou"), ("massachusetts crops (b)", "apls"),
        ("mass. tiles held out (a)", "iou"), ("mass. tiles held out (a)", "relaxed_f1@3m"),
        ("mass. tiles held out (a)", "apls"), ("shanghai held out (a)", "relaxed_f1@3m"),
        ("shanghai held out (a)", "apls"), ("paris vs OSM (a)", "relaxed_f1@10m"), ("paris vs OSM (a)", "apls"),
        ("vegas PAN (in training)", "relaxed_f1@3m"), ("vegas PAN (in training)", "apls")]
PROJECT = Path(__file__).resolve().parent.parent


def osmgap(*args: str, log: Path) -> None:
    with log.open("w") as f:
        subprocess.run([sys.executable, "-m", "osmgap", *args], cwd=PROJECT, stdout=f, stderr=subprocess.STDOUT,
                       check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=PROJECT / "runs" / "ingredients")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chips = data_root() / "chips" / "shanghai"
    pairs = []
    for n in PAIR_CHIPS:  # pixel value 0 is outside the satellite strip: declared as no-data
        pan = with_nodata_zero(chips / f"AOI_4_Shanghai_img{n}_pan.tif", args.out / f"img{n}_pan.tif")
        pairs += ["--pair", f"{pan}={chips / f'AOI_4_Shanghai_img{n}_roads.geojson'}"]
    recipe = ["--data", "massachusetts,deepglobe,spacenet", *pairs, "--init", "osmgap/model/weights/default.pt",
              "--steps", str(args.steps), "--batch", "6", "--lr", "5e-4", "--schedule", "cosine",
              "--seed", str(args.seed), "--no-progress"]
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    scores = {}
    for name in names:
        tag = f"{name}-s{args.seed}"
        model = args.out / f"{tag}.pt"
        extra = VARIANTS[name]
        if name == "ssl":
            encoder = args.out / f"encoder-s{args.seed}.pt"
            if not encoder.exists():
                osmgap("pretrain", "--out", str(encoder), "--steps", str(args.steps), "--lr", "1e-3",
                       "--seed", str(args.seed), log=args.out / f"encoder-s{args.seed}.log")
            extra = ["--init-encoder", str(encoder)]
        record, state = Path(f"{model}.json"), Path(f"{model}.state")
        if not record.exists() or str(json.loads(record.read_text()).get("stopped", "")).startswith("in progress"):
            again = ["--resume", str(state)] if state.exists() else ["--overwrite"]  # a run stopped before its end
            osmgap("train", "--out", str(model), *recipe, *extra, *again, log=args.out / f"{tag}.log")
        figures = args.out / f"{tag}.gen.json"
        if not figures.exists():
            subprocess.run([sys.executable, "bench/generalize.py", "--model", str(model), "--json", str(figures)],
                           cwd=PROJECT, stdout=subprocess.DEVNULL, check=True)
        scores[name] = json.loads(figures.read_text())
        print(f"{name}: done", flush=True)
    print(f"\nseed {args.seed}, {args.steps} steps per variant; figures from bench/generalize.py")
    print(f"{'row':46s}" + "".join(f"{n:>11s}" for n in names))
    for row, key in ROWS:
        print(f"{row + ' ' + key:46s}" + "".join(f"{scores[n][row][key]:11.3f}" for n in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
