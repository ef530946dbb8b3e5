# shellcheck shell=bash
# Shared by slurm/*.sbatch, slurm/submit.sh and slurm/pipeline.sh (sourced, never run). See docs/cluster.md.

# ======================= EDIT FOR YOUR CLUSTER: the only edits needed ========================
THINKLESS_PARTITION="${THINKLESS_PARTITION:-gpu}"   # the GPU partition to submit to
THINKLESS_ACCOUNT="${THINKLESS_ACCOUNT:-}"          # the account to charge (empty: the cluster's default)
# ==============================================================================================
# Everything below can be left alone; each setting can also be overridden from the environment:
#   RUN_NAME        experiment name: groups distill/train/eval (dirs, wandb group); default <job name>-<job id>
#   RUNS_DIR        where runs/<RUN_NAME>/<stage>/ live (default: runs, relative to the repository root)
#   GPUS_PER_NODE   default: $SLURM_GPUS_ON_NODE, else 8
#   ACCEL_CONFIG    accelerate config for distill/train (default: accelerate/zero2.yaml)
#   MASTER_PORT     c10d rendezvous port on the head node (default: 29500)
#   VLLM_NODE=1     train.sbatch: the last node of the job runs `trl vllm-serve`, the others train
#   VLLM_PORT, VLLM_TP, VLLM_DP, VLLM_GPU_UTIL, VLLM_MAX_MODEL_LEN, VLLM_WAIT   vLLM server settings
#   MAX_REQUEUES    stop requeueing after this many restarts (default: 20)
#   VENV            virtual environment to activate on the nodes (default: <repo>/.venv when it exists)
#   DRY_RUN=1       print the exact srun / accelerate / vllm commands instead of running them

GPUS_PER_NODE="${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}"
ACCEL_CONFIG="${ACCEL_CONFIG:-accelerate/zero2.yaml}"
MASTER_PORT="${MASTER_PORT:-29500}"
RUNS_DIR="${RUNS_DIR:-runs}"
MAX_REQUEUES="${MAX_REQUEUES:-20}"
VLLM_NODE="${VLLM_NODE:-0}"
VLLM_PORT="${VLLM_PORT:-8000}"
VLLM_TP="${VLLM_TP:-1}"
VLLM_DP="${VLLM_DP:-1}"
VLLM_GPU_UTIL="${VLLM_GPU_UTIL:-0.9}"
VLLM_MAX_MODEL_LEN="${VLLM_MAX_MODEL_LEN:-}"
VLLM_WAIT="${VLLM_WAIT:-1200}"
DRY_RUN="${DRY_RUN:-0}"
export GPUS_PER_NODE ACCEL_CONFIG MASTER_PORT DRY_RUN
CHILD_PIDS=()
LAST_PID=0

