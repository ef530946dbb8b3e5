"""Evaluation throughput: batched HF generation against a one-problem-at-a-time loop, same problems/settings.

    python bench/eval_throughput.py [--model runs/demo/distill/model --problems 96 --batch 96 --repeats 3]
Without --model, a freshly initialised tiny Qwen2 is used (throughput does not depend on the weights much,
but generation length does: a trained model stops at EOS, a random one runs to max tokens).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median  # noqa: E402
from thinkless.generation import HFGenerator, SamplingConfig  # noqa: E402
from thinkless.tasks.synthetic import make_problems  # noqa: E402
from thinkless.format import render_prompt  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_table  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--problems", type=int, default=96)
    p.add_argument("--batch", type=int, default=96)
    p.add_argument("--max-new", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if a.model:
        from thinkless.modeling import load_checkpoint

        model, tok = load_checkpoint(a.model)
    else:
        from thinkless.tasks.synthetic import build_tiny_model, build_tiny_tokenizer
        from thinkless.tokens import add_control_tokens

        tok = build_tiny_tokenizer()
        add_control_tokens(tok)
        model = build_tiny_model(len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    prompts = [render_prompt(tok, q.prompt) for q in make_problems(a.problems, [1, 2, 3, 4, 5, 6], seed=0)]
    cfg = SamplingConfig(temperature=0.6, top_p=0.95, max_new_tokens=a.max_new, seed=0)
    res = {}
    for name, bs in (("batched", a.batch), ("one at a time", 1)):
        gen = HFGenerator(model, tok, batch_size=bs)
        times, toks = [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            outs = gen.generate(prompts, cfg)
            times.append(time.perf_counter() - t0)
            toks.append(sum(c.num_tokens for o in outs for c in o))
        res[name] = (median(times), median(toks))
    print(f"machine: {machine()}")
    print(f"model: {a.model or 'random tiny Qwen2'}; {a.problems} problems, max {a.max_new} new tokens, "
          f"T=0.6, median of {a.repeats}\n")
    print(markdown_table(["mode", "wall (s)", "generated tokens", "tokens/s", "speed-up"]))
    base = res["one at a time"][1] / res["one at a time"][0]
    for name, (t, n) in res.items():
        print(markdown_row([f"{name} (batch {a.batch if name == 'batched' else 1})", f"{t:.2f}", n, f"{n / t:.0f}",
                            f"{(n / t) / base:.1f}x"]))


if __name__ == "__main__":
    main()
