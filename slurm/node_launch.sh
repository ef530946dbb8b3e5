#!/usr/bin/env bash
# One task per training node (started by `srun` in launch_training, slurm/common.sh): this node's share of the
# processes through `accelerate launch`, GPUS_PER_NODE per node, c10d rendezvous on the head node.
#   bash slurm/node_launch.sh distill.py|train.py [hydra overrides...]
# Needs (exported by slurm/common.sh): ACCEL_CONFIG NUM_MACHINES GPUS_PER_NODE HEAD_NODE MASTER_PORT, and
# SLURM_PROCID (= this node's rank: one task per node). DRY_RUN=1 prints the command instead.
set -euo pipefail
THINKLESS_ROOT="${THINKLESS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# shellcheck source=slurm/common.sh
source "$THINKLESS_ROOT/slurm/common.sh"

: "${ACCEL_CONFIG:?}" "${NUM_MACHINES:?}" "${GPUS_PER_NODE:?}" "${HEAD_NODE:?}" "${MASTER_PORT:?}"
machine_rank="${SLURM_PROCID:-0}"
cmd=(accelerate launch --config_file "$ACCEL_CONFIG"
     --num_machines "$NUM_MACHINES" --num_processes "$((NUM_MACHINES * GPUS_PER_NODE))"
     --machine_rank "$machine_rank" --main_process_ip "$HEAD_NODE" --main_process_port "$MASTER_PORT"
     --rdzv_backend c10d "$@")

if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ [node %s] %s\n' "$machine_rank" "$(quote_cmd "${cmd[@]}")"
    exit 0
fi
exec "${cmd[@]}"
