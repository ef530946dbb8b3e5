import os
import subprocess
import sys
from pathlib import Path

from thinkless.generation import Completion

ROOT = Path(__file__).resolve().parents[1]


# one owner of a test or bench server's start and stop: the bench library (the L1 bench serves its policy too)
from bench.common import free_port, vllm_serve  # noqa: E402, F401


def run_cli(script: str, *overrides: str, check: bool = True, timeout: int = 600, env: dict | None = None):
    # a free MASTER_PORT of its own: TRL's vLLM colocation and DeepSpeed otherwise take 29500 if it looks free, and
    # the suite runs two test files at once (scripts/test.sh)
    e = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
         "TOKENIZERS_PARALLELISM": "false", "MASTER_PORT": str(free_port()), **(env or {})}
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
    from thinkless.checkpoints import set_generation_defaults
    from thinkless.tasks.synthetic import build_tiny_model, build_tiny_tokenizer
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), seed=seed, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                             **sizes)
    set_generation_defaults(model, tok)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


# The official Thinkless chat template (VainF/Reasoning-SFT README: R1-Distill's, with the final <think> removed from
# the generation prompt and the reasoning-stripping split removed).
OFFICIAL_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = "
    "namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}{%- for message in messages "
    "%}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}"
    "{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set "
    "ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and "
    "message['content'] is none %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not "
    "ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + "
    "tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + "
    "'<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + "
    "'<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + "
    "'```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}"
    "{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}"
    "{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content %}{% endif %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' "
    "%}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + "
    "message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}"
    "{{'\\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor "
    "-%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}"
    "{{'<｜Assistant｜>\\n'}}{% endif %}"
)


def official_thinkless_tokenizer(out_dir, r1_dir):
    """The Thinkless-1.5B tokenizer built from R1-Distill's files exactly as VainF/Reasoning-SFT's README says:
    id 151650 (<|quad_start|>) becomes a non-special control token - "<short>" in tokenizer.json, "<|short|>" in
    tokenizer_config.json (the README's two files disagree; that is what the released files say) - and the chat
    template's generation prompt ends "<｜Assistant｜>\\n" with the reasoning kept."""
    import json
    import shutil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in Path(r1_dir).iterdir():
        if f.name != "chat_template.jinja":
            shutil.copy(f, out / f.name)
    tj = json.loads((out / "tokenizer.json").read_text())
    for t in tj["added_tokens"]:
        if t["id"] == 151650:
            t.update(content="<short>", special=False)
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    tc = json.loads((out / "tokenizer_config.json").read_text())
    tc["added_tokens_decoder"]["151650"].update(content="<|short|>", special=False)
    tc["chat_template"] = OFFICIAL_TEMPLATE
    (out / "tokenizer_config.json").write_text(json.dumps(tc, ensure_ascii=False, indent=2))
    return out
