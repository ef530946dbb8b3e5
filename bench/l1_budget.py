"""Does an L1 policy honour the token budget a request states? On the fold task: a warm-up distillation whose traces
come at several lengths (``data.max_trace``) and whose prompts state their response's own length in L1's sentence
(``data.budget_prompts``: the model learns to read it and to write that long), L1-Exact
RL from it (``train.py objective=l1``: targets drawn per prompt, reward ``1[correct] − α·|N − L|``), then
``eval.py``'s ``token_budgets`` method: per requested budget N, the prompt rendered by the policy's chat template with
``token_budget=N`` exactly as a served request's ``chat_template_kwargs`` is, and the measured response tokens
(EOS counted, as the reward counts them) and accuracy; then the policy served (``trl vllm-serve`` with the request
middleware) asked each budget as a client asks it, and the budgets the server refuses with a 400 (``--serve``).
Writes ``l1_budget_results.{md,json}`` in ``--out``.

    python bench/l1_budget.py                    # 850 distill steps, 260 RL steps, budgets 6 12 24 42 -> runs/l1
    python bench/l1_budget.py --quick            # a few steps, not served: the plumbing (the test suite's; the served
                                                 # stage's requests: tests/objectives/test_l1.py's served policy)
    python bench/l1_budget.py --share 0 --out runs/l1-bare  # without the warm-up's budget prompts (a baseline)

A rerun skips the stages whose outputs are there (each stage's own resume). docs/objectives.md, L1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command_line, log, machine, run_script, vllm_serve, write_results  # noqa: E402
from thinkless.objectives.l1 import WARMUP_SHARE  # noqa: E402
from thinkless.reporting.markdown import markdown_cell, markdown_row, markdown_rule, markdown_table  # noqa: E402
from thinkless.tasks.base import get_task  # noqa: E402

# The published run's settings, pinned so that tuning the demo's configs cannot move this bench: the fold task's
# distillation at 850 steps and 1e-3, RL as the gym's (conf/rl/gym_cpu.yaml) on the fold task's earlier level mix.
# the published run's distillation: TRL's random row order and one forward (a row that states its own length asks a
# prompt of its own: nothing to share)
# Its traces at several lengths (data.max_trace: each restates its answer a drawn number of times, up to 36 trace
# symbols, 46 tokens with the EOS, under the RL's 48): a trace written at one length per level teaches a stated length
# as a level's, and the policy then honours a budget only by its choice of mode (the 9a00c5a run: 12 -> 24 tokens).
DISTILL = {"training.args.max_steps": 850, "training.args.learning_rate": 1e-3, "training.args.share_prompts": False,
           "data.max_trace": 36, "data.level_weights": [2, 1, 1, 1, 1, 1]}
TRAIN = {"rl.args.learning_rate": 2e-4, "rl.args.warmup_steps": 0, "rl_data.level_weights": [3, 2, 2, 2, 2, 2]}
BUDGETS = (6, 12, 24, 42)  # conf/method/token_budgets.yaml's: the authors' 512 .. 3600 of 4096, x 48/4096
SERVE_SEED = 20003  # the served problems' own stream (eval's benchmark reads 20000, the pipeline reports 20001)
BAD_BUDGETS = (-1, 0, 2.5, "20", 10 ** 9)  # what a served request may not ask: each must be a 400 naming the range


def finished(stage: Path, result: str, want: dict) -> bool:
    """Whether ``stage`` finished (its ``result`` file) with the settings ``want`` (dotted config keys, read from its
    ``run_config.json``); a stage finished with others stops the bench: its folder is this invocation's."""
    if not (stage / result).is_file():
        return False
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(json.loads((stage / "run_config.json").read_text())["config"])
    got = {key: OmegaConf.select(cfg, key) for key in want}
    if got != want:
        raise SystemExit(f"{stage}: finished with {got}, not this invocation's {want}; pass another --out")
    return True


def pins(values: dict) -> list[str]:
    """Hydra overrides setting ``values`` (dotted key -> value)."""
    return [f"{k}={json.dumps(v).replace(' ', '')}" for k, v in values.items()]


