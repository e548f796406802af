#!/usr/bin/env bash
# The whole test suite: unit tests, then every book chapter executed as a notebook (nbval).
# Run from anywhere inside the checkout, in an environment made by the README's set-up
# command. Fails (non-zero) on any failure, and when no test was collected (pytest exit 5).
#
# With the project's data and reference fixtures (../shared, or $SIAMMASK_EDU_DATA and
# $SIAMMASK_EDU_REFERENCE) the book runs twice: in full, then as a learner's clone sees it
# (both roots pointed at empty folders), so that both stay green. Without them (a learner's
# clone) the tests that need them skip, each with its reason, and the book runs once, as is.
# SIAMMASK_EDU_REQUIRE_DATA=1 (set by .ci/run) turns every such skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# SIAMMASK_EDU_SHORT_RUNS=1: loops shortened (fewer frames, steps, repeats) and 1 torch
# thread per notebook; SIAMMASK_EDU_SLOW=1: the equivalence tests cover every frame of
# every fixture track.
export MPLBACKEND=Agg SIAMMASK_EDU_SHORT_RUNS=1 SIAMMASK_EDU_SLOW=1 PYTHONHASHSEED=0
jobs=${SIAMMASK_EDU_TEST_JOBS:-2}

# "full" = the DAVIS-2016 val sequences and the reference fixtures are both here.
if python -c "import sys; from siammask_edu.paths import have_davis, have_fixtures; \
sys.exit(0 if have_davis() and have_fixtures() else 1)"; then
  full=1
else
  full=0
  echo "no data or reference fixtures here (../shared): the tests that need them are skipped"
  if [ "${SIAMMASK_EDU_REQUIRE_DATA:-0}" != "0" ]; then
    echo "SIAMMASK_EDU_REQUIRE_DATA is set: the data and the fixtures are required" >&2
    exit 1
  fi
fi

echo "== unit tests =="
python -m pytest -q -rs tests/ -n "$jobs" --durations=15

chapters=(book/[0-9][0-9]_*.py)
if [ ! -e "${chapters[0]}" ]; then
  echo "no book chapters found" >&2
  exit 1
fi
# jupytext writes book/NN_name.ipynb beside each source (git-ignored): nbval starts each
# kernel in the notebook's folder, so notebooks are executed where their source lives.
# They are removed again at the end: outputless copies left beside the .py sources would go
# stale and could be opened in JupyterLab instead of the chapter itself.
empty=""
cleanup() {
  rm -f "${chapters[@]/%.py/.ipynb}"
  if [ -n "$empty" ]; then rm -rf "$empty"; fi
}
trap cleanup EXIT
python -m jupytext --quiet --to ipynb "${chapters[@]}"
run_book() {
  python -m pytest -q -p no:python --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
    -n "$jobs" --dist loadscope --durations=15 book/
}

if [ "$full" = 1 ]; then
  echo "== book chapters (executed notebooks), with the data and the fixtures =="
  run_book
  echo "== book chapters as a learner's clone runs them: no data, no fixtures =="
  empty=$(mktemp -d)
  mkdir -p "$empty/data" "$empty/reference"
  SIAMMASK_EDU_DATA="$empty/data" SIAMMASK_EDU_REFERENCE="$empty/reference" run_book
else
  echo "== book chapters (executed notebooks) =="
  run_book
fi
