#!/usr/bin/env bash
# The test suite on the oldest torch that pyproject.toml allows (torch>=2.4), in its own venv:
# torch 2.4.1 with the torchvision built for it (about 3 GB from PyPI on the first run).
#   bash scripts/oldest_torch.sh            # venv in /tmp/cnnprof-torch24 (kept for re-runs)
#   VENV=/path bash scripts/oldest_torch.sh
#   PYTHON=python3.10 VENV=/tmp/cnnprof-py310 bash scripts/oldest_torch.sh  # oldest Python too
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-/tmp/cnnprof-torch24}
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q "torch==2.4.1" "torchvision==0.19.1"
"$venv/bin/pip" install -q -e '.[dev]'  # torch>=2.4 is met: pip keeps 2.4.1
"$venv/bin/python" -c "import sys, torch, torchvision; print('python', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__)"
"$venv/bin/python" -m pytest -n 2 -q -p no:cacheprovider "$@"
