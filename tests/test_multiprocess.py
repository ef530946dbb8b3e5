"""Two CPU processes over gloo (DDP, DeepSpeed ZeRO-2, ZeRO-3 for distill) train exactly like one process.

Each stage is launched exactly as on a cluster, ``accelerate launch --config_file accelerate/cpu_*.yaml
distill.py|train.py ...``, and compared with a plain one-process ``python distill.py|train.py`` run:

* batch: per-device batch B on 2 processes vs 2B on 1 process, same seed, so the global batch (same rows in
  the same order: the sampler is seeded and accelerate hands consecutive per-device batches to the ranks) and
  hence the loss and the gradient are the same;
* optimizer: plain SGD without clipping (``max_grad_norm`` huge but still passed to DeepSpeed as "auto"), so the
  weight change is exactly ``-lr * gradient`` and the resulting weights compare the gradients themselves
  (Adam's first step is ``-lr * sign(g)``, which hides a wrong gradient scale; clipping hides it too);
* DeGRPO generation is sampled, and a 4-row batch samples differently from an 8-row one. The real generation
  still runs (through DDP / the DeepSpeed engine) but its output is replaced by completions that depend only
  on the prompt and the sample's index in its group (correct short, correct think ×2, wrong think),
  so both layouts score, normalise and train on identical completions with non-zero advantages. The patch is a
  ``sitecustomize`` on the children's PYTHONPATH, so ``train.py`` itself is what runs.
* DeGRPO step 1 is on-policy, where every group's loss is -mean(advantages) = 0 whatever the layout (its
  gradient is not): so the run takes a second step on the same completions (``num_iterations=2``), whose
  importance ratios are != 1, and compares that step's loss, control/response split and KL-bearing gradient.

Compared: distill step 1's loss, token count and gradient norm; DeGRPO's rewards and mode statistics (step 1),
loss terms (step 2) and gradient norms; and the resulting weights, relative to the size of the update. The
whole file runs in ~2.5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PY = REPO / ".venv" / "bin" / "python"
PY = PY if PY.exists() else Path(sys.executable)
ACCELERATE = PY.parent / "accelerate"

pytestmark = pytest.mark.slow

# ZeRO-3 is checked for distillation (its final save must gather the sharded weights). DeGRPO with a KL
# reference model cannot start under ZeRO-3 on CPU: TRL builds the reference under deepspeed.zero.Init, whose
# world size comes from deepspeed.comm, which only accelerate's GPU DeepSpeed state initialises.
DISTILL_CONFIGS = ["cpu_zero2.yaml", "cpu_zero3.yaml"]  # plain DDP: test_degrpo_two_processes_match_one
TRAIN_CONFIGS = ["cpu_ddp.yaml", "cpu_zero2.yaml"]
B = 4  # per-device batch on 2 processes; the 1-process reference uses 2B
G = 4  # DeGRPO group size: B is a multiple of G, so each rank holds whole groups

DISTILL_ARGS = [
    "data.num_problems=64", "report.enabled=false", "training.args.max_steps=1", "training.args.logging_steps=1",
    "+training.args.optim=sgd", "training.args.learning_rate=0.05", "training.args.warmup_steps=0",
    "training.args.lr_scheduler_type=constant", "+training.args.max_grad_norm=1.0e6",
    "training.args.save_strategy=steps", "+training.args.save_steps=1", "training.args.disable_tqdm=true",
]
TRAIN_ARGS = [
    "rl_data.num_problems=32", "report.enabled=false", "rl_data.validation=null", "rl.args.max_steps=2",
    "+rl.args.num_iterations=2",
    f"rl.args.num_generations={G}", "rl.args.max_completion_length=48", "+rl.args.optim=sgd",
    "rl.args.learning_rate=0.5", "rl.args.warmup_steps=0", "+rl.args.max_grad_norm=1.0e6", "rl.args.beta=0.01",
    "rl.args.save_steps=1",
]

# Installed in the children through PYTHONPATH when THINKLESS_FAKE_GENERATION=1: patches
# AdaptiveGRPOTrainer._generate_single_turn the moment thinkless.training.trainer is imported.
SITECUSTOMIZE = textwrap.dedent('''
    import importlib.abc, importlib.machinery, os, sys

    def _patch(cls):
        import re
        from thinkless.tasks import synthetic

        real = cls._generate_single_turn

        def fake(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            real(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images)  # exercised, discarded
            tok = self.processing_class
            out = []
            offset = self.accelerator.process_index * len(prompt_ids)  # a group may span the ranks
            for i, ids in enumerate(prompt_ids):
                problem = re.search(r"<\\|im_start\\|>user\\n(.*?)<\\|im_end\\|>", tok.decode(ids), re.S).group(1)
                p = synthetic.parse_prompt(problem)
                j = (offset + i) % num_generations
                wrong = str((int(p.answer) + 1) % 10)
                # unbalanced on purpose (1 short, 3 think; short always right, think 2 of 3): swapping the two
                # modes anywhere in the statistics changes every mode key
                body = [synthetic.short_teacher(p), synthetic.long_teacher(p), synthetic.long_teacher(p),
                        "<think>%s\\n</think>\\\\boxed{%s}" % (p.digits[0], wrong)][j]
                ids_out = tok.encode(body, add_special_tokens=False)[: self.max_completion_length - 1]
                out.append(ids_out + [tok.eos_token_id])
            return out, None

        cls._generate_single_turn = fake

    class _Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "thinkless.training.trainer":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                _patch(module.AdaptiveGRPOTrainer)

            spec.loader.exec_module = exec_module
            return spec

    if os.environ.get("THINKLESS_FAKE_GENERATION") == "1":
        sys.meta_path.insert(0, _Hook())
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    e = dict(os.environ)
    e.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false",
             OMP_NUM_THREADS="1", THINKLESS_FAKE_GENERATION="1",
             PYTHONPATH=os.pathsep.join([str(site), str(REPO), e.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    e.pop("WANDB_DISABLED", None)
    return e


def run(cmd: list[str], env: dict, log: Path) -> float:
    t0 = time.time()
    with log.open("w") as f:
        proc = subprocess.run([str(c) for c in cmd], cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                              timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd[:6]))} ... failed (rc {proc.returncode}):\n{log.read_text()[-6000:]}")
    return time.time() - t0


def launch(config: str, script: str, args: list[str], env: dict, log: Path) -> float:
    cmd = [ACCELERATE, "launch", "--config_file", REPO / "accelerate" / config, "--main_process_port", free_port(),
           script, *args]
    return run(cmd, env, log)


def step_logs(out: Path) -> list[dict]:
    """The per-step training logs, from the trainer state of the last checkpoint."""
    last = max((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    state = json.loads((last / "trainer_state.json").read_text())
    return [h for h in state["log_history"] if "loss" in h]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def relative_gap(a: dict, b: dict, base: dict) -> tuple[float, float]:
    """(||a - b|| / ||b - base||, ||b - base||) over all tensors (a ZeRO checkpoint also stores the tied head)."""
    keys = a.keys() & b.keys() & base.keys()
    assert keys >= {k for k in base if k != "lm_head.weight"}
    a, b, base = ({k: d[k] for k in keys} for d in (a, b, base))
    gap = sum(float(((a[k].float() - b[k].float()) ** 2).sum()) for k in a) ** 0.5
    upd = sum(float(((b[k].float() - base[k].float()) ** 2).sum()) for k in b) ** 0.5
    return gap / upd, upd


def initial_tiny_weights() -> dict[str, torch.Tensor]:
    """The weights distill.py starts from (model=tiny, seed 0), built by the same code."""
    from omegaconf import OmegaConf

    from thinkless.modeling import load_student

    torch.manual_seed(0)
    model, _ = load_student(OmegaConf.load(REPO / "conf" / "model" / "tiny.yaml"), seed=0)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}


@pytest.fixture(scope="module")
def distill_ref(tmp_path_factory, env):
    out = tmp_path_factory.mktemp("distill_ref")
    secs = run([PY, "distill.py", f"output_dir={out}", f"training.args.per_device_train_batch_size={2 * B}",
                *DISTILL_ARGS], env, out / "run.log")
    print(f"distill 1 process: {secs:.1f}s")
    return out


@pytest.fixture(scope="module")
def train_ref(tmp_path_factory, env, distill_ref):
    out = tmp_path_factory.mktemp("train_ref")
    secs = run([PY, "train.py", f"output_dir={out}", f"model.path={distill_ref / 'model'}",
                f"rl.args.per_device_train_batch_size={2 * B}", *TRAIN_ARGS], env, out / "run.log")
    print(f"train 1 process: {secs:.1f}s")
    return out


@pytest.mark.parametrize("config", DISTILL_CONFIGS)
def test_distill_two_processes_match_one(config, env, distill_ref, tmp_path):
    out = tmp_path / "distill"
    secs = launch(config, "distill.py", [f"output_dir={out}", f"training.args.per_device_train_batch_size={B}",
                                         *DISTILL_ARGS], env, tmp_path / "run.log")
    print(f"distill 2 processes ({config}): {secs:.1f}s")
    log = (out / "distill.log").read_text()  # Hydra's log file: every rank appends its own lines
    assert log.count("SFT data: kept") == 2, "expected two ranks"

    (ref,), (got,) = step_logs(distill_ref), step_logs(out)
    assert got["num_tokens"] == ref["num_tokens"]  # the same global batch was consumed
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert got["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-4)

    w0 = initial_tiny_weights()
    w_ref, w_got = weights(distill_ref / "model"), weights(out / "model")
    w_ref.pop("lm_head.weight", None), w_got.pop("lm_head.weight", None)
    gap, update = relative_gap(w_got, w_ref, w0)
    print(f"distill {config}: loss {got['loss']} vs {ref['loss']}; weight gap {gap:.2e} of update {update:.3g}")
    assert update > 1e-2, "the step must move the weights measurably"
    assert gap < 1e-4, f"2-process weights differ from 1-process by {gap:.2e} of the update"


@pytest.mark.parametrize("config", TRAIN_CONFIGS)
def test_degrpo_two_processes_match_one(config, env, distill_ref, train_ref, tmp_path):
    out = tmp_path / "train"
    secs = launch(config, "train.py", [f"output_dir={out}", f"model.path={distill_ref / 'model'}",
                                       f"rl.args.per_device_train_batch_size={B}", *TRAIN_ARGS],
                  env, tmp_path / "run.log")
    print(f"train 2 processes ({config}): {secs:.1f}s")

    ref, got = step_logs(train_ref), step_logs(out)
    assert [h["step"] for h in ref] == [h["step"] for h in got] == [1, 2]
    # step 1 generates; identical completions give identical rewards and mode statistics
    # the fold task's rewards 1 / 0.1 / -1 (γ 0.9, conf/task_rewards/synthetic/thinkless.yaml): (1 + 0.1 + 0.1 - 1) / 4
    assert ref[0]["reward"] == pytest.approx(0.05) and ref[0]["reward_std"] > 0.5
    # the mode statistics, by value: 3 of 4 think, short always right, think 2 of 3
    assert (ref[0]["modes/think_ratio"], ref[0]["modes/acc_short"]) == pytest.approx((0.75, 1.0))
    assert (ref[0]["modes/acc_think"], ref[0]["modes/accuracy"]) == pytest.approx((2 / 3, 0.75))
    assert ref[0]["modes/groups_all_wrong"] == 0.0 and ref[0]["modes/len_short"] < ref[0]["modes/len_think"]
    for k in ("reward", "reward_std", "modes/think_ratio", "modes/accuracy", "modes/acc_short", "modes/acc_think",
              "modes/len_short", "modes/len_think", "completions/mean_length"):
        assert got[0][k] == pytest.approx(ref[0][k], rel=1e-6, abs=1e-7), k
    # on-policy (ratio 1) the control term of each group is -mean(advantages) = 0; the gradient is not. (The response
    # term, a token mean, is -sum(A_i |o_i|) / sum |o_i|: not 0, but the same for one process and two.)
    assert abs(ref[0]["loss/control"]) < 1e-6 and abs(got[0]["loss/control"]) < 1e-6
    assert got[0]["loss"] == pytest.approx(ref[0]["loss"], rel=1e-5, abs=1e-7)
    assert got[0]["grad_norm"] == pytest.approx(ref[0]["grad_norm"], rel=1e-4)
    # step 2 (num_iterations=2) re-trains on the same completions with the updated policy: ratio != 1
    assert abs(ref[1]["loss"]) > 1e-3
    for k in ("loss", "loss/control", "loss/response", "grad_norm"):
        assert got[1][k] == pytest.approx(ref[1][k], rel=1e-4, abs=1e-6), k

    # metrics.jsonl (main process only) holds the same steps
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 1 and lines[0]["reward"] == pytest.approx(got[0]["reward"])

    w0, w_ref, w_got = weights(distill_ref / "model"), weights(train_ref / "model"), weights(out / "model")
    gap, update = relative_gap(w_got, w_ref, w0)
    print(f"degrpo {config}: step-2 loss {got[1]['loss']} vs {ref[1]['loss']}; "
          f"weight gap {gap:.2e} of update {update:.3g}")
    assert update > 1e-3, "the step must move the weights measurably"
    assert gap < 1e-3, f"2-process weights differ from 1-process by {gap:.2e} of the update"


def test_group_shaping_and_the_budget_span_processes(env, distill_ref, tmp_path):
    """Ada-GRPO's reward depends on the whole group (how many of its responses share a mode), and rl.budget's price
    and its dual update on the whole batch: with 2 rows per rank and G = 4 every group spans both processes, and the
    rewards, the measured cost, the multiplier, the advantages and the update equal one process's — under DeepSpeed
    ZeRO-2, the recipe's. The cost is the probe's (7 prompts: 4 forwarded on one rank, 3 and a zero-weight repeat on
    the other, then summed)."""
    args = ["objective=ada_grpo", *TRAIN_ARGS, "rl.budget.think_ratio=0.5", "rl.budget.multiplier_init=0.3",
            "rl.budget.step_size=0.5", "rl.budget.proportional=1.0", "rl.budget.probe=7"]
    ref = tmp_path / "ref"
    run([PY, "train.py", f"output_dir={ref}", f"model.path={distill_ref / 'model'}",
         "rl.args.per_device_train_batch_size=4", *args], env, tmp_path / "ref.log")
    out = tmp_path / "ddp"
    launch("cpu_zero2.yaml", "train.py", [f"output_dir={out}", f"model.path={distill_ref / 'model'}",
                                        "rl.args.per_device_train_batch_size=2", *args], env, tmp_path / "run.log")
    r, g = step_logs(ref), step_logs(out)
    # the fake completions per group: correct short, correct think ×2, wrong think; at t = 1 of T = 2 the scale is
    # 1 + ½(4/F − 1)(1 + cos(π/2)): short (F = 1) 2.5, think (F = 3) 7/6; rewards 2.5, 7/6, 7/6, 0: mean 29/24,
    # unpriced: Ada-GRPO standardises its groups, so λ = 0.3 per think is charged on the advantages (the update's
    # equality below covers them)
    assert r[0]["reward"] == pytest.approx(29 / 24) and r[0]["modes/think_ratio"] == pytest.approx(0.75)
    c = r[0]["budget/cost"]  # the distilled policy's think probability on the probe, not the batch's 0.75
    assert r[0]["budget/multiplier"] == pytest.approx(0.3) and 0.0 < c < 1.0 and c != pytest.approx(0.75)
    for k in ("reward", "reward_std", "modes/think_ratio", "modes/accuracy", "budget/multiplier", "budget/cost"):
        assert g[0][k] == pytest.approx(r[0][k], rel=1e-5, abs=1e-6), k
    # the update after step 1, written with the last checkpoint: e = c − 0.5, λ_I = 0.3 + 0.5·e, λ = λ_I + 1.0·e
    for run_dir in (ref, out):
        state = json.loads((run_dir / "checkpoints" / "checkpoint-2" / "budget.json").read_text())
        assert (state["integral"], state["multiplier"]) == pytest.approx((0.3 + 0.5 * (c - 0.5), 0.3 + 1.5 * (c - 0.5)),
                                                                           abs=1e-5)
    for k in ("loss", "grad_norm"):
        assert g[1][k] == pytest.approx(r[1][k], rel=1e-4, abs=1e-6), k
    w0, w_ref, w_got = weights(distill_ref / "model"), weights(ref / "model"), weights(out / "model")
    gap, update = relative_gap(w_got, w_ref, w0)
    assert update > 1e-3 and gap < 1e-3, (gap, update)
