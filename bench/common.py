"""The bench library: what several benchmarks share, so that no bench imports another bench's script.

* the machine and in-process timing: ``cpu_name``, ``machine``, ``median``, ``Timers``, ``tiny_rl_setup``;
* the gym's runs (bench/gym.py, bench/budget.py): the run plan (``Plan``), a script run with its log
  (``run_script``), the shared distillation (``distill``), one RL run and many (``train_run``, ``run_all``) and a
  finished run's numbers (``summarize_run``);
* results: ``spread``/``fmt`` (mean ± sd over seeds), ``interval`` (a 95% Student t interval over seeds, ``fmt(...,
  ci=True)``) and ``rank_groups`` (ahead only where intervals separate), ``class_name``, ``command_line``, ``write_results``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

ROOT = Path(__file__).resolve().parents[1]
TASK = ["rl_data=graded", "benchmark@report.benchmark=graded"]  # the gym's task: every gym and budget run's
# The gym's settings, pinned here so that tuning the demo's configs (conf/training/sft_cpu.yaml, conf/rl/degrpo_cpu.yaml)
# cannot move the gym: the graded task's distillation runs 2 epochs (850 steps at 1e-3) and RL runs conf/rl/gym_cpu.yaml
# (the advantage divided by the group's std, no warm-up, learning rate 2e-4), the published gym and budget runs'
# (docs/gym.md "Equal terms"); a run's own overrides and --train / Plan overrides win (they come later).
GYM_SCALE = {"distill": ["training.args.max_steps=850", "training.args.learning_rate=1e-3",
                         "training.args.length_bucket_rows=0", "training.args.share_prompts=false"],
             # ^ the distillation the published runs started from (TRL's random row order and one forward)
             "train": ["rl=gym_cpu", "rl.args.learning_rate=2e-4"]}  # the rate is gym_cpu.yaml's too; it stays an
# argument because the published runs recorded it (train_run compares arguments).
# Runs made before the gym named its RL config ran conf/rl/degrpo_cpu.yaml when it held gym_cpu.yaml's values; such a
# run is the same run when its recorded config has those values (``holds_gym_rl``).
GYM_RL = "rl=gym_cpu"


def cpu_name() -> str:
    """The CPU's model name and family from /proc/cpuinfo ("AMD EPYC, family 25"): machines of one name differ."""
    try:
        info = dict(ln.split(":", 1) for ln in Path("/proc/cpuinfo").read_text().splitlines() if ":" in ln)
        info = {k.strip(): v.strip() for k, v in info.items()}
        return f"{info.get('model name', platform.machine())}, family {info.get('cpu family', '?')}"
    except OSError:
        return platform.processor() or platform.machine()


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{gpu}, torch threads {torch.get_num_threads()}")


def median(xs):
    return statistics.median(xs) if xs else float("nan")


class Timers:
    """Accumulates wall time per label; wraps bound methods of an object in place."""

    def __init__(self):
        self.t: dict[str, float] = {}

    @contextmanager
    def time(self, label):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.t[label] = self.t.get(label, 0.0) + time.perf_counter() - t0

    def wrap(self, obj, name, label):
        fn = getattr(obj, name)

        def wrapped(*a, **kw):
            with self.time(label):
                return fn(*a, **kw)

        setattr(obj, name, wrapped)

    def pop(self):
        out, self.t = self.t, {}
        return out


def tiny_rl_setup(tmp: Path, *, hidden=128, layers=2, n_prompts=64, seed=0):
    """A tiny Qwen2 policy saved to ``tmp`` (so a frozen reference can be loaded) and a fold-task dataset."""
    from datasets import Dataset

    from thinkless.tasks.synthetic import build_tiny_model, build_tiny_tokenizer, make_problems
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), hidden_size=hidden, num_layers=layers, seed=seed,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}], "answer": p.answer,
                             "task": "synthetic", "level": p.level}
                            for p in make_problems(n_prompts, [1, 2, 3, 4, 5, 6], seed=seed)])
    return tok, ds


# ------------------------------------------------------------------ the gym's runs


