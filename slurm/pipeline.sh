#!/usr/bin/env bash
# The whole experiment as three chained jobs: distill -> train -> eval (each starts when the previous one
# succeeded, requeues included), all under one RUN_NAME (one folder runs/$RUN_NAME, one wandb group):
#   RUN_NAME=thinkless-1.5b bash slurm/pipeline.sh
# Per-stage Hydra overrides (space-separated; defaults shown) and sbatch options (e.g. "--nodes=3"):
#   DISTILL_ARGS="+experiment=distill"   TRAIN_ARGS="+experiment=degrpo"
#   EVAL_ARGS=""   (eval.sbatch's default is the paper protocol: 4 benchmarks, 32,768 tokens, seeds 0-4 + seed table)
#   DISTILL_SBATCH=""   TRAIN_SBATCH=""   EVAL_SBATCH=""
# DRY_RUN=1 prints the three sbatch commands (job ids: DISTILL_JOB_ID, TRAIN_JOB_ID) instead of submitting.
set -euo pipefail
THINKLESS_ROOT="${THINKLESS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# shellcheck source=slurm/common.sh
source "$THINKLESS_ROOT/slurm/common.sh"
: "${RUN_NAME:?set RUN_NAME, e.g. RUN_NAME=thinkless-1.5b bash slurm/pipeline.sh}"

# submit STAGE DEPENDENCY: prints the job id (DRY_RUN: the command on stderr, and STAGE_JOB_ID as the id)
submit() {
    local stage="$1" dep="$2" args_var sbatch_var default
    local -a args sb opts=()
    args_var="${stage^^}_ARGS"
    sbatch_var="${stage^^}_SBATCH"
    case "$stage" in
        distill) default="+experiment=distill" ;;
        train) default="+experiment=degrpo" ;;
        *) default="" ;;  # eval.sbatch's own default: the paper protocol
    esac
    read -ra args <<< "${!args_var-$default}"
    read -ra sb <<< "${!sbatch_var-}"
    if [[ -n "$dep" ]]; then opts+=(--dependency="afterok:$dep"); fi
    if [[ "$DRY_RUN" == 1 ]]; then
        bash "$THINKLESS_ROOT/slurm/submit.sh" "$stage" "${opts[@]}" "${sb[@]}" run_name="$RUN_NAME" "${args[@]}" >&2
        printf '%s_JOB_ID\n' "${stage^^}"
        return 0
    fi
    local out
    out="$(bash "$THINKLESS_ROOT/slurm/submit.sh" "$stage" "${opts[@]}" "${sb[@]}" run_name="$RUN_NAME" "${args[@]}")"
    printf '%s\n' "${out%%;*}"
}

distill_id="$(submit distill "")"
train_id="$(submit train "$distill_id")"
eval_id="$(submit eval "$train_id")"
log "submitted run $RUN_NAME: distill $distill_id -> train $train_id -> eval $eval_id"
printf '%s %s %s\n' "$distill_id" "$train_id" "$eval_id"
