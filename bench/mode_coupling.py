"""How level-blind a distilled model's mode decision is, per fold level: the demo's seed sensitivity, measured.

    python bench/mode_coupling.py runs/demo/distill/model [more model folders ...] [--per-level 64]

For each model: the mean p(<think>) at the mode position per level, and the cosine between the parameter gradients
of the mean mode logit (logit <think> − logit <short>) at level 1 and at each other level, printed as 1 − cosine.
A cosine of 1 means any update that moves the mode decision at one level moves it equally at every level: RL then
has to learn level features from the few groups whose samples disagree on the mode (docs/lab-notebook.md, the
recipe search).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_table  # noqa: E402


def coupling(model_dir: str, per_level: int, seed: int) -> tuple[dict, dict]:
    """``({level: mean p(think)}, {level: cos(grad at level 1, grad at level)})``."""
    import torch

    from thinkless.tasks import synthetic
    from thinkless.format import render_prompt
    from thinkless.modeling import load_checkpoint
    from thinkless.tokens import control_token_ids

    model, tok = load_checkpoint(model_dir)
    ids = control_token_ids(tok)
    problems = synthetic.make_problems(per_level * synthetic.MAX_LEVEL, range(1, synthetic.MAX_LEVEL + 1), seed)
    p_think, grads = {}, {}
    for lv in range(1, synthetic.MAX_LEVEL + 1):
        texts = [render_prompt(tok, p.prompt) for p in problems if p.level == lv]
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="left")
        model.zero_grad()
        last = model(**enc).logits[:, -1]
        margin = last[:, ids.think] - last[:, ids.short]
        p_think[lv] = torch.sigmoid(margin).mean().item()
        margin.mean().backward()
        grads[lv] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).double()
    g1 = grads[1]
    cos = {lv: float(g1 @ g / (g1.norm() * g.norm()).clamp(min=1e-30)) for lv, g in grads.items()}
    return p_think, cos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model folders (a run's distill/model)")
    ap.add_argument("--per-level", type=int, default=64, help="prompts per level")
    ap.add_argument("--seed", type=int, default=7, help="problem stream (distillation draws with data.seed 0, RL with rl_data.seed 1)")
    a = ap.parse_args()
    from thinkless.tasks.synthetic import MAX_LEVEL

    levels = range(1, MAX_LEVEL + 1)  # the levels coupling() measures
    print(f"machine: {machine()}\n")
    print(markdown_table(["model", *(f"p(think) L{lv}" for lv in levels),
                          *(f"1 − cos L1·L{lv}" for lv in levels[1:])]))
    for m in a.models:
        p, cos = coupling(m, a.per_level, a.seed)
        print(markdown_row([m, *(f"{p[lv]:.2f}" for lv in levels), *(f"{1 - cos[lv]:.1e}" for lv in levels[1:])]))


if __name__ == "__main__":
    main()