def registered_objectives() -> list[str]:
    """Every registered objective (thinkless/objectives/), by name: a plan's default."""
    from thinkless.objectives import OBJECTIVES

    return list(OBJECTIVES)


@dataclass
class Plan:
    """What every run shares. ``--quick`` shrinks it to seconds; the defaults are the published leaderboard."""

    seeds: list = field(default_factory=lambda: [0, 1, 2])
    objectives: list = field(default_factory=registered_objectives)
    steps: int = 100                 # the demo (conf/rl/degrpo_cpu.yaml) runs 130; at 100 the gym's 72 runs (--jobs 2) took 85 minutes on the slowest kind (docs/results/gym_results_l1_without_warmup.md's last line; its distillations not counted)
    timing_steps: int = 20           # step-time ratio: the first N steps of a run vs stock TRL GRPO's first N
    jobs: int = 1                    # runs at once; 1 keeps wall times and step-time ratios comparable
    tag: str = ""                    # --train overrides, in run labels and folders
    distill: list = field(default_factory=list)  # extra distill.py overrides
    train: list = field(default_factory=list)    # extra train.py overrides (every run alike)
    arms: list = field(default_factory=lambda: ["shared", "recipe", "matched"])  # bench/gym.py's arms (docs/gym.md)
    recipes: list | None = None      # objectives whose recipe arm runs (None: every objective of the plan)
    matched: list | None = None      # objectives trained to the oracle's think ratio (None: every objective)

    def arms_of(self, objective: str) -> list[str]:
        """The arms ``objective`` runs in: ``shared`` always when planned, ``recipe`` where ``recipes`` allows,
        ``matched`` where ``matched`` does."""
        allowed = {"recipe": self.recipes, "matched": self.matched}
        return [a for a in self.arms if allowed.get(a) is None or objective in allowed[a]]

    @classmethod
    def quick(cls) -> "Plan":
        # the shrink overrides are command-line overrides, so they win over a recipe's G and batch (+recipe=NAME);
        # G 4 divides the 16 completions of a step and any steps_per_generation's rollout batch (16 x k)
        small = ["report.benchmark.n_per_level=6", "report.free_samples=1"]
        # the recipe arm of two objectives only (KL, entropy, T 0.6, std-free advantages and 2 steps per rollout;
        # 6 steps per rollout): the plumbing of both arms at +2 runs, not +8
        # and the matched arm of the one objective that forces the mode: rl.budget priced on its probe
        return cls(seeds=[0], steps=3, timing_steps=2, jobs=2, recipes=["thinkless", "ada_grpo"], matched=["adaptthink"],
                   distill=["training.args.max_steps=20", "data.num_problems=200", *small],
                   train=["rl.args.per_device_train_batch_size=16", "rl.args.num_generations=4",
                          "rl.args.save_steps=100", "rl_data.validation=null", "report.threshold_biases=[-4,0,4]",
                          *small])


# every run trained to a budget (bench/budget.py, the gym's matched arm): the price keeps its scale — no std division
# of the group's rewards (thinkless/training/budget.py warns under `group`); the official Thinkless recipe's too
PRICED = ["rl.args.scale_rewards=none"]


def log(msg: str) -> None:
    sys.stdout.write(f"[gym {time.strftime('%H:%M:%S')}] {msg}\n")  # one write: runs at once do not interleave
    sys.stdout.flush()


