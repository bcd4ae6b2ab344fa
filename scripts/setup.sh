#!/usr/bin/env bash
# Set up osmgap in ./.venv on a fresh machine. With --test, also pytest, JOSM (Debian
# package `josm`, whose validator the tests run on the .osm files osmgap writes) and Chromium
# (Debian `chromium`, in which the tests open the HTML report headless).
#
# torch and torchvision are pinned as a pair from PyPI (pyproject.toml): the machine's local
# CPU-only torch wheel cannot load torchvision's operators, which smp and timm import.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
# Debian packages: python3-venv where the interpreter cannot make a venv; with --test also JOSM
# (whose validator the tests run) and Chromium (which opens the HTML pages headless).
missing=""
"$python" -c 'import ensurepip, venv' 2>/dev/null || [ -x .venv/bin/python ] || missing="$missing python3-venv"
if [ "${1:-}" = "--test" ]; then
  [ -f /usr/share/josm/josm.jar ] || missing="$missing josm"
  command -v chromium >/dev/null || missing="$missing chromium"
fi
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
# Leaflet for the scan map page, from the npm registry, checked against its pinned sha512.
scripts/fetch_leaflet.sh
# Prove the torch/torchvision pair works: smp imports torchvision through timm.
.venv/bin/python -c "import torch, torchvision, segmentation_models_pytorch as smp; print(f'osmgap setup: torch {torch.__version__}, torchvision {torchvision.__version__}, smp {smp.__version__}')"
