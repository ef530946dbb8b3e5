"""objective=l1 (thinkless/objectives/l1.py): L1 / LCPO's rewards and advantage by hand, the per-prompt target drawn
and rendered as the authors do, the served token budget rendering the training sentence, the configs, a trainer-level
run that moves the mode where the target pays, and train.py objective=l1 end to end."""

import copy
import json
import math
import random
import shutil
import sys
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoTokenizer

import thinkless
from thinkless.tasks import synthetic
from thinkless.tasks.data import DropStats
from thinkless.format import render_prompt
from thinkless.objectives import OBJECTIVES, Rollouts, make_objective
from thinkless.objectives.l1 import L1, budget_suffix, budget_template
from thinkless.training.rl import rl_prompts

from ..conftest import QWEN, R1
from ..helpers import ROOT, run_train_cli, vllm_serve
from .helpers import p_short_around_training, scripted_trainer, step_problems


def rollouts(correct, length, target, G=4):
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    n = len(correct)
    return Rollouts(correct=t(correct), mode=t([1] * n), graded_mode=t([1] * n), length=t(length),
                    truncated=t([0] * n), level=t([1] * n), forced=t([-1] * n), G=G, target=t(target))


# ---------------------------------------------------------------- the formulas, by hand

def test_exact_and_max_rewards_and_the_grpo_advantage_by_hand():
    o = L1(variant="max", alpha=0.01, max_alpha=0.05)
    b = rollouts(correct=[1, 1, 0, 0, 1, 1, 0, 1], length=[20, 40, 20, 40, 10, 30, 10, 60],
                 target=[20] * 4 + [-20] * 4)
    r = o.rewards_for(b)
    # group 1, "Think for 20 tokens." (Exact, math_reward.py:96-100 + :191): 1[correct] − 0.01·|20 − L|
    #   correct L=20: 1 − 0 = 1;  correct L=40: 1 − 0.2 = 0.8;  wrong L=20: 0 − 0 = 0;  wrong L=40: 0 − 0.2 = −0.2
    # group 2, "Think for maximum 20 tokens." (Max, :107-116 × correctness :186): 1[correct]·(clip(0.05·(20 − L),
    # −1, 1) + 1)/2
    #   correct L=10: (0.5 + 1)/2 = 0.75;  correct L=30: (−0.5 + 1)/2 = 0.25;  wrong L=10: 0;
    #   correct L=60: clip(−2) = −1 -> 0
    assert r.tolist() == pytest.approx([1.0, 0.8, 0.0, -0.2, 0.75, 0.25, 0.0, 0.0])
    a = o.advantages(r, b)
    # verl's GRPO, (r − mean)/(std + 1e-6), unbiased std, per group:
    # group 1: mean 0.4; deviations 0.6, 0.4, −0.4, −0.6; var (0.36 + 0.16 + 0.16 + 0.36)/3 = 0.34667, std 0.58878
    #   -> 1.01905, 0.67937, −0.67937, −1.01905
    # group 2: mean 0.25; deviations 0.5, 0, −0.25, −0.25; var (0.25 + 0 + 0.0625 + 0.0625)/3 = 0.125, std 0.35355
    #   -> 1.41421, 0, −0.70711, −0.70711
    assert a.tolist() == pytest.approx([1.01905, 0.67937, -0.67937, -1.01905, 1.41421, 0.0, -0.70711, -0.70711],
                                       abs=1e-4)
    # an ungradable gold answer has no reward; a row without a target is refused, not rewarded as target 0
    nan = o.rewards_for(rollouts([math.nan, 1, 1, 1], [5, 5, 5, 5], [5, 5, 5, 5]))
    assert math.isnan(nan[0]) and nan[1:].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="rows without a target length"):
        o.rewards_for(rollouts([1, 1, 1, 1], [5, 5, 5, 5], [5, 5, 5, math.nan]))
    assert o.standardises_groups(SimpleNamespace(scale_rewards="none"))
    assert o.trl_overrides() == {"loss_type": "dapo"} and o.reward_range() == pytest.approx(1 + 0.01 * 4000)