def script_env() -> dict:
    """The environment every bench child process runs in: this checkout importable, offline Hub and W&B unless the
    caller's environment says otherwise, no tokenizer threads."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "WANDB_MODE": os.environ.get("WANDB_MODE",
                                                                                                 "offline")}


def run_script(script: str, overrides: list[str], logfile: Path) -> float:
    """``python <script> overrides...`` with its output in ``logfile``; wall seconds. Fails naming the log."""
    env = script_env()
    logfile.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with logfile.open("w") as f:
        rc = subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=env, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = logfile.read_text()[-3000:]
        raise RuntimeError(f"{script} {' '.join(overrides)} failed ({rc}); its output: {logfile}\n{tail}")
    return time.perf_counter() - t0


def distill_finished(d: Path) -> bool:
    """Whether the distillation in folder ``d`` finished (its result file): ``distill`` skips it, ``start_models``
    counts it as not made by this call."""
    return (d / "distill_result.json").is_file()


def distill(out: Path, plan: Plan, folder: str = "distill", warmup=()) -> Path:
    """The one distillation every run starts from (skipped when its model is there); ``warmup``: an objective's own
    warm-up (``Objective.warmup``) in ``folder``, the same data and schedule with its overrides."""
    d = out / folder
    if not distill_finished(d):
        log(f"distilling the graded task ({'shared by every run' if not warmup else ', '.join(warmup)})")
        s = run_script("distill.py", ["data=graded", "benchmark@report.benchmark=graded", f"output_dir={d}",
                                      "run_name=gym", "training.args.disable_tqdm=true", *GYM_SCALE["distill"],
                                      *plan.distill, *warmup],
                       out / "logs" / f"{folder}.log")
        log(f"distilled in {s:.0f}s")
    return d / "model"


def start_folder(name: str) -> str:
    """Where objective ``name``'s start is distilled: ``distill`` (shared), or ``distill-NAME`` for an objective whose
    policy needs a warm-up its rewards cannot teach (``Objective.warmup``: L1 must read a stated budget)."""
    from thinkless.objectives import OBJECTIVES

    return f"distill-{name}" if OBJECTIVES[name].warmup else "distill"


def start_model(out: Path, plan: Plan, name: str) -> Path:
    """The model objective ``name``'s runs start from (``start_folder``), distilled there if it is not yet."""
    from thinkless.objectives import OBJECTIVES

    return distill(out, plan, start_folder(name), tuple(OBJECTIVES[name].warmup))


class Starts(NamedTuple):
    """What ``start_models`` returns: the shared model (or None), each objective's start, and the start folders this
    call distilled (those it found finished are not among them)."""
    shared: Path | None
    by_name: dict
    distilled: list


def start_models(out: Path, plan: Plan, names, shared: bool = False) -> Starts:
    """Every objective's start (``start_model``), the distinct start folders distilled side by side, ``plan.jobs`` at
    a time (each its own process); with ``shared`` the shared distillation too, whether or not an objective starts
    from it (the gym's yardsticks read it)."""
    from concurrent.futures import ThreadPoolExecutor

    first = {"distill": None} if shared else {}  # folder -> an objective that starts there (None: the shared one)
    for n in names:
        first.setdefault(start_folder(n), n)
    todo = [f for f in first if not distill_finished(out / f)]
    with ThreadPoolExecutor(max(1, plan.jobs)) as pool:
        made = {f: pool.submit(start_model, out, plan, n) if n else pool.submit(distill, out, plan)
                for f, n in first.items()}
        models = {f: m.result() for f, m in made.items()}
    return Starts(models.get("distill"), {n: models[start_folder(n)] for n in names}, todo)


def own_warmup(model: Path) -> bool:
    """Whether ``model`` is an objective's own warm-up (``start_model``), not the shared distillation every yardstick
    reads (the oracle's)."""
    return model.parent.name.startswith("distill-")


def train_run(out: Path, model: Path, label: str, overrides: list[str], seed: int, plan: Plan) -> dict:
    """One RL run (skipped when finished); its row of the results."""
    return _train_run(out, model, label, overrides, seed, plan)[0]