def reachable(model: Path, levels: list[int], max_trace: int) -> dict:
    """Per fold level, the lengths (tokens with the EOS, in ``model``'s tokenizer) of the short answer and of the
    trace at every length it comes in up to ``max_trace`` (``Fold.stretched_responses``: the distillation's)."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    n = lambda text: len(tok(text + tok.eos_token, add_special_tokens=False)["input_ids"])  # noqa: E731
    task, out = get_task("fold"), {}
    for lv in levels:
        p = task.draw(lv, random.Random(lv))
        out[lv] = {"short": n(task.short_response(p)), "think": [n(r) for r in task.stretched_responses(p, max_trace)]}
    return out


def ask_served(url: str, budgets, per_level: int, levels, max_tokens: int, model: str = "l1") -> dict:
    """Ask the policy served at ``url`` (``trl vllm-serve`` with ``thinkless.serving.check_request``) for each budget
    as a client does: ``chat_template_kwargs={"token_budget": N}``, greedy, at most ``max_tokens`` (the evaluation's),
    ``per_level`` fold problems of each level (``SERVE_SEED``'s stream); per budget the completion tokens vLLM reports (EOS counted) overall and per level and
    the accuracy; then each of ``BAD_BUDGETS`` and a misspelt key: the status and the message."""
    import requests

    from thinkless.grading import grade

    task = get_task("fold")
    problems = task.make_problems(per_level * len(levels), list(levels), SERVE_SEED)

    def ask(q, **kw):
        return requests.post(url + "/v1/chat/completions", timeout=120, json={
            "model": model, "messages": [{"role": "user", "content": q}], "temperature": 0, "max_tokens": max_tokens,
            "chat_template_kwargs": kw})

    out = {"budgets": [], "refused": []}
    for b in budgets:
        got = []
        for p in problems:
            r = ask(p.prompt, token_budget=b)
            if r.status_code != 200:
                raise SystemExit(f"served budget {b}: {r.status_code} {r.text[:300]}")
            j = r.json()
            got.append((p.level, j["usage"]["completion_tokens"],
                        grade(j["choices"][0]["message"]["content"], p.answer, exact=True),
                        j["usage"]["prompt_tokens"]))
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        out["budgets"].append({"requested": b, "n": len(got), "mean_tokens": mean([n for _, n, _, _ in got]),
                               "prompt_tokens": mean([t for *_, t in got]),
                               "accuracy": mean([c for _, _, c, _ in got]),
                               "per_level": {str(lv): mean([n for v, n, _, _ in got if v == lv]) for lv in levels}})
    for bad in [*BAD_BUDGETS, None]:
        r = ask(problems[0].prompt, **({"token_budget": bad} if bad is not None else {"max_tokens_budget": 20}))
        out["refused"].append({"sent": "max_tokens_budget=20" if bad is None else f"token_budget={bad!r}",
                               "status": r.status_code, "message": r.json().get("error", {}).get("message")})
    return out


def served_text(served: dict | None) -> str:
    """The served section of the results (empty when the policy was not served)."""
    if not served:
        return ""
    b0 = served["budgets"][0]
    levels = list(b0["per_level"])
    served_table = markdown_table(
        ["requested tokens", "samples", "measured mean tokens", "accuracy", *[f"level {lv}" for lv in levels]],
        [[b["requested"], b["n"], f"{b['mean_tokens']:.1f}", f"{b['accuracy']:.3f}",
          *[f"{b['per_level'][lv]:.1f}" for lv in levels]] for b in served["budgets"]])
    refused = markdown_table(["sent", "status", "message"], [[f"`{r['sent']}`", r["status"], markdown_cell(r["message"])]
                                                              for r in served["refused"]])
    return ("\nServed (`trl vllm-serve` on vLLM's CPU build with `--middleware thinkless.serving.check_request`): each "
            "budget sent as a client sends it, `chat_template_kwargs={\"token_budget\": N}`, greedy, on "
            f"{b0['n'] // len(levels)} problems per level of their own stream; tokens are vLLM's `completion_tokens` "
            "(EOS counted):\n\n" + served_table + "\n\nWhat the server refuses, before the engine sees it:\n\n"
            + refused + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "l1"), help="runs and results (default runs/l1)")
    p.add_argument("--quick", action="store_true", help="a few steps, a few problems (the test suite's)")
    p.add_argument("--share", type=float, default=WARMUP_SHARE, help="data.budget_prompts of the warm-up (default "
                   f"{WARMUP_SHARE:g}, L1's own warm-up, objectives.l1.WARMUP_SHARE: that share of the prompts state "
                   "their response's length, the rest are bare, as a request without a budget is)")
    p.add_argument("--steps", type=int, help="RL steps (default 260, the demo's; --quick: 3)")
    p.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="requested token budgets")
    p.add_argument("--seed", type=int, default=0, help="seed of every stage")
    p.add_argument("--serve", type=int, metavar="N", help="then serve the policy (trl vllm-serve on "
                   "vLLM's CPU build, the request middleware) and ask it each budget on N problems per level, and the "
                   "budgets a server refuses (default 20; 0: not served; --quick: 0)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = a.steps or (3 if a.quick else 260)
    small = ["report.benchmark.n_per_level=6", "report.free_samples=1"] if a.quick else []
    common = ["run_name=l1", f"seed={a.seed}"]
    t0 = time.perf_counter()
    walls = {}
    distill = {**DISTILL, **({"training.args.max_steps": 20} if a.quick else {})}
    if not finished(out / "distill", "distill_result.json", {"data.budget_prompts": a.share, "seed": a.seed,
                                                             **distill}):
        log(f"distilling with budget prompts (data.budget_prompts={a.share:g})")
        walls["distill"] = run_script("distill.py", [*common, f"output_dir={out / 'distill'}",
                                                     f"data.budget_prompts={a.share:g}",
                                                     "training.args.disable_tqdm=true", *small, *pins(distill), *(
                                                         ["data.num_problems=200"] if a.quick else [])],
                                      out / "logs" / "distill.log")
    if not finished(out / "train", "train_result.json", {"objective.name": "l1", "rl.args.max_steps": steps,
                                                          "seed": a.seed, **TRAIN}):
        log(f"L1-Exact RL, {steps} steps")
        walls["train"] = run_script("train.py", [*common, "objective=l1", "rl=gym_cpu", *pins(TRAIN),
                                                 f"model.path={out / 'distill' / 'model'}",
                                                 f"output_dir={out / 'train'}", f"rl.args.max_steps={steps}", *small,
                                                 *(["rl.args.per_device_train_batch_size=16",
                                                    "rl.args.num_generations=4", "rl_data.validation=null"]
                                                   if a.quick else [])], out / "logs" / "train.log")
    budgets = "[" + ",".join(str(b) for b in a.budgets) + "]"
    log(f"evaluating budgets {budgets}")
    walls["eval"] = run_script("eval.py", [*common, f"model={out / 'train' / 'model'}", f"output_dir={out / 'eval'}",
                                           "benchmarks=[synthetic]", "methods=[adaptive,token_budgets]",
                                           f"method.token_budgets.budgets={budgets}", "generation.backend=hf",
                                           *(["limit=12"] if a.quick else [])], out / "logs" / "eval.log")
    res = json.loads((out / "eval" / "results.json").read_text())
    methods = res["benchmarks"]["synthetic"]["methods"]
    rows = []
    for b in a.budgets:
        m = methods[f"token_budgets@{b}"]
        if not m["token_budget"].get("n"):
            raise SystemExit(f"{out / 'eval'}: no sample was generated at budget {b}; see {out / 'logs' / 'eval.log'}")
        rows.append({"requested": b, **m["token_budget"], "accuracy": m["acc"],
                     "think_ratio": m.get("think_ratio")})
    free = methods["adaptive"]
    lines = [markdown_row(["requested tokens", "samples", "measured mean tokens", "mean |error|", "relative error",
                           "within budget", "longest", "accuracy", "think ratio"]), markdown_rule(9)]
    for r in rows:
        lines.append(markdown_row([r["requested"], r["n"], f"{r['mean_tokens']:.1f}", f"{r['mean_abs_error']:.1f}",
                                   f"{r['relative_error']:+.2f}", f"{r['within_budget']:.2f}", r["max_tokens"],
                                   f"{r['accuracy']:.3f}", "-" if r["think_ratio"] is None else
                                   f"{r['think_ratio']:.2f}"]))
    lines.append(markdown_row(["*no budget stated*", None, f"{free['tokens']:.1f} (no EOS)", None, None, None, None,
                               f"{free['acc']:.3f}", "-" if free.get("think_ratio") is None else
                               f"{free['think_ratio']:.2f}"]))
    serve = a.serve if a.serve is not None else 0 if a.quick else 20
    levels = sorted(int(lv) for lv in rows[0].get("per_level", {}))
    served = None
    if serve:
        log(f"serving the policy: {serve} problems per level at each budget")
        t1 = time.perf_counter()
        with vllm_serve(out / "train" / "model", out / "logs" / "serve.log", "--served-model-name", "l1",
                        "--middleware", "thinkless.serving.check_request", timeout=600) as url:
            # as eval.py asked it: its benchmark's response limit
            limit = json.loads((out / "eval" / "run_config.json").read_text())["config"]["benchmark"]["synthetic"][
                "max_new_tokens"]
            served = ask_served(url, a.budgets, serve, levels, limit)
        walls["serve"] = time.perf_counter() - t1
    reach = reachable(out / "train" / "model", levels, distill["data.max_trace"])
    per = markdown_table(["requested tokens", *[f"level {lv}" for lv in levels]], [
        *[[r["requested"], *[f"{r['per_level'][str(lv)]['mean_tokens']:.1f}" for lv in levels]] for r in rows],
        ["*the level's lengths*", *[f"{reach[lv]['short']}; {reach[lv]['think'][0]}-{reach[lv]['think'][-1]}"
                                     for lv in levels]]])
    text = (f"# An L1 policy asked for token budgets\n\nFold task; warm-up distillation with "
            f"data.budget_prompts={a.share:g} and data.max_trace={distill['data.max_trace']}, L1-Exact RL for {steps} "
            f"steps (conf/objective/l1.yaml), then eval.py's "
            f"token_budgets (the prompt rendered with chat_template_kwargs token_budget=N, as served), seed {a.seed}. "
            f"Measured tokens count the EOS (the reward's L). Machine: {machine()}. Command: "
            f"`{command_line('bench/l1_budget.py')}`.\n\n" + "\n".join(lines) + "\n\n"
            "Per level, the measured mean tokens (EOS counted) and, last, the lengths a level's responses come in "
            "(the short answer; the trace, shortest to longest, its answer restated up to data.max_trace: the "
            "teachers' responses in the policy's tokenizer):\n\n" + per + "\n" + served_text(served))
    write_results(out, "l1_budget_results", text, {"share": a.share, "steps": steps, "seed": a.seed,
                                                   "budgets": rows, "adaptive": free, "reachable": reach,
                                                   "served": served, "wall_s": walls})
    print(text, flush=True)
    log(f"done in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