def test_the_target_is_drawn_and_rendered_as_theirs():
    """deepscaler_dataset.py:59-79: N = random.randint(100, 4000) per prompt; L1-Max's data (--use_both_both) then
    makes it a maximum with probability 1/2 (one random.random() after the randint), stored as −N; the sentence is
    appended to the user turn after a space."""
    exact, mx = L1(), L1(variant="max")
    rng, ref = random.Random(7), random.Random(7)
    for _ in range(50):
        n = ref.randint(100, 4000)
        assert exact.prompt_extra(rng) == (float(n), f" Think for {n} tokens.")
    rng, ref = random.Random(7), random.Random(7)
    got = [mx.prompt_extra(rng) for _ in range(2000)]
    for target, text in got[:50]:
        n = ref.randint(100, 4000)
        if ref.random() < 0.5:
            assert (target, text) == (-float(n), f" Think for maximum {n} tokens.")
        else:
            assert (target, text) == (float(n), f" Think for {n} tokens.")
    share = sum(t < 0 for t, _ in got) / len(got)
    assert 0.45 < share < 0.55 and all(100 <= abs(t) <= 4000 for t, _ in got)

    # rl.py's prompt building: each row's user turn ends with its sentence and the row carries its target; a fixed
    # seed draws the same targets; validation draws from its own stream; objectives without extras add nothing
    cfg = OmegaConf.create({"source": "synthetic", "num_problems": 40, "levels": [1, 2], "seed": 1})
    rows = rl_prompts(cfg, DropStats(), objective=L1(min_target=3, max_target=30), seed=0)
    assert all(r["prompt"][-1]["content"] == r["problem"] + budget_suffix(r["target"]) for r in rows)
    assert len({r["target"] for r in rows}) > 10 and all(3 <= r["target"] <= 30 for r in rows)
    again = rl_prompts(cfg, DropStats(), objective=L1(min_target=3, max_target=30), seed=0)
    other = rl_prompts(cfg, DropStats(), objective=L1(min_target=3, max_target=30), seed=1)
    assert [r["target"] for r in again] == [r["target"] for r in rows] != [r["target"] for r in other]
    plain = rl_prompts(cfg, DropStats(), objective=make_objective({"name": "thinkless"}), seed=0)
    assert "target" not in plain[0] and plain[0]["prompt"][-1]["content"] == plain[0]["problem"]


@pytest.mark.parametrize("which", ["tiny", "r1", "qwen"])
def test_a_served_token_budget_renders_the_training_sentence(which, tiny_tokenizer):
    """The template variable token_budget renders exactly what training appended (for the policy's variant), on the
    three template families we ship; unset, the prompt is unchanged; a bad value is a template error; a second
    variant replaces the first (L1-Max starts from the L1-Exact checkpoint)."""
    if which == "tiny":
        tok = copy.deepcopy(tiny_tokenizer)
    else:
        tok = AutoTokenizer.from_pretrained(R1 if which == "r1" else QWEN)
        thinkless.add_control_tokens(tok)
    plain = render_prompt(tok, "2+2?", system="Be brief." if which == "qwen" else None)
    ctx = SimpleNamespace(tokenizer=tok)
    for variant, target in (("exact", 512.0), ("max", -512.0)):
        L1(variant=variant).prepare(ctx)  # what train.py does before training: the saved policy's template
        kw = dict(system="Be brief." if which == "qwen" else None)
        served = render_prompt(tok, "2+2?", token_budget=512, **kw)
        assert served == render_prompt(tok, "2+2?", suffix=budget_suffix(target), **kw)
        assert render_prompt(tok, "2+2?", **kw) == plain and render_prompt(tok, "2+2?", token_budget=None, **kw) == plain
        assert render_prompt(tok, "2+2?", token_budget=512, thinking="off", **kw) == served + "<short>"
        assert tok.chat_template.count("thinkless: token budget") == 1
        for bad in (-5, 0, 2.5, True, "512", 10 ** 7):
            with pytest.raises(Exception, match="token_budget must be an integer in"):
                render_prompt(tok, "2+2?", token_budget=bad, **kw)
    assert budget_template(None, "exact") is None


# ---------------------------------------------------------------- configs

