#!/usr/bin/env bash
# What a bare GPU machine needs to run osmgap's GPU checks, prepared here (where PyPI and the data
# are) so that the machine's few minutes go to the check itself:
#   scripts/device_kit.sh train   # .whl/ (smp) + runs/train.pack.npz: scripts/train_gpu.sh from a pack
#   scripts/device_kit.sh speed   # .whl/ (the GIS stack) + runs/kit-data/: bench/speed.py's whole diff
#   DASK=1 scripts/device_kit.sh speed   # ... and Dask, for the --workers row (only if the tree leaves room)
#   HOST=1 scripts/device_kit.sh speed   # bench/host_ceiling.py at 102.7 km2 instead: the GPU diff's host share
# Such a machine (this workplace's H100/H200) has Python 3.12, torch, torchvision, timm, numpy,
# scipy, pandas, scikit-image, numba, matplotlib, pyarrow and Pillow, but no rasterio, pyproj,
# shapely, osmium or smp, no data directory and no internet; everything travels in one copy of
# the repository of at most 64 MiB, the project's own ~25 MB included. Hence the training pack
# (osmgap.model.pack) and, for the speed kit, wheels chosen for size: rasterio 1.4.3 (22 MB;
# 1.5 is 39 MB) and pyproj 3.6.1 (8.7 MB). The speed kit is ~37 MB (~41 MB with Dask): with the
# project's ~25 MB, Dask no longer fits in the 67.1 MB a call may carry (stop 30); the diff itself
# needs no smp (osmgap.model.linknet builds the shipped net).
# The script prints the command to run there and the paths to carry (both ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?usage: scripts/device_kit.sh train|speed}
WHEELS=()
BENCH="bench/speed.py --no-workers --memory-repeats 64"
if [ "$KIND" = train ]; then
  WHEELS+=(segmentation-models-pytorch==0.6.0)  # for architectures other than the shipped LinkNet
else
  # geopandas runs on shapely's STRtree (rtree left out)
  WHEELS+=(rasterio==1.4.3 pyproj==3.6.1 shapely==2.2.0 osmium==4.3.2 geopandas==1.2.0 affine==3.0.1
           cligj==0.7.2 click-plugins==1.1.1.2 click overpy==0.7 sknw==0.15)
  if [ -n "${DASK:-}" ]; then  # the --workers row (torch brings jinja2 and fsspec)
    WHEELS+=(dask==2026.8.0 distributed==2026.8.0 pyyaml cloudpickle partd toolz locket msgpack sortedcontainers tblib
             tornado zict)
    BENCH="bench/speed.py --workers 4 --memory-repeats 64"
  fi
  if [ -n "${HOST:-}" ]; then  # three 102.7 km2 diffs: as a user runs it, recorded, the forward pass answered
    BENCH="bench/host_ceiling.py --repeats 64"
  fi
fi
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl runs
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
INSTALL='python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 || exit;'
DATA=${OSMGAP_DATA:-../shared/data}
if [ "$KIND" = train ]; then
  .venv/bin/osmgap train --data "${DATA_SETS:-massachusetts,massachusetts-tiles,shanghai,shanghai-mul,deepglobe,spacenet}" \
    --write-pack --out runs/train.pack.npz
  CARRY='["runs/train.pack.npz", ".whl"]'
  RUN="$INSTALL PACK=runs/train.pack.npz MINUTES=7 OSMGAP=\"python3 -m osmgap\" timeout 500 bash scripts/train_gpu.sh runs/gpu.pt 2>&1 | tee \$OUT/train.log; cp runs/gpu.pt.json \$OUT/; split -b 12m runs/gpu.pt \$OUT/gpu.pt.part-"
else
  rm -rf runs/kit-data && mkdir -p runs/kit-data/sample_aoi
  cp -r "$DATA/sample_aoi/paris-1447" runs/kit-data/sample_aoi/
  CARRY='["runs/kit-data", ".whl"]'
  # The machine's Python writes no bytecode and its torch ships none, so every process compiled its
  # imports from source (stop 29's profile: ~2.7 s of CPU in a 21 km2 diff, its graph process
  # included), which an installed osmgap does not: one warm-up diff on the sample AOI writes them
  # to a cache first.
  WARM='export PYTHONPYCACHEPREFIX=/tmp/pycache; unset PYTHONDONTWRITEBYTECODE; python3 -m osmgap diff --aoi sample_aoi/paris-1447 --out /tmp/warm-up >/dev/null 2>&1 || echo warm-up diff failed;'
  RUN="$INSTALL export OSMGAP_DATA=\$PWD/runs/kit-data; $WARM timeout 540 python3 $BENCH 2>&1 | tee \$OUT/speed.log"
fi
echo "kit: $(du -sh .whl | cut -f1) of wheels; carry $CARRY"
echo "device run command (then give_back; fetch the checkpoint parts with: cat gpu.pt.part-* > gpu.pt):"
echo "set -o pipefail; $RUN"
