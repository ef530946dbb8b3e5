"""GPU benchmark: a Qwen2.5-1.5B-shaped random-weight model (config from a local folder), one DeGRPO step
at G=8 with long completions, and HF generate throughput at batch 64/256.

    python bench/gpu_step.py --config tests/fixtures/tokenizers/Qwen2.5-1.5B-Instruct [--max-len 2048 --prompts 8]

Random weights rarely emit EOS, so completions run to --max-len: the step processes prompts x G x max-len
tokens, which is what makes the numbers comparable. Reports step time and its split, generated and trained
tokens/s, model-FLOPs utilisation of the update (6 x params x trained tokens / time / peak), and peak memory.
Needs a CUDA GPU (bf16). `--device cpu` runs the same code in fp32 on a CPU (the test suite does, on a tiny model,
so the script cannot rot between GPU sessions; its numbers mean nothing there).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_flops() -> float:
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16.items() if k in name), float("nan"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="folder with config.json + tokenizer files")
    p.add_argument("--max-len", type=int, default=2048)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--gens", type=int, default=8)
    p.add_argument("--gen-batches", default="64,256")
    p.add_argument("--gen-max-new", type=int, default=512)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    a = p.parse_args()
    gpu = a.device == "cuda"
    if gpu and not torch.cuda.is_available():
        raise SystemExit("bench/gpu_step.py needs a CUDA GPU (--device cpu only checks that the script runs)")
    dtype = torch.bfloat16 if gpu else torch.float32
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    from datasets import Dataset
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PrinterCallback

    from bench.common import Timers
    from thinkless.objectives.thinkless import Thinkless
    from thinkless.tokens import add_control_tokens
    from thinkless.training.trainer import AdaptiveGRPOConfig, AdaptiveGRPOTrainer

    cfg = AutoConfig.from_pretrained(a.config)
    tok = AutoTokenizer.from_pretrained(a.config)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    add_control_tokens(tok, model)
    n_params = sum(p.numel() for p in model.parameters())
    device = torch.cuda.get_device_name(0) if gpu else "CPU"
    print(f"device: {device}; model: {a.config} shape, {n_params / 1e9:.2f} B params, {dtype}")

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        model = AutoModelForCausalLM.from_pretrained(tmp, dtype=dtype).to(a.device)
        ds = Dataset.from_list([{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i)}
                                for i in range(a.prompts * 4)])
        args = AdaptiveGRPOConfig(output_dir=f"{tmp}/out", max_steps=2, per_device_train_batch_size=a.prompts * a.gens,
                            num_generations=a.gens, max_completion_length=a.max_len, bf16=gpu, use_cpu=not gpu, report_to=[],
                            gradient_checkpointing=True, learning_rate=1e-6, beta=1e-3, logging_steps=1,
                            save_strategy="no", disable_tqdm=True)
        tr = AdaptiveGRPOTrainer(model=model, args=args, objective=Thinkless(alpha=1e-3), train_dataset=ds,
                           processing_class=tok)
        tr.remove_callback(PrinterCallback)  # the raw log dicts: this script prints its own numbers
        timers = Timers()
        timers.wrap(tr, "_generate", "generation")
        timers.wrap(tr, "_generate_and_score_completions", "rollout")
        timers.wrap(tr, "training_step", "train_step")
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        tr.train()
        total = time.perf_counter() - t0
        t = timers.pop()
        steps = 2
        gen_tokens = a.prompts * a.gens * a.max_len
        gen = t["generation"] / steps
        logps = (t["rollout"] - t["generation"]) / steps
        update = (t["train_step"] - t["rollout"]) / steps
        step = total / steps
        print(f"DeGRPO step (mean of {steps}): {step:.1f} s = generation {gen:.1f} + ref/old log-probs {logps:.1f} + "
              f"loss/backward {update:.1f} + optimizer/other {step - gen - logps - update:.1f}")
        print(f"generated tokens/s: {gen_tokens / gen:.0f}; trained tokens/s: {gen_tokens / step:.0f}")
        if gpu:
            print(f"update MFU: {6 * n_params * gen_tokens / update / peak_flops():.1%}")
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")

        from thinkless.generation import HFGenerator, SamplingConfig
        from thinkless.format import render_prompt

        for bs in [int(x) for x in a.gen_batches.split(",")]:
            g = HFGenerator(tr.model, tok, batch_size=bs)
            prompts = [render_prompt(tok, f"What is {i} + 1?") for i in range(bs)]
            sync()
            t0 = time.perf_counter()
            outs = g.generate(prompts, SamplingConfig(max_new_tokens=a.gen_max_new, temperature=0.6))
            sync()
            n = sum(c.num_tokens for o in outs for c in o)
            print(f"HF generate, batch {bs}: {n / (time.perf_counter() - t0):.0f} tokens/s")


if __name__ == "__main__":
    main()
