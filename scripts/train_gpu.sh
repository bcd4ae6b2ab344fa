#!/usr/bin/env bash
# The road model's training recipe, sized for ten minutes of one H100/H200 (issue 15):
#   scripts/train_gpu.sh [OUT.pt]
# It warm-starts from the shipped model and trains on every labelled dataset in the data directory
# ($OSMGAP_DATA or ../shared/data), or on a training pack (PACK=FILE, written beforehand where the
# data are by `osmgap train --data ... --write-pack --out FILE`: a GPU machine then needs torch and
# smp alone), with the recipe of osmgap/model/train.py. Its cosine schedule anneals over $MINUTES
# (default 8) of training in all, or $STEPS steps if those run out first, so it ends annealed on
# a GPU of any speed; all cores but one build the augmented crops. It keeps the best checkpoint
# by validation IoU at OUT.pt (default runs/gpu.pt) and a training state at OUT.pt.state at every
# validation: run the same command again to resume a run that was cut short. On a CPU it runs
# too, only about 100x slower: set STEPS/BATCH/CROP smaller to try it. INIT_ENCODER=FILE takes the
# encoder from `osmgap pretrain` (self-supervised; the decoder from $INIT, re-fitted by this run).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu.pt}
mkdir -p "$(dirname "$OUT")"
ARGS=(--out "$OUT" --init "${INIT:-osmgap/model/weights/default.pt}" --steps "${STEPS:-40000}"
      --batch "${BATCH:-32}" --crop "${CROP:-320}" --lr "${LR:-1e-3}" --schedule cosine-fit --seed "${SEED:-0}"
      --eval-every "${EVAL_EVERY:-500}" --max-minutes "${MINUTES:-8}" --no-progress)
if [ -n "${INIT_ENCODER:-}" ]; then
  ARGS+=(--init-encoder "$INIT_ENCODER")
fi
if [ -n "${PACK:-}" ]; then
  ARGS+=(--pack "$PACK")
else
  ARGS+=(--data "${DATA:-massachusetts,massachusetts-tiles,shanghai,shanghai-mul,deepglobe,spacenet}")
fi
if [ -f "$OUT.state" ]; then
  ARGS+=(--resume "$OUT.state")
else
  ARGS+=(--overwrite)  # a model left by a run killed before its first validation: nothing to resume
fi
OSMGAP=${OSMGAP:-.venv/bin/osmgap}
exec $OSMGAP train "${ARGS[@]}"
