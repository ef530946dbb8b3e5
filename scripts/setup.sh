#!/usr/bin/env bash
# Create .venv and install thinkless with its CPU stack. Idempotent: re-running only reinstalls after
# pyproject.toml changed. torch is pinned so a CPU machine never pulls the CUDA wheels; point
# THINKLESS_TORCH_INDEX at a CPU wheel index (e.g. https://download.pytorch.org/whl/cpu) on machines whose
# default index serves CUDA builds. GPU machines: pip install -e '.[vllm]' into an environment with CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${THINKLESS_TORCH_VERSION:-2.13.0}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.thinkless-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) torch==$TORCH_VERSION"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
pip_args=(-q --disable-pip-version-check)
if [ -n "${THINKLESS_TORCH_INDEX:-}" ]; then
  .venv/bin/pip install "${pip_args[@]}" --index-url "$THINKLESS_TORCH_INDEX" "torch==$TORCH_VERSION"
else
  .venv/bin/pip install "${pip_args[@]}" "torch==$TORCH_VERSION"
fi
# torch stays pinned while the rest resolves, so nothing can upgrade it to a CUDA build
.venv/bin/pip install "${pip_args[@]}" -e ".[dev]" "torch==$TORCH_VERSION"
echo "$want" > "$stamp"