def test_the_config_composes_and_bad_knobs_are_refused_naming_them():
    from ..test_configs import compose_cfg

    c = compose_cfg("train", ["objective=l1"])
    o = make_objective(c.objective)
    assert isinstance(o, L1) and c.output_dir.endswith("/train_l1") and "l1" in OBJECTIVES
    # the demo's scaling rule: s = 48/4096; targets theirs x s, penalties theirs / s
    s = c.rl.args.max_completion_length / 4096
    assert (o.min_target, o.max_target) == (max(1, round(100 * s)), round(4000 * s))
    assert o.alpha == pytest.approx(0.0003 / s, rel=1e-3) and o.max_alpha == pytest.approx(0.01 / s, rel=1e-3)
    o.check_args(SimpleNamespace(max_completion_length=c.rl.args.max_completion_length))
    for kw, key in [({"variant": "both"}, "objective.variant='both': valid choices"),
                    ({"alpha": -0.1}, "objective.alpha=-0.1: a non-negative"),
                    ({"max_alpha": "x"}, "objective.max_alpha='x': a finite number"),
                    ({"min_target": 0}, "objective.min_target=0, objective.max_target=4000"),
                    ({"min_target": 50, "max_target": 20}, "objective.min_target=50, objective.max_target=20"),
                    ({"max_target": 10 ** 7}, "objective.max_target=10000000"),
                    ({"min_target": 2.5}, "objective.min_target=2.5: an integer")]:
        with pytest.raises(ValueError, match=key):
            make_objective({"name": "l1", **kw})
    with pytest.raises(ValueError, match="objective.max_target=4000 > rl.args.max_completion_length=1024"):
        L1().check_args(SimpleNamespace(max_completion_length=1024))


def test_the_experiments_match_their_scripts_key_by_key():
    from ..test_configs import check_mapping, compose_cfg

    ex = compose_cfg("train", ["+experiment=l1_exact"])
    assert check_mapping(ex, lambda key: False) >= 15
    a, G = ex.rl.args, ex.rl.args.num_generations
    assert a.per_device_train_batch_size * 8 * a.steps_per_generation // G == 128       # prompts per rollout batch
    assert a.per_device_train_batch_size * 8 * a.gradient_accumulation_steps // G == 64  # ppo_mini_batch_size
    mx = compose_cfg("train", ["+experiment=l1_max"])
    assert check_mapping(mx, lambda key: False) >= 4
    assert mx.model.path == ex.output_dir + "/model" and mx.output_dir != ex.output_dir  # stage 2 starts from stage 1
    for c in (ex, mx):
        o = make_objective(c.objective)
        o.check_args(SimpleNamespace(max_completion_length=c.rl.args.max_completion_length))
        assert (o.alpha, o.min_target, o.max_target) == (0.0003, 100, 4000)
    assert (make_objective(ex.objective).variant, make_objective(mx.objective).variant) == ("exact", "max")


# ---------------------------------------------------------------- the trainer moves the policy where the target pays

@pytest.mark.parametrize("target", [7, 30])
def test_two_steps_move_the_mode_towards_the_target_length(tiny_trainer_parts, tmp_path, monkeypatch, target):
    """Two SGD steps of the real trainer (targets in the rows, rewards from the gathered target column, verl's
    advantage, TRL's loss) on scripted completions per group, all correct: short (7 tokens) ×2, think (18) ×2. A
    target of 7 pays the short answers (1 against 1 − 11α), a target of 30 the thinking ones (1 − 12α against
    1 − 23α): p(<short>) at the mode position rises for the first and falls for the second."""
    model, tok = tiny_trainer_parts
    problems = step_problems()
    seen_targets = []

    def script(p, j, p_ids):
        assert budget_suffix(target) in tok.decode(p_ids)  # the sentence reached the model's input
        return [synthetic.short_teacher(p), synthetic.long_teacher(p), synthetic.long_teacher(p),
                synthetic.short_teacher(p)][j]

    objective = L1(alpha=0.0256, min_target=target, max_target=target)
    original = objective.rewards_for
    objective.rewards_for = lambda b: (seen_targets.append(b.target.clone()), original(b))[1]
    rows = rl_prompts(OmegaConf.create({"source": "synthetic", "num_problems": 8, "levels": [2], "seed": 3}),
                      DropStats(), objective=objective, seed=0)
    assert [r["problem"] for r in rows] == [p.prompt for p in problems]
    tr = scripted_trainer(tiny_trainer_parts, tmp_path, monkeypatch, objective, script, rows=rows,
                          max_completion_length=32)
    before, after, logs = p_short_around_training(
        tr, tok, [render_prompt(tok, r["problem"], suffix=budget_suffix(r["target"])) for r in rows])
    assert seen_targets and all(t.tolist() == [float(target)] * 16 for t in seen_targets)  # the gathered column
    assert (logs[0]["modes/len_short"], logs[0]["modes/len_think"], logs[0]["modes/accuracy"]) == (7, 18, 1.0)
    # the reward the objective paid, by hand: (2 x 1 + 2 x (1 − 11α))/4 for 7; (2 x (1 − 23α) + 2 x (1 − 12α))/4 for 30
    want = (2 + 2 * (1 - 11 * 0.0256)) / 4 if target == 7 else (2 * (1 - 23 * 0.0256) + 2 * (1 - 12 * 0.0256)) / 4
    assert logs[0]["rewards/l1/mean"] == pytest.approx(want)
    assert (after > before) if target == 7 else (after < before), (target, before, after)