def _train_run(out: Path, model: Path, label: str, overrides: list[str], seed: int, plan: Plan) -> tuple[dict, bool]:
    """``train_run``'s row, and whether this call trained it (False: a finished run reused)."""
    d = out / "runs" / f"{label}-s{seed}"
    done = d / "gym_run.json"
    # what makes the run (paths aside): a finished run is reused only when it was trained with all of it — another
    # bench, or this one with other steps or overrides, may have left a run under the same label
    # (and the start, where it is an objective's own warm-up: a run from the shared distillation is not that run)
    argv = sorted([*overrides, *plan.train, f"rl.args.max_steps={plan.steps}", *GYM_SCALE["train"],
                   *([f"model.path={model.parent.name}/{model.name}"] if own_warmup(model) else [])])
    if done.is_file():
        row = json.loads(done.read_text())
        if "argv" in row:
            same = row["argv"] == argv or (row["argv"] == sorted(a for a in argv if a != GYM_RL)
                                           and holds_gym_rl(argv, d))
        else:  # a row written before the key: its overrides, its step count and the gym's RL settings
            cfg = json.loads((d / "run_config.json").read_text())["config"]
            same = (row["overrides"] == overrides and cfg["rl"]["args"]["max_steps"] == plan.steps
                    and holds_gym_rl(argv, d))
        if not same:
            raise SystemExit(f"{d}: a finished run trained with {row.get('argv') or row['overrides']}, not this "
                             f"invocation's {argv}; move it away (or pass what it was run with)")
        if "budget" not in row:  # a row written before summarize_run kept the budget's card and its loop
            row["budget"] = json.loads((d / "train_result.json").read_text()).get("budget")
        if "budget_series" not in row:
            row["budget_series"] = budget_series(d)
        return row, False
    log(f"training {label} seed {seed}")
    wall = run_script("train.py", [*GYM_SCALE["train"], *overrides, *TASK, f"model.path={model}", f"output_dir={d}",
                                   "run_name=gym", f"seed={seed}", f"rl.args.max_steps={plan.steps}", *plan.train],
                      out / "logs" / f"{label}-s{seed}.log")
    row = {"label": label, "seed": seed, "overrides": overrides, "argv": argv, "dir": str(d.relative_to(out)),
           "commit": git_commit(), "wall_s": round(wall, 1),
           **summarize_run(d)}
    done.write_text(json.dumps(row, indent=2))
    log(f"{label} seed {seed}: E[r] {row['reward']:.3f} (oracle {row['oracle_reward']:.3f}), acc {row['acc']:.3f}, "
        f"think {row['think_ratio']:.2f}, {row['tokens']:.1f} tokens, {wall:.0f}s")
    return row, True


COMPOSING = threading.Lock()  # Hydra's compose state is global: runs checked at once (--jobs) compose one at a time


