#!/usr/bin/env bash
# Submit one stage with the partition and account set at the top of slurm/common.sh:
#   bash slurm/submit.sh distill|train|eval [--sbatch-option=value ...] [hydra overrides ...]
# Leading arguments that start with "--" go to sbatch (write them as --opt=value), the rest to the stage.
# Prints the job id. DRY_RUN=1 prints the sbatch command instead of submitting.
#   RUN_NAME=exp1 bash slurm/submit.sh train --nodes=3 --time=48:00:00 +experiment=degrpo
set -euo pipefail
THINKLESS_ROOT="${THINKLESS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# shellcheck source=slurm/common.sh
source "$THINKLESS_ROOT/slurm/common.sh"

stage="${1:-}"
if [[ ! -f "$THINKLESS_ROOT/slurm/$stage.sbatch" ]]; then
    echo "usage: bash slurm/submit.sh distill|train|eval [--sbatch-option=value ...] [hydra overrides ...]" >&2
    exit 2
fi
shift
opts=(--parsable --partition="$THINKLESS_PARTITION")
if [[ -n "$THINKLESS_ACCOUNT" ]]; then opts+=(--account="$THINKLESS_ACCOUNT"); fi
while (( $# )) && [[ "$1" == --* ]]; do
    opts+=("$1")
    shift
done
cd "$THINKLESS_ROOT"  # the jobs find the repository through SLURM_SUBMIT_DIR
run_cmd sbatch "${opts[@]}" "slurm/$stage.sbatch" "$@"
