import os
import subprocess
import sys
from pathlib import Path

from thinkless.generation import Completion

ROOT = Path(__file__).resolve().parents[1]


def run_cli(script: str, *overrides: str, check: bool = True, timeout: int = 600, env: dict | None = None):
    e = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
         "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(overrides)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def run_distill_cli(out_dir, *overrides: str, **kw):
    return run_cli("distill.py", f"output_dir={out_dir}", "training.args.disable_tqdm=true",
                   "training.args.logging_steps=10", *overrides, **kw)


def run_train_cli(out_dir, model_dir, *overrides: str, **kw):
    return run_cli("train.py", f"output_dir={out_dir}", f"model.path={model_dir}", *overrides, **kw)


class ScriptedGenerator:
    """A generator whose completions come from ``script(prompt, i) -> text`` (i: sample index), tokenized for real.

    Honors ``max_new_tokens`` (cut, finished=False) and ``stop`` strings (cut after the stop string), records every
    call, and reports ``self_certainty`` from ``certainty(prompt, i)`` if given. ``fail_after`` raises once that many
    prompts have been generated (an interruption).
    """

    def __init__(self, tokenizer, script, *, certainty=None, fail_after: int | None = None):
        self.tokenizer, self.script, self.certainty, self.fail_after = tokenizer, script, certainty, fail_after
        self.calls: list[tuple[list[str], object]] = []
        self.generated = 0

    def generate(self, prompts, cfg, *, progress=False, desc=""):
        if self.fail_after is not None and self.generated + len(prompts) > self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append((list(prompts), cfg))
        self.generated += len(prompts)
        out = []
        for p in prompts:
            row = []
            for i in range(cfg.n):
                text = self.script(p, i)
                finished = True
                for s in cfg.stop or []:
                    if s in text:
                        text, finished = text[:text.index(s) + len(s)], True
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                if len(ids) > cfg.max_new_tokens:
                    ids, finished = ids[:cfg.max_new_tokens], False
                    text = self.tokenizer.decode(ids, skip_special_tokens=True)
                sc = self.certainty(p, i) if self.certainty else None
                row.append(Completion(text, len(ids), finished, ids, sc))
            out.append(row)
        return out


def save_tiny(out_dir, seed: int = 0, **sizes):
    """A randomly initialised tiny Qwen2 checkpoint (byte-level tokenizer: any text is encodable)."""
    from thinkless.modeling import set_generation_defaults
    from thinkless.synthetic import build_tiny_model, build_tiny_tokenizer
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), seed=seed, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                             **sizes)
    set_generation_defaults(model, tok)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
