"""One DeGRPO step of a Qwen2.5-1.5B- or R1-Distill-Qwen-1.5B-shaped model on this machine, at full depth.

    python bench/real_shapes.py [--model qwen|r1|both] [--layers 28]

Random weights, real configs and tokenizers (``tests/fixtures/tokenizers``), the control tokens added, 2 MATH prompts,
G=2, completions of at most 8 tokens, fp32 + SGD (see tests/test_real_shapes.py, whose case this runs with all its
checks; the suite runs it at 2 layers). Prints the step time, build + step time and peak RSS. On 2 CPU cores the
full-depth step takes minutes and ~14 GB of memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from tests.test_real_shapes import QWEN, R1, run_case  # noqa: E402  (the case, with its checks)
from thinkless.reporting.markdown import markdown_row, markdown_table  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["qwen", "r1", "both"], default="both")
    ap.add_argument("--layers", type=int, default=28, help="decoder layers (28: the real depth)")
    a = ap.parse_args(argv)
    cases = {"qwen": (QWEN, (), True), "r1": (R1, ("<think>", "</think>"), False)}
    print(f"machine: {machine()}\n")
    print(markdown_table(["model", "layers", "DeGRPO step (s)", "peak RSS so far (GiB)"]))
    for name in (["qwen", "r1"] if a.model == "both" else [a.model]):
        folder, reused, tied = cases[name]
        with tempfile.TemporaryDirectory() as tmp:
            step = run_case(folder, a.layers, reused=reused, tmp_path=Path(tmp), expect_tied=tied)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(markdown_row([folder.name, a.layers, f"{step:.1f}", f"{peak:.1f}"]), flush=True)


if __name__ == "__main__":
    main()