log() { printf '[thinkless %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The arguments as one line of shell: plain words as they are, others single-quoted (or %q-escaped).
quote_cmd() {
    local out="" a q
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then q="$a"
        elif [[ "$a" != *"'"* ]]; then q="'$a'"
        else q="$(printf '%q' "$a")"
        fi
        out+="${out:+ }$q"
    done
    printf '%s\n' "$out"
}

# Print a command exactly as it would run, one line, prefixed with "+ ".
print_cmd() { printf '+ %s\n' "$(quote_cmd "$@")"; }

# Run a command, or only print it under DRY_RUN=1.
run_cmd() {
    if [[ "$DRY_RUN" == 1 ]]; then print_cmd "$@"; else "$@"; fi
}

# Run a command in the background, its pid in LAST_PID (and killed on exit); under DRY_RUN print it with " &".
run_bg() {
    if [[ "$DRY_RUN" == 1 ]]; then
        printf '%s &\n' "$(print_cmd "$@")"
        LAST_PID=0
        return 0
    fi
    "$@" &
    LAST_PID=$!
    CHILD_PIDS+=("$LAST_PID")
}

# Last value of KEY=... among the arguments (Hydra: the last override wins), else DEFAULT.
arg_value() {
    local key="$1" value="$2" a
    shift 2
    for a in "$@"; do
        if [[ "$a" == "$key="* ]]; then value="${a#"$key="}"; fi
    done
    printf '%s\n' "$value"
}

# ---------------------------------------------------------------- requeue on time limit
# sbatch --signal=B:USR1@120 sends USR1 to this batch shell 120 s before the time limit. The job puts itself
# back in the queue; when it starts again, the same command resumes from the last complete checkpoint in
# its output_dir (the runners do that by themselves).
requeue_job() {
    local restarts="${SLURM_RESTART_COUNT:-0}"
    if (( restarts >= MAX_REQUEUES )); then
        log "time limit close, but already restarted $restarts times (MAX_REQUEUES=$MAX_REQUEUES): not requeueing"
    else
        log "time limit close: requeueing job $SLURM_JOB_ID (restart $((restarts + 1))); it resumes from the last checkpoint"
        scontrol requeue "$SLURM_JOB_ID"
    fi
    kill_children
    exit 0
}

kill_children() {
    local pid
    for pid in "${CHILD_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
}

# A checkpoint is complete once trainer_state.json is in it (the trainer writes it last). An incomplete one
# (job killed while saving) would make the resume fail: it is renamed, never deleted.
quarantine_incomplete_checkpoints() {
    local dir="$1/checkpoints" ckpt
    [[ -d "$dir" ]] || return 0
    for ckpt in "$dir"/checkpoint-*; do
        [[ -d "$ckpt" && ! -f "$ckpt/trainer_state.json" ]] || continue
        log "incomplete checkpoint $ckpt (no trainer_state.json): set aside"
        run_cmd mv "$ckpt" "$dir/incomplete-$(basename "$ckpt")-${SLURM_JOB_ID:-0}-${SLURM_RESTART_COUNT:-0}"
    done
}

# ---------------------------------------------------------------- job setup
# thinkless_setup STAGE ARGS...: cd to the repository, activate the venv, resolve RUN_NAME / OUTPUT_DIR,
# the node list (NODES, HEAD_NODE), W&B run id, and the requeue trap.
thinkless_setup() {
    STAGE="$1"
    shift
    cd "$THINKLESS_ROOT" || return 1
    local venv="${VENV:-$THINKLESS_ROOT/.venv}"
    if [[ -f "$venv/bin/activate" ]]; then
        # shellcheck source=/dev/null
        source "$venv/bin/activate"
    fi
    : "${SLURM_JOB_ID:?not inside a Slurm job (submit with sbatch, or fake the SLURM_* variables with DRY_RUN=1)}"
    RUN_NAME="$(arg_value run_name "${RUN_NAME:-${SLURM_JOB_NAME:-thinkless}-$SLURM_JOB_ID}" "$@")"
    OUTPUT_DIR="$(arg_value output_dir "$RUNS_DIR/$RUN_NAME/$STAGE" "$@")"
    mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
    if (( ${#NODES[@]} == 0 )); then
        log "no nodes in SLURM_JOB_NODELIST=${SLURM_JOB_NODELIST:-}"
        return 1
    fi
    HEAD_NODE="${NODES[0]}"
    TRAIN_NODES=("${NODES[@]}")
    # One W&B run per stage and job, continued (not duplicated) after a requeue.
    WANDB_RUN_ID="${WANDB_RUN_ID:-$(printf '%s' "$RUN_NAME-$STAGE-$SLURM_JOB_ID" | tr -c 'A-Za-z0-9_-' '-')}"
    WANDB_RESUME="${WANDB_RESUME:-allow}"
    export RUN_NAME OUTPUT_DIR HEAD_NODE WANDB_RUN_ID WANDB_RESUME
    trap requeue_job USR1
    trap kill_children EXIT
    log "stage $STAGE, run $RUN_NAME, job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}), nodes ${NODES[*]}"
    if [[ "$DRY_RUN" == 1 ]]; then
        printf '# run_name=%s output_dir=%s head=%s nodes=%s wandb_run_id=%s\n' "$RUN_NAME" "$OUTPUT_DIR" \
            "$HEAD_NODE" "${NODES[*]}" "$WANDB_RUN_ID"
    fi
    quarantine_incomplete_checkpoints "$OUTPUT_DIR"
}

# launch_training SCRIPT ARGS...: one srun task per node in TRAIN_NODES (thinkless_setup: all nodes), each running
# slurm/node_launch.sh, i.e. `accelerate launch` with this node's machine rank and a c10d rendezvous on the
# head node. Waits for it (in the background, so the USR1 trap fires at once).
launch_training() {
    local nodes=("${TRAIN_NODES[@]}")
    local n="${#nodes[@]}" nodelist
    nodelist="$(IFS=,; printf '%s' "${nodes[*]}")"
    export NUM_MACHINES="$n" HEAD_NODE="${nodes[0]}"
    run_bg srun --nodes="$n" --ntasks="$n" --ntasks-per-node=1 --nodelist="$nodelist" --kill-on-bad-exit=1 \
        bash slurm/node_launch.sh "$@"
    if [[ "$DRY_RUN" == 1 ]]; then  # what each node's task runs
        local rank
        for (( rank = 0; rank < n; rank++ )); do
            SLURM_PROCID="$rank" bash slurm/node_launch.sh "$@"
        done
        return 0
    fi
    wait "$LAST_PID"
}

# wait_for_http URL PID: until URL answers, the process PID dies, or VLLM_WAIT seconds pass.
wait_for_http() {
    local url="$1" pid="$2" waited=0
    if [[ "$DRY_RUN" == 1 ]]; then
        printf '# wait until %s answers\n' "$url"
        return 0
    fi
    until python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$url" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the vLLM server exited before answering on $url"
            return 1
        fi
        if (( waited >= VLLM_WAIT )); then
            log "no answer from $url after ${VLLM_WAIT}s"
            return 1
        fi
        sleep 10
        waited=$((waited + 10))
    done
    log "vLLM server up at $url"
}
