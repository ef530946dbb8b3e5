"""Stock TRL GRPO's step times on a gym start: the denominator of every gym run's step-time ratio (bench/gym.py).

    python bench/stock_grpo.py OUT MODEL STEPS SEED [train.py overrides ...]   # -> OUT/stock_grpo.json

``trl.GRPOTrainer`` with Thinkless's reward as a plain reward function, from MODEL, on the prompts and ``rl.args`` of
train.py's config with the overrides (the fields GRPOConfig knows; no checkpoints, evaluation, logging backends or
vLLM), for STEPS steps. Writes ``{"step_times": [...]}`` (TRL's logged ``step_time`` per step). bench/gym.py runs it
as its own process, as it runs every train.py: a fresh process each, on equal terms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def step_times(out: Path, model: Path, steps: int, seed: int, overrides: list[str]) -> list[float]:
    """Train stock GRPO for ``steps`` steps in ``out/stock_grpo``; its step times, also written to
    ``out/stock_grpo.json``. For a fresh process: TRL must not be imported yet (as in train.py, vLLM is skipped)."""
    import torch
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from thinkless.training.rl import rl_prompts, skip_unused_vllm_import

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("train", overrides=overrides)
    skip_unused_vllm_import(cfg)  # as train.py does: the same start for both
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from thinkless.modeling import load_checkpoint
    from thinkless.reward import ThinklessReward
    from thinkless.tasks.data import DropStats

    torch.manual_seed(seed)
    m, tok = load_checkpoint(str(model))
    rows = rl_prompts(cfg.rl_data, DropStats(), instruction=cfg.prompt.instruction, system=cfg.prompt.system)
    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    a = {k: v for k, v in OmegaConf.to_container(cfg.rl.args, resolve=True).items() if k in names}
    a.update(output_dir=f"{out}/stock_grpo", max_steps=steps, save_strategy="no", eval_strategy="no",
             eval_on_start=False, report_to=[], seed=seed, use_cpu=not torch.cuda.is_available(), bf16=False,
             use_vllm=False)
    tr = GRPOTrainer(model=m, reward_funcs=[ThinklessReward()], args=GRPOConfig(**a),
                     train_dataset=Dataset.from_list(rows), processing_class=tok)
    tr.train()
    times = [r["step_time"] for r in tr.state.log_history if "step_time" in r]
    (Path(out) / "stock_grpo.json").write_text(json.dumps({"step_times": times}))
    return times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder: stock_grpo.json and the trainer's output_dir stock_grpo/")
    p.add_argument("model", help="the start (a distilled model folder)")
    p.add_argument("steps", type=int, help="optimizer steps")
    p.add_argument("seed", type=int, help="torch and trainer seed")
    p.add_argument("overrides", nargs="*", help="train.py overrides (the prompts' and rl.args' ones matter)")
    a = p.parse_args(argv)
    step_times(Path(a.out), Path(a.model), a.steps, a.seed, a.overrides)


if __name__ == "__main__":
    main()
