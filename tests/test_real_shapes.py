"""Real shapes: one DeGRPO step of Qwen2.5-1.5B- and DeepSeek-R1-Distill-Qwen-1.5B-shaped models on CPU.

Random weights, but everything else is real: the configs (hidden 1536, 12/2 heads, 151936-row embeddings,
tied for Qwen2.5 and untied for R1-Distill), the real tokenizers and chat templates from ``tests/fixtures/tokenizers``,
``thinkless.add_control_tokens(tok, model)`` (new ids in Qwen's padding rows, R1's existing ``<think>``
reused, R1's ``<think>`` prefill removed, pad != EOS), and TRL generation + ``AdaptiveGRPOTrainer._compute_loss`` +
backward + optimizer step, with 2 prompts from the MATH train set, G=2, completions of at most 8 tokens.

The tests truncate the model to 2 decoder layers (every shape except the depth; ~30-60 s each on 2 CPU cores). The
full 28 layers (1.5-1.8 B parameters, ~14 GB of fp32 weights + gradients, minutes per model on 2 cores) run the same
case with all its checks as a benchmark: ``python bench/real_shapes.py``.

fp32: on CPUs without AVX512-BF16/AMX, bf16 matmuls are emulated and ~8x slower. SGD, because Adam's two
fp32 moments would add another 12 GB; the optimizer is not what is being tested.
"""

from __future__ import annotations

import gc
import json
import math
import time
from pathlib import Path

import torch

from .conftest import DATA, QWEN, R1

MATH_TRAIN = DATA / "math_train.json"  # its first 50 rows are the full file's (tests/fixtures/README.md)

INSTRUCTION = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."


def build(folder: Path, layers: int | None):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from thinkless import add_control_tokens
    from thinkless.checkpoints import set_generation_defaults

    cfg = AutoConfig.from_pretrained(folder)
    if layers is not None:
        cfg.num_hidden_layers = layers
        if getattr(cfg, "layer_types", None):
            cfg.layer_types = cfg.layer_types[:layers]
    tok = AutoTokenizer.from_pretrained(folder)
    n_before = len(tok)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    emb_before = model.get_input_embeddings().weight.detach()[:n_before].mean(0).clone()
    ids = add_control_tokens(tok, model)
    set_generation_defaults(model, tok)
    return model, tok, ids, n_before, emb_before


def check_control_tokens(model, tok, ids, n_before, emb_mean, *, reused: tuple[str, ...]):
    from thinkless.format import render_prompt

    for name, i in (("<think>", ids.think), ("</think>", ids.end_think), ("<short>", ids.short)):
        assert tok.encode(name, add_special_tokens=False) == [i]
        assert tok.decode([i], skip_special_tokens=True) == name  # what TRL hands the reward keeps it
        if name in reused:
            assert i < n_before
        else:  # new ids start neutral, at the mean of the pre-existing embeddings
            assert i >= n_before
            assert torch.allclose(model.get_input_embeddings().weight[i], emb_mean, atol=1e-6)
    assert model.get_input_embeddings().weight.shape[0] == 151936  # new ids landed in Qwen's padding rows
    assert tok.pad_token_id != tok.eos_token_id
    prompt = render_prompt(tok, "What is 1+1?")
    assert not prompt.rstrip().endswith("<think>")  # the model chooses its mode
    return prompt


def degrpo_step(model, tok, out_dir: Path) -> tuple[dict, float, dict]:
    from datasets import Dataset

    from thinkless.objectives.thinkless import Thinkless
    from thinkless.reward import ThinklessReward
    from thinkless.training.trainer import AdaptiveGRPOConfig, AdaptiveGRPOTrainer

    rows = sorted(json.loads(MATH_TRAIN.read_text())[:50], key=lambda r: len(r["problem"]))[:2]
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": INSTRUCTION.format(problem=r["problem"])}],
                             "answer": r["answer"], "task": "math", "level": -1} for r in rows])
    thinkless_reward = ThinklessReward()

    def alternating(completions, **kwargs):
        # Random weights never answer correctly: the Thinkless reward is -1 everywhere, every advantage 0 and the
        # step a no-op. This adds +1 to every second sample of each group, so the step has a real gradient.
        return [float(i % 2) for i in range(len(completions))]

    args = AdaptiveGRPOConfig(output_dir=str(out_dir), max_steps=1, per_device_train_batch_size=4, num_generations=2,
                        max_completion_length=8, learning_rate=1e-2, optim="sgd", beta=0.0, use_cpu=True,
                        bf16=False, fp16=False, report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
                        temperature=1.0, dataloader_num_workers=0, seed=0)
    trainer = AdaptiveGRPOTrainer(model=model, reward_funcs=[thinkless_reward, alternating], args=args,
                                  train_dataset=ds, processing_class=tok, objective=Thinkless(alpha=1e-3))
    watch = {"embed": model.get_input_embeddings().weight, "attn": model.model.layers[0].self_attn.q_proj.weight}
    before = {k: v.detach().clone() for k, v in watch.items()}
    t0 = time.time()
    trainer.train()
    seconds = time.time() - t0
    log = next(h for h in trainer.state.log_history if "loss" in h)
    moved = {k: float((watch[k].detach() - before[k]).abs().max()) for k in watch}
    del trainer
    return log, seconds, moved


def run_case(folder: Path, layers: int | None, reused: tuple[str, ...], tmp_path: Path, expect_tied: bool):
    t0 = time.time()
    model, tok, ids, n_before, emb_mean = build(folder, layers)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size,
            cfg.vocab_size) == (1536, 12, 2, 8960, 151936)
    assert cfg.num_hidden_layers == (layers or 28) and len(model.model.layers) == (layers or 28)
    assert bool(cfg.tie_word_embeddings) is expect_tied
    check_control_tokens(model, tok, ids, n_before, emb_mean, reused=reused)
    log, step_s, moved = degrpo_step(model, tok, tmp_path / "out")
    params = sum(p.numel() for p in model.parameters()) / 1e9
    del model
    gc.collect()
    print(f"\n{folder.name} layers={layers or 28} params={params:.2f}B: DeGRPO step {step_s:.1f}s "
          f"(build + step {time.time() - t0:.1f}s)")
    assert log["completions/max_length"] <= 8 and log["num_tokens"] > 0
    assert log["reward_std"] > 0 and log["rewards/thinkless/mean"] == -1.0
    for k in ("loss", "loss/control", "loss/response", "grad_norm", "entropy"):
        assert math.isfinite(log[k]), k
    assert log["grad_norm"] > 0 and all(v > 0 for v in moved.values()), moved
    assert "modes/think_ratio" in log and "modes/invalid_format" in log
    return step_s


def test_qwen25_two_layers(tmp_path):
    run_case(QWEN, 2, reused=(), tmp_path=tmp_path, expect_tied=True)


def test_r1_distill_two_layers(tmp_path):
    run_case(R1, 2, reused=("<think>", "</think>"), tmp_path=tmp_path, expect_tied=False)

