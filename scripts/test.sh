#!/usr/bin/env bash
# Set up (if needed), lint (ruff) and run the test suite. Extra arguments go to pytest (-n 0: one process).
# Two workers (pytest-xdist), a test file per worker at a time (its module fixtures built once): most tests wait on
# a train.py/distill.py subprocess whose start-up (imports) is single-threaded, so one worker kept 2 cores ~55% busy.
# Subprocesses get a free MASTER_PORT each (tests/helpers.py), so two workers' torch.distributed never collide.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# lint first (pyproject.toml's [tool.ruff]; the pinned ruff comes with the dev extra): a finding fails the run
.venv/bin/ruff check .
export HF_HUB_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# two workers on a 2-core machine, each mostly waiting on a train.py/distill.py subprocess: one torch thread per
# process, or two processes' two threads each fight over two cores
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${THINKLESS_TEST_WORKERS:-2}" --dist loadfile \
  --durations=15 "$@"