# ---------------------------------------------------------------- train.py objective=l1, end to end

def test_train_cli_runs_objective_l1(distilled, tmp_path):
    out = tmp_path / "l1"
    run_train_cli(out, distilled / "model", "objective=l1", "objective.variant=max", "rl.args.max_steps=2",
                  "rl.args.per_device_train_batch_size=16", "rl.args.num_generations=4",
                  "rl.args.max_completion_length=48", "rl.args.save_steps=100", "rl_data.validation=null",
                  "report.benchmark.n_per_level=2", "report.free_samples=1", "report.threshold_biases=[]")
    recs = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "modes/think_ratio" in r] == [1, 2]
    assert all(math.isfinite(r["rewards/l1/mean"]) for r in recs if "rewards/l1/mean" in r)
    card = (out / "model" / "README.md").read_text()
    assert "| objective | `l1` |" in card and "| objective.variant | max |" in card
    # the saved policy takes a token budget as it was trained: the maximum sentence of L1-Max
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert render_prompt(tok, "1 ~ 2", token_budget=20) == render_prompt(tok, "1 ~ 2", suffix=budget_suffix(-20))
    # the report asks the trained policy as training asked it, each problem with its own stated budget (both kinds
    # under L1-Max); the distilled model before RL is asked bare, as for every objective (the oracle reads it)
    def prompts(when):
        files = sorted((out / "report" / when / "generations").rglob("forced_think_*.jsonl"))
        return [json.loads(ln)["prompt"] for ln in files[0].read_text().splitlines()]

    after, before = prompts("after_rl"), prompts("before_rl")
    assert len(after) == len(before) > 4 and not any("Think for" in p for p in before)
    assert all(" Think for " in p for p in after) and len({p.split("Think for")[1] for p in after}) > 2
    assert json.loads((out / "pipeline_report.json").read_text())["asked"] == "stated"
    assert "before RL asked bare" in (out / "pipeline_report.md").read_text()


# ---------------------------------------------------------------- eval.py at requested budgets

def eval_cfg(*overrides):
    from hydra import compose, initialize_config_dir

    from ..conftest import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="eval", overrides=list(overrides))