def holds_gym_rl(argv: list[str], d: Path) -> bool:
    """Whether the run in ``d`` (recorded before ``GYM_RL`` was among the gym's arguments) trained with the values
    this invocation (``argv``) composes for every key conf/rl/gym_cpu.yaml sets: its recorded ``rl.args``, read."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with COMPOSING, initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        want = compose("train", overrides=[*GYM_SCALE["train"], *(a for a in argv if a not in GYM_SCALE["train"]),
                                           *TASK]).rl.args
    # speed settings, not method ones: buckets and shared prompts give the same log-probs (float rounding aside)
    keys = [k for k in OmegaConf.load(ROOT / "conf" / "rl" / "gym_cpu.yaml").args.keys()
            if k not in ("length_bucket_rows", "share_prompts")]
    got = json.loads((d / "run_config.json").read_text())["config"]["rl"]["args"]
    return all(got.get(k) == want[k] for k in keys)


class Ran(NamedTuple):
    """What ``run_all`` ran: the calls' rows in order, the rows of the calls ``then`` queued, and how many of all
    these runs it trained (the rest were finished runs, reused)."""

    rows: list
    later: list
    trained: int


def run_all(plan: Plan, calls: list[tuple], then=None, after: int | None = 0) -> Ran:
    """``train_run(*call)`` for every call, ``plan.jobs`` at a time. ``then``, given, is called with call ``after``'s
    row once it is done (None when there is no such call) and returns more calls, queued behind these (no core waits
    for a phase's last run)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, plan.jobs)) as pool:  # each run is its own process: threads only wait
        futures = [pool.submit(_train_run, *c) for c in calls]
        later = []
        if then is not None:
            first = futures[after].result()[0] if after is not None and after < len(futures) else None
            later = [pool.submit(_train_run, *c) for c in then(first)]
        done, queued = [f.result() for f in futures], [f.result() for f in later]
    return Ran([r for r, _ in done], [r for r, _ in queued], sum(t for _, t in done + queued))


def budget_series(d: Path) -> dict | None:
    """A budget run's loop, every dual update (``metrics.jsonl``): the step, the measured cost, the price λ the batch
    paid; None for a run without ``rl.budget``."""
    from thinkless.reporting.monitor import read_metrics

    recs = [r for r in read_metrics(d / "metrics.jsonl") if "budget/cost" in r]
    return {"step": [r["step"] for r in recs], "cost": [r["budget/cost"] for r in recs],
            "multiplier": [r["budget/multiplier"] for r in recs]} if recs else None


def summarize_run(d: Path) -> dict:
    """A finished run's numbers, read from what train.py wrote (the pipeline report, metrics.jsonl)."""
    from thinkless.oracle import mean_over_problems
    from thinkless.reporting.monitor import read_metrics

    res = json.loads((d / "train_result.json").read_text())
    rep = res["report"]
    after = json.loads((d / "report_after_rl.json").read_text())
    rows = after.get("per_group") or after["per_level"]
    mean = lambda k: mean_over_problems([r[k] for r in rows.values()], [r["n"] for r in rows.values()])  # noqa: E731
    args = json.loads((d / "run_config.json").read_text())["config"]["rl"]["args"]
    # completions per rollout batch (TRL's generation_batch_size, one process): the completion metrics are logged once
    # per rollout, which feeds steps_per_generation optimizer steps (a recipe's k; the shared arm's 1)
    per_rollout = args.get("generation_batch_size") or args["per_device_train_batch_size"] * (
        args.get("steps_per_generation") or args.get("gradient_accumulation_steps", 1))
    records = read_metrics(d / "metrics.jsonl")
    lines = [r for r in records if "completions/mean_length" in r]
    return {"reward": rep["reward_rl"], "oracle_reward": rep["reward_oracle"], "acc": rep["overall_acc_rl"],
            "forced_think_acc": rep["overall_acc_forced_think"], "tokens": mean("free_tokens"),
            "think_ratio": mean("free_think_ratio"),
            "classes": {k: {"think_ratio": v["think_ratio"], "oracle": v["oracle"], "acc": v["acc"],
                            "reward": v["reward"]} for k, v in rep["levels"].items()},
            "targets": rep.get("targets", {}),
            "rollout_tokens": int(sum(r["completions/mean_length"] * per_rollout for r in lines)),
            "step_times": [r["step_time"] for r in records if "step_time" in r],  # every optimizer step's
            "train_s": res.get("train_seconds"), "threshold": rep.get("threshold", []),
            "budget": res.get("budget"),  # rl.budget's card (final multiplier, last cost), None without one
            "budget_series": budget_series(d)}


# ------------------------------------------------------------------ results


def spread(xs) -> tuple[float, float]:
    """(mean, sample sd) of the finite values, NaN when none: thinkless.evaluation.seeds.spread as a pair."""
    from thinkless.evaluation.seeds import spread as seed_spread

    s = seed_spread(list(xs))
    return (float("nan"), float("nan")) if s["n"] == 0 else (s["mean"], s["sd"])


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t with ``dof`` (a positive integer) degrees of freedom, p in (0.5, 1): bisection
    on its closed-form CDF for integer dof (Abramowitz & Stegun 26.7.3-4); no SciPy in this project.
    ``t_quantile(0.975, 2)`` = 4.303."""
    if isinstance(dof, bool) or not isinstance(dof, int) or dof < 1 or not 0.5 < p < 1:
        raise ValueError(f"t_quantile({p}, {dof}): a probability in (0.5, 1) and a positive integer dof are expected")

    def central(t):  # P(|T| <= t)
        th = math.atan(t / math.sqrt(dof))
        c2, term, total = math.cos(th) ** 2, 1.0, 1.0
        if dof % 2 == 0:  # sin θ (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + ...), dof/2 terms
            for j in range(1, dof // 2):
                term *= c2 * (2 * j - 1) / (2 * j)
                total += term
            return math.sin(th) * total
        if dof == 1:
            return 2 * th / math.pi
        for j in range(1, (dof - 1) // 2):  # 2/π (θ + sin θ cos θ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + ...))
            term *= c2 * (2 * j) / (2 * j + 1)
            total += term
        return 2 / math.pi * (th + math.sin(th) * math.cos(th) * total)

    lo, hi = 0.0, 1.0
    while central(hi) < 2 * p - 1:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if central(mid) < 2 * p - 1 else (lo, mid)
    return (lo + hi) / 2


def interval(xs) -> dict:
    """Mean, sample sd, n and the 95% interval's half-width over seeds of the finite values of ``xs``: Student t
    with n − 1 degrees of freedom, ``t_0.975,n−1 · sd / √n``. One value has no interval (``ci95`` None); none: every
    number None. What the gym's leaderboard reports and its rank groups compare (docs/gym.md)."""
    from thinkless.evaluation.seeds import spread as seed_spread

    s = seed_spread(list(xs))
    n = s["n"]
    return {**s, "ci95": t_quantile(0.975, n - 1) * s["sd"] / math.sqrt(n) if n > 1 else None}


def fmt_interval(s: dict, spec="{:.3f}") -> str:
    """An ``interval`` as a cell: mean ± the 95% interval's half-width (one seed: the mean and "no interval")."""
    if s["n"] == 0:
        return "-"
    return spec.format(s["mean"]) + (f" ± {spec.replace('+', '').format(s['ci95'])}" if s["n"] > 1
                                     else " (1 seed: no interval)")


def fmt(xs, spec="{:.3f}", ci: bool = False) -> str:
    """A cell over seeds: mean ± sd, or with ``ci`` mean ± the 95% interval's half-width (``interval``; one seed:
    the mean and "no interval")."""
    if ci:
        return fmt_interval(interval(xs), spec)
    m, s = spread(xs)
    return spec.format(m) + (f" ± {spec.replace('+', '').format(s)}" if len(xs) > 1 else "")


def rank_groups(stats: dict) -> dict:
    """Rank groups over ``interval`` results ``{label: {"mean", "ci95", ...}}`` (higher is better): the best
    unranked label leads the next group, and every unranked label whose interval overlaps the leader's joins it;
    repeat. So a label is "ahead" of another only where their intervals separate. A label without an interval
    (one seed) overlaps every other (nothing is separated from it); one without a mean comes last, alone.
    Returns ``{label: group}``, groups from 1."""
    def bounds(s):
        h = math.inf if s["ci95"] is None else s["ci95"]
        return s["mean"] - h, s["mean"] + h

    known = sorted((k for k, s in stats.items() if s["mean"] is not None), key=lambda k: -stats[k]["mean"])
    out, group = {}, 0
    for lead in known:
        if lead in out:
            continue
        group += 1
        lo, hi = bounds(stats[lead])
        for k in known:
            if k not in out and bounds(stats[k])[1] >= lo and bounds(stats[k])[0] <= hi:
                out[k] = group
    for k in stats:
        if k not in out:
            group += 1
            out[k] = group
    return out


def class_name(k: str) -> str:
    from thinkless.tasks.base import get_task

    return get_task("graded").split_name(k)  # the gym's task (TASK)


def command_line(script: str) -> str:
    """How this invocation of ``script`` was called (the results name it), with the thread setting if the
    environment set one."""
    env = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if os.environ.get("OMP_NUM_THREADS") else ""
    return f"{env}python {script} {' '.join(sys.argv[1:])}".rstrip()


def git_commit() -> str:
    """HEAD's short commit, ``+dirty`` when tracked files differ from it (the results then describe no commit exactly)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (head or "unknown") + ("+dirty" if dirty else "")


def trained_at(rows: list[dict]) -> str:
    """Which commits trained ``rows`` (a rerun reuses finished runs, so one table can hold runs of several): "" when
    all ran at this one, else the sentence the results add after their command."""
    here = git_commit()
    ran = sorted({r["commit"] for r in rows if r.get("commit")})
    older = sum(1 for r in rows if not r.get("commit"))
    if not older and ran in ([], [here]):
        return ""
    parts = [f"{sum(1 for r in rows if r.get('commit') == c)} at {c}" for c in ran]
    parts += [f"{older} before the runs recorded their commit"] if older else []
    return f" Runs trained at: {'; '.join(parts)}."


def write_results(out: Path, name: str, text: str, data: dict) -> None:
    """``out/name.md`` (``text``) and ``out/name.json``: ``data`` after the commit, the machine and the command that
    measured it (the running script's command line)."""
    script = Path(sys.argv[0]).resolve()
    command = command_line(script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0])
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps({"commit": git_commit(), "machine": machine(), "command": command,
                                                  **data}, indent=2))
    log(f"wrote {out / (name + '.md')} and {name}.json")


