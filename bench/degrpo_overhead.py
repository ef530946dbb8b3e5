"""DeGRPO overhead and step anatomy: AdaptiveGRPOTrainer vs stock TRL GRPOTrainer (loss_type grpo and dapo).

Same tiny model, data, seed and sampling for every variant; each variant runs `--steps` optimizer steps,
`--repeats` times, interleaved; the first step of each run is discarded (warm-up). Prints median step time,
the ratio to stock GRPO, the step anatomy (generation, reference/old log-probs and scoring, reward,
loss+backward, optimizer and the rest) and throughput (tokens / (step time x devices)).

    python bench/degrpo_overhead.py [--steps 8 --repeats 3 --batch 64 --gens 8 --max-len 48]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, PrinterCallback, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from bench.common import Timers, machine, median, tiny_rl_setup  # noqa: E402
from thinkless.objectives.thinkless import Thinkless  # noqa: E402
from thinkless.reporting.markdown import markdown_row, markdown_rule  # noqa: E402
from thinkless.reward import ThinklessReward  # noqa: E402
from thinkless.training.trainer import AdaptiveGRPOConfig, AdaptiveGRPOTrainer  # noqa: E402


class StepClock(TrainerCallback):
    def __init__(self):
        self.times, self.t0 = [], None

    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.times.append(time.perf_counter() - self.t0)


def run_variant(name, path, tok, ds, a):
    common = dict(output_dir=str(path / f"out_{name}"), max_steps=a.steps, per_device_train_batch_size=a.batch,
                  num_generations=a.gens, max_completion_length=a.max_len, learning_rate=1e-5, temperature=1.0,
                  use_cpu=not torch.cuda.is_available(), bf16=False, report_to=[], logging_steps=1,
                  save_strategy="no", seed=0, disable_tqdm=True, beta=a.beta)
    model = AutoModelForCausalLM.from_pretrained(path)
    reward = ThinklessReward()  # 1 / 0.5 / -1 / -1, the stock trainers' reward function
    clock, timers = StepClock(), Timers()
    if name == "degrpo":  # the objective grades and rewards (the same values) and adds the mode statistics
        tr = AdaptiveGRPOTrainer(model=model, args=AdaptiveGRPOConfig(**common), objective=Thinkless(alpha=1e-3),
                           train_dataset=ds, processing_class=tok, callbacks=[clock])
    else:
        tr = GRPOTrainer(model=model, reward_funcs=[reward], args=GRPOConfig(**common, loss_type=name),
                         train_dataset=ds, processing_class=tok, callbacks=[clock])
    tr.remove_callback(PrinterCallback)  # the raw log dicts: this script prints its own tables
    timers.wrap(tr, "_generate", "generation")
    timers.wrap(tr, "_calculate_rewards", "reward")
    timers.wrap(tr, "_generate_and_score_completions", "rollout_total")
    timers.wrap(tr, "compute_loss", "loss_forward")
    timers.wrap(tr, "training_step", "train_step_total")
    gen_tokens, train_tokens = [], []
    orig = tr._generate_and_score_completions

    def count(inputs):
        out = orig(inputs)
        gen_tokens.append(int(out["completion_mask"].sum()))
        train_tokens.append(int(out["completion_mask"].sum() + out["prompt_mask"].sum()))
        return out

    tr._generate_and_score_completions = count
    tr.train()
    t = timers.pop()
    steps = clock.times[1:]  # drop warm-up
    n = len(clock.times)
    per_step = {k: v / n for k, v in t.items()}
    anatomy = {
        "generation": per_step.get("generation", 0),
        "ref/old logps + scoring": per_step.get("rollout_total", 0) - per_step.get("generation", 0)
        - per_step.get("reward", 0),
        "reward": per_step.get("reward", 0),
        "loss+backward": per_step.get("train_step_total", 0) - per_step.get("rollout_total", 0),
    }
    anatomy["optimizer+other"] = max(0.0, sum(clock.times) / n - sum(anatomy.values()))
    return {"step": median(steps), "anatomy": anatomy, "gen_tokens": sum(gen_tokens) / n,
            "train_tokens": sum(train_tokens) / n}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--gens", type=int, default=8)
    p.add_argument("--max-len", type=int, default=48)
    p.add_argument("--beta", type=float, default=0.0)
    a = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        tok, ds = tiny_rl_setup(path, n_prompts=max(64, a.batch * a.steps // a.gens + 8))
        variants = ["grpo", "dapo", "degrpo"]
        res = {v: [] for v in variants}
        for _ in range(a.repeats):
            for v in variants:  # interleaved, so drift on a noisy machine hits every variant alike
                res[v].append(run_variant(v, path, tok, ds, a))
    devices = max(1, torch.cuda.device_count())
    print(f"machine: {machine()}")
    print(f"setup: tiny Qwen2 (2x128), {a.batch} completions/step (G={a.gens}), max {a.max_len} new tokens, "
          f"{a.steps} steps x {a.repeats} repeats, first step of each run dropped, medians\n")
    base = median([r["step"] for r in res["grpo"]])
    print(markdown_row(["trainer", "median step (s)", "ratio to TRL grpo", "generated tok/s", "trained tok/s"]))
    print(markdown_rule(5))
    for v in variants:
        st = median([r["step"] for r in res[v]])
        gt = median([r["gen_tokens"] for r in res[v]])
        tt = median([r["train_tokens"] for r in res[v]])
        label = {"grpo": "TRL GRPOTrainer (grpo)", "dapo": "TRL GRPOTrainer (dapo)", "degrpo": "AdaptiveGRPOTrainer (DeGRPO)"}[v]
        print(markdown_row([label, f"{st:.3f}", f"{st / base:.3f}", f"{gt / (st * devices):.0f}",
                            f"{tt / (st * devices):.0f}"]))
    print("\nstep anatomy (median seconds per step):\n")
    keys = list(res["degrpo"][0]["anatomy"])
    print(markdown_row(["trainer", *keys]))
    print(markdown_rule(1 + len(keys)))
    for v in variants:
        vals = [median([r["anatomy"][k] for r in res[v]]) for k in keys]
        print(markdown_row([v, *(f"{x:.3f}" for x in vals)]))
    ratio = median([r["step"] for r in res["degrpo"]]) / base
    print(f"\nDeGRPO overhead vs TRL grpo: {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
