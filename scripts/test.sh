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
# DeepSpeed's CPU backend compiles its shared-memory all-reduce op (deepspeed_shm_comm, torch's extension cache) when
# a multi-process run first starts, and again for a venv at a new path: about 80 s of one test on a fresh clone
# (tests/test_multiprocess.py). Built here with DeepSpeed's own call, as the environment, like vLLM above; cached: ~5 s
.venv/bin/python -c "from deepspeed.comm.torch import build_shm_op; build_shm_op()"
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${THINKLESS_TEST_WORKERS:-2}" --dist loadfile \
  --durations=15 "$@"