def test_budget_adherence_by_hand_from_a_scripted_policy(tiny_tokenizer, tmp_path):
    """A scripted L1 policy answers short under a budget below 12 and on level 1, and thinks otherwise: requested vs
    actual tokens per budget and per level, by hand. The budget reaches the prompt through the model's template; a template without one, and
    budgets a server would refuse, are errors naming the method."""
    import re

    from eval import eval_stage
    from thinkless.tasks.synthetic import parse_prompt

    from ..helpers import ScriptedGenerator

    tok = copy.deepcopy(tiny_tokenizer)
    L1().prepare(SimpleNamespace(tokenizer=tok))

    def script(prompt, i):
        user = re.search(r"user\n(.*?)<\|im_end\|>", prompt, re.S).group(1)
        m = re.fullmatch(r"(.*) Think for (\d+) tokens\.", user, re.S)
        assert m, user  # every prompt carries its budget, rendered by the template
        p = parse_prompt(m.group(1))
        short = int(m.group(2)) < 12 or p.level == 1
        return f"<short>\\boxed{{{p.answer}}}" if short else f"<think>{p.prompt}</think>\\boxed{{{p.answer}}}"

    cfg = eval_cfg(f"output_dir={tmp_path}", "benchmark.synthetic.n_per_level=1", "progress=false", "plots=false",
                   "calibration=false", "methods=[token_budgets]", "method.token_budgets.budgets=[6,40]")
    res = eval_stage(cfg, generator=ScriptedGenerator(tok, script), tokenizer=tok)
    m = res["benchmarks"]["synthetic"]["methods"]
    assert list(m) == ["token_budgets@6", "token_budgets@40"]
    width = len(make_problem_width())
    # @6: "<short>\boxed{d}" = 1 + 5 tokens, + the EOS = 7 each: |7 − 6| = 1, (7 − 6)/6 = +1/6, none within 6
    short = {"requested": 6, "n": 6, "mean_tokens": 7.0, "mean_abs_error": 1.0, "relative_error": pytest.approx(1 / 6),
             "within_budget": 0.0, "max_tokens": 7}
    per_level = m["token_budgets@6"]["token_budget"].pop("per_level")
    assert m["token_budgets@6"]["token_budget"] == short
    assert per_level == {str(lv): {**short, "n": 1} for lv in range(1, 7)}  # one sample per level, each the same
    # @40: "<think>" + the fold prompt (one token per character) + "</think>" + "\boxed{d}" + EOS = width + 8
    # level 1 answers short (7), levels 2-6 think (n): the mean over six samples, and each level's own
    n = width + 8
    per_level = m["token_budgets@40"]["token_budget"].pop("per_level")
    assert m["token_budgets@40"]["token_budget"] == {"requested": 40, "n": 6, "mean_tokens": pytest.approx((7 + 5 * n) / 6),
                                                     "mean_abs_error": pytest.approx((33 + 5 * abs(n - 40)) / 6),
                                                     "relative_error": pytest.approx(((7 + 5 * n) / 6 - 40) / 40),
                                                     "within_budget": 1.0, "max_tokens": n}
    assert per_level["1"] == {"requested": 40, "n": 1, "mean_tokens": 7.0, "mean_abs_error": 33.0,
                              "relative_error": pytest.approx(-33 / 40), "within_budget": 1.0, "max_tokens": 7}
    assert all(per_level[str(lv)]["mean_tokens"] == n for lv in range(2, 7)) and n < 40
    assert m["token_budgets@40"]["think_ratio"] == pytest.approx(5 / 6) and m["token_budgets@6"]["think_ratio"] == 0.0
    md = (tmp_path / "results.md").read_text()
    assert "token budget adherence" in md and "| token_budgets@6 | 6 | 7.0 | 1.0 | +16.7% | 0.0% | 7 |" in md

    with pytest.raises(ValueError, match="does not render a token budget"):  # a model not trained with L1
        eval_stage(cfg, generator=ScriptedGenerator(tiny_tokenizer, script), tokenizer=tiny_tokenizer)
    for bad, why in (("[0]", r"budgets\[0\]=0: token_budget must be an integer in \[1, 1000000\]"),
                     ("[64,2.5]", r"budgets\[1\]=2.5"), ("[]", r"budgets=\[\]")):
        with pytest.raises(ValueError, match=r"method.token_budgets." + why):
            eval_stage(eval_cfg(f"output_dir={tmp_path}/bad", "progress=false", "methods=[token_budgets]",
                              f"method.token_budgets.budgets={bad}"), generator=ScriptedGenerator(tok, script),
                     tokenizer=tok)


def make_problem_width() -> str:
    return synthetic.make_problems(1, [3], seed=0)[0].prompt  # every fold prompt has the same width


