#!/usr/bin/env bash
# The road model's training recipe, sized for ten minutes of one H100/H200 (issue 15):
#   scripts/train_gpu.sh [OUT.pt]
# It warm-starts from the shipped model, trains on every labelled dataset in the data directory
# ($OSMGAP_DATA or ../shared/data) with the recipe of osmgap/model/train.py, keeps the best
# checkpoint by validation IoU at OUT.pt (default runs/gpu.pt) and a training state at
# OUT.pt.state at every validation. It stops itself after $MINUTES (default 9) minutes; run the
# same command again to resume from the state (same schedule, same settings). On a CPU it runs
# too, only about 100x slower: set STEPS/BATCH/CROP smaller to try it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu.pt}
mkdir -p "$(dirname "$OUT")"
ARGS=(--out "$OUT" --data "${DATA:-massachusetts,massachusetts-tiles,shanghai,deepglobe,spacenet}"
      --init "${INIT:-osmgap/model/weights/default.pt}" --steps "${STEPS:-6000}" --batch "${BATCH:-32}"
      --crop "${CROP:-320}" --lr "${LR:-1e-3}" --schedule cosine --seed "${SEED:-0}"
      --eval-every "${EVAL_EVERY:-500}" --max-minutes "${MINUTES:-9}" --no-progress)
if [ -f "$OUT.state" ]; then
  ARGS+=(--resume "$OUT.state")
fi
exec .venv/bin/osmgap train "${ARGS[@]}"