# ------------------------------------------------------------------ the fold task's level-1 table

def l1_short_sampled(model_dir: Path, seed: int, samples: int = 4) -> float:
    """How often the distilled model's level-1 short answer is right when sampled as RL samples it (T = 1, top-p 1):
    every one of the task's 100 level-1 problems (its whole table), ``samples`` times each, after a prefilled
    ``<short>``, graded strictly. Greedy, the distill report reads the table's argmax; RL's level-1 choice rests on
    this: a short answer that is right about half the time pays what a think trace pays at γ 0.9."""
    from thinkless.format import render_prompt
    from thinkless.generation import SamplingConfig, make_generator
    from thinkless.grading import grade
    from thinkless.modeling import load_checkpoint
    from thinkless.tasks.fold import FoldProblem
    from thinkless.tokens import SHORT

    model, tok = load_checkpoint(model_dir)
    problems = [FoldProblem((a, b)) for a in range(10) for b in range(10)]
    gen = make_generator("hf", model=model, tokenizer=tok, batch_size=512)
    outs = gen.generate([render_prompt(tok, p.prompt) + SHORT for p in problems],
                        SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=16, n=samples, seed=seed))
    right = [grade(SHORT + c.text, p.answer) for p, o in zip(problems, outs) for c in o]
    return sum(right) / len(right)


