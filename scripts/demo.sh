#!/usr/bin/env bash
# Set up (if needed) and run the embedded demo end to end on CPU: distill -> DeGRPO -> report.
# Outputs land in runs/${RUN_NAME:-demo}/. Extra arguments are Hydra overrides passed to both stages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo   # the package alone: the demo runs HF generation, not vLLM
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
run=${RUN_NAME:-demo}
start=$(date +%s)
.venv/bin/python distill.py run_name="$run" training.args.disable_tqdm=true "$@"
mid=$(date +%s)
.venv/bin/python train.py run_name="$run" "$@"
end=$(date +%s)
echo "demo wall time: distill $((mid - start))s, DeGRPO + report $((end - mid))s, total $((end - start))s"
echo "outputs: runs/$run/distill (model, distill_report.md) and runs/$run/train (model, metrics.jsonl, *.png, pipeline_report.md)"