def test_eval_at_requested_budgets_on_the_tiny_model(tmp_path):
    """eval.py on a real (random) tiny checkpoint whose template takes budgets: one run per budget, the adherence
    computed from what was generated (the generations files), the prompts carrying the sentence."""
    from eval import eval_stage

    from ..helpers import save_tiny

    model = save_tiny(tmp_path / "model")
    tok = AutoTokenizer.from_pretrained(model)
    L1(variant="max").prepare(SimpleNamespace(tokenizer=tok))
    tok.save_pretrained(model)
    out = tmp_path / "eval"
    res = eval_stage(eval_cfg(f"model_path={model}", f"output_dir={out}", "benchmark.synthetic.n_per_level=1",
                            "progress=false", "plots=false", "calibration=false", "threads=1",
                            "methods=[token_budgets]", "method.token_budgets.budgets=[6,24]",
                            "benchmark.synthetic.max_new_tokens=16"))
    for b in (6, 24):
        m = res["benchmarks"]["synthetic"]["methods"][f"token_budgets@{b}"]
        rows = [json.loads(x) for x in open(m["generations"])]
        assert all(r["prompt"].count(f"Think for maximum {b} tokens.") == 1 for r in rows)
        lengths = [s["tokens"] + s["finished"] for r in rows for s in r["samples"]]
        a = m["token_budget"]
        assert a["requested"] == b and a["n"] == len(lengths) == 6
        assert a["mean_tokens"] == pytest.approx(sum(lengths) / 6)
        assert a["within_budget"] == pytest.approx(sum(n <= b for n in lengths) / 6)
    saved = json.loads((out / "results.json").read_text())
    assert saved["benchmarks"]["synthetic"]["methods"]["token_budgets@24"]["token_budget"]["requested"] == 24


# ---------------------------------------------------------------- served: a real vLLM server (CPU build)

@pytest.mark.slow
def test_a_served_l1_policy_takes_a_token_budget(distilled, tmp_path):
    """`trl vllm-serve` with the middleware on a policy whose template takes budgets (what train.py objective=l1
    saves): chat_template_kwargs.token_budget reaches the prompt (the prompt grows by exactly the training sentence),
    and bad budgets are a 400 before the engine sees them."""
    pytest.importorskip("vllm")  # THINKLESS_NO_VLLM=1 installs (docs/stack.md)
    import requests

    model = tmp_path / "model"
    shutil.copytree(distilled / "model", model)
    tok = AutoTokenizer.from_pretrained(model)
    L1().prepare(SimpleNamespace(tokenizer=tok))
    tok.save_pretrained(model)
    with vllm_serve(model, tmp_path / "server.log", "--served-model-name", "l1", "--middleware",
                    "thinkless.serving.check_request", timeout=300) as url:
        q = "7 ~ 3 ~ 6 . . . . . . . ."

        def ask(**kw):
            return requests.post(url + "/v1/chat/completions", timeout=120, json={
                "model": "l1", "messages": [{"role": "user", "content": q}], "temperature": 0, "max_tokens": 4,
                **({"chat_template_kwargs": kw} if kw else {})})

        n = lambda text: len(tok(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        plain = ask()
        assert plain.status_code == 200, plain.text
        for budget in (6, 20, 4000):
            r = ask(token_budget=budget)
            assert r.status_code == 200, r.text
            grown = r.json()["usage"]["prompt_tokens"] - plain.json()["usage"]["prompt_tokens"]
            assert grown == n(render_prompt(tok, q, suffix=budget_suffix(budget))) - n(render_prompt(tok, q)) > 0
        for bad in (-1, 0, 2.5, "20", 10 ** 9):
            r = ask(token_budget=bad)
            assert r.status_code == 400 and "token_budget must be an integer" in r.json()["error"]["message"], r.text
        r = ask(max_tokens_budget=20)
        assert r.status_code == 400 and "token_budget" in r.json()["error"]["message"]
        # the L1 bench's served stage on this server (bench/l1_budget.py --serve): its requests, counts and refusals
        sys.path.insert(0, str(ROOT))
        from bench.l1_budget import BAD_BUDGETS, ask_served, served_text

        res = ask_served(url, [6, 20], 1, [1, 6], 48)
        assert [(b["requested"], b["n"], sorted(b["per_level"])) for b in res["budgets"]] == [(6, 2, ["1", "6"]),
                                                                                             (20, 2, ["1", "6"])]
        assert all(1 <= b["mean_tokens"] <= 48 and 0 <= b["accuracy"] <= 1 for b in res["budgets"])
        assert res["budgets"][1]["prompt_tokens"] - res["budgets"][0]["prompt_tokens"] == 1  # "20" is a digit longer
        assert [r["status"] for r in res["refused"]] == [400] * (len(BAD_BUDGETS) + 1)
        assert all("token_budget must be an integer in [1, 1000000]" in r["message"] for r in res["refused"][:-1])
        assert "| `token_budget=-1` | 400 | token_budget must be an integer" in served_text(res)
        assert requests.get(url + "/health", timeout=5).status_code == 200