LEAVE_WINDOW = 10  # "level 1 leaves <think> at step": the first step whose 10-step mean think ratio is below 0.5


def leaves_think_at(metrics: list[dict], level: str = "L1") -> int | None:
    """The first step at which ``level``'s think ratio, averaged over the last ``LEAVE_WINDOW`` steps that sampled it,
    is below 0.5 (None: never)."""
    seen = []
    for r in metrics:
        v = r.get(f"modes/think_ratio_{level}")
        if v is None or "eval_modes/think_ratio" in r:
            continue
        seen.append(v)
        if len(seen) >= LEAVE_WINDOW and sum(seen[-LEAVE_WINDOW:]) / LEAVE_WINDOW < 0.5:
            return int(r["step"])
    return None


def rl_outcome(run: Path) -> dict:
    """A finished train.py run's outcome against the oracle, from its pipeline report and per-step log: per level the
    oracle's mode, the think ratio, accuracy and E[r]; overall E[r] (and the oracle's), accuracy (and forced
    think's), the three targets, and the step level 1 leaves ``<think>`` (the demo's and distill_table's rows)."""
    from thinkless.reporting.monitor import read_metrics

    rep = json.loads((run / "pipeline_report.json").read_text())
    return {"levels": {lv: {k: v[k] for k in ("oracle", "think_ratio", "acc", "reward")}
                       for lv, v in rep["levels"].items()},
            "reward": rep["reward_rl"], "reward_oracle": rep["reward_oracle"], "acc": rep["overall_acc_rl"],
            "acc_forced_think": rep["overall_acc_forced_think"], "targets": rep["targets"],
            "l1_leaves_think_at": leaves_think_at(read_metrics(run / "metrics.jsonl"))}


# ------------------------------------------------------------------ a served policy

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def vllm_serve(model, log, *args: str, timeout: int = 240):
    """`trl vllm-serve` of ``model`` on vLLM's CPU build (float32, eager, 256 tokens), ``args`` added, its output in
    ``log``: yields its URL once /health answers, stops it on exit. One owner for a server's start and stop (tests
    and benches)."""
    import requests

    port = free_port()
    trl = os.path.join(os.path.dirname(sys.executable), "trl")
    cmd = [trl, "vllm-serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port), "--dtype",
           "float32", "--enforce_eager", "--max_model_len", "256", "--gpu_memory_utilization", "0.1", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}  # the CPU engine shares 2 cores
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"trl vllm-serve exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            raise RuntimeError(f"trl vllm-serve not healthy after {timeout} s:\n{log.read_text()[-4000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
