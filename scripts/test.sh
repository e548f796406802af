#!/usr/bin/env bash
# The whole test suite: unit tests, then every book chapter executed as a notebook (nbval).
# Run from anywhere inside the checkout, in an environment made by the README's set-up
# command. Fails (non-zero) on any failure, and when no test was collected (pytest exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."

# SIAMMASK_EDU_SLOW=1: the equivalence tests cover every frame of every fixture track.
export MPLBACKEND=Agg SIAMMASK_EDU_FAST=1 SIAMMASK_EDU_SLOW=1 PYTHONHASHSEED=0
jobs=${SIAMMASK_EDU_TEST_JOBS:-2}

echo "== unit tests =="
python -m pytest -q -rs tests/ -n "$jobs" --durations=15

echo "== book chapters (executed notebooks) =="
chapters=(book/[0-9][0-9]_*.py)
if [ ! -e "${chapters[0]}" ]; then
  echo "no book chapters found" >&2
  exit 1
fi
# jupytext writes book/NN_name.ipynb beside each source (git-ignored): nbval starts each
# kernel in the notebook's folder, so notebooks are executed where their source lives.
python -m jupytext --quiet --to ipynb "${chapters[@]}"
python -m pytest -q -p no:python --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
  -n "$jobs" --dist loadscope --durations=15 book/
