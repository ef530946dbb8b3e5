#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest (-n 0: one process).
# Two workers (pytest-xdist): most tests wait on a train.py/distill.py subprocess whose start-up (imports) is
# single-threaded, so one worker keeps 2 cores ~55% busy. Tests that open ports or launch several processes
# (xdist_group "ports") run on one worker, one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${THINKLESS_TEST_WORKERS:-2}" --dist loadgroup \
  --durations=15 "$@"
