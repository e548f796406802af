#!/usr/bin/env bash
# The GPU suite on a bare machine (siammask_edu/gpu_suite.py says what it measures).
#
#   bash benchmarks/gpu_suite.sh OUT.json [suite options]     e.g. --dry-run on a CPU
#
# Runs from the checkout without installing it: the machine's own python3 must hold torch
# (and numpy, OpenCV, SciPy); a package it lacks (shapely, on the lent H200 image) is
# carried as wheels in .whl/ (git-ignored; how to fetch them: the device tool's README) and
# installed into /tmp/site. Writes OUT.json after every row, then prints the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash benchmarks/gpu_suite.sh OUT.json [options]}
shift
for whl in .whl/*.whl; do
  [ -e "$whl" ] || break
  # a wheel for another Python/platform (running it here on a CPU, say) is skipped
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$whl" || echo "gpu_suite.sh: skipping $whl (not for this python3)"
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
done
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
fi
python3 -m siammask_edu.gpu_suite --out "$out" "$@"
