"""Stage 2, RL: teaches the distilled student *when* to think with any registered objective (``objective=NAME``;
DeGRPO, ``thinkless``, by default). ``train.py`` is its entry point: it checks with ``check_train``, starts the stage,
trains with ``run_train`` and publishes with ``thinkless.reporting.publish.publish_train``."""

from __future__ import annotations

import logging
import math
import os
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import DictConfig

from ..checkpoints import save_final_model
from .budget import Budget, make_budget, probe_rows
from .buckets import check_rotary
from .shared_prompts import check_scoring
from ..runs.checks import ConfigError, warn
from ..tasks.base import get_task
from ..tasks.data import DropStats, check_drop_share, load_rows, parse_level, records_from_rows
from ..evaluation.benchmarks import load_benchmark
from ..format import messages, render_prompt
from ..generation import gpu_visible, make_generator, resolve_backend
from ..grading import gold_is_gradable, is_exact
from ..reporting.hub import base_model_id, card_metadata, check_hub, hub_callbacks, hub_datasets
from ..modeling import check_model_path, load_checkpoint
from ..reporting.monitor import RL_KEYS, MetricsLogCallback
from ..objectives import Objective, PrepareContext, make_objective
from ..runs.fingerprint import model_stamp
from .loop import Trained, train, trainer_args
from .vllm_cpu import check_cpu_args, use_cpu_weight_sync

logger = logging.getLogger(__name__)

RL_SOURCES = ("synthetic", "math")


def rl_prompts(data_cfg, stats: DropStats, *, instruction: str | None = None, system: str | None = None,
               validation: bool = False, tokenizer=None, objective: Objective | None = None,
               seed: int = 0) -> list[dict]:
    """RL rows ``{prompt: [messages], answer, task, level, problem_class}`` (``problem_class``: -1 none; ``task``: the
    grading kind, ``Task.grading``); ungradable gold answers are dropped and counted, and so
    are prompts longer than ``data_cfg.max_prompt_tokens`` (rendered with ``tokenizer``'s chat template).

    ``validation``: read ``data_cfg.validation`` (a benchmark config) instead of the training source.
    ``objective``: its ``prompt_extra`` (if any) is drawn once per row, from a stream of ``seed`` (one for training,
    another for validation), its text appended to the user turn (measured by ``max_prompt_tokens`` too) and its
    number kept in the row's ``target`` column.
    """
    if validation:
        bench = load_benchmark("validation", data_cfg.validation, data_dir=data_cfg.get("data_dir"))
        recs = [{"problem": p.problem, "answer": p.answer, "level": p.level, "problem_class": p.problem_class,
                 "task": bench.task} for p in bench.problems]
    elif data_cfg.source == "synthetic":
        task = get_task(data_cfg.get("variant", "fold"), key="rl_data.variant", generated=True)
        probs = task.make_problems(data_cfg.num_problems, list(data_cfg.levels), data_cfg.seed,
                                   data_cfg.get("level_weights"))
        recs = [{"problem": task.prompt(p), "answer": task.gold(p), "level": task.level(p),
                 "problem_class": task.problem_class(p), "task": task.grading()} for p in probs]
    elif data_cfg.source == "math":
        rows = load_rows(data_cfg.name, split=data_cfg.get("split", "train"), limit=data_cfg.get("limit"),
                         stats=stats, fields=dict(data_cfg.fields))
        recs = records_from_rows(rows, dict(data_cfg.fields), stats, require_answer=True, what="rl_data.fields")
        for r in recs:
            r["task"] = get_task("math").grading()
    else:
        raise ValueError(f"rl_data.source={data_cfg.source!r}: valid choices are {RL_SOURCES}")
    out = []
    limit = data_cfg.get("max_prompt_tokens")
    if limit and tokenizer is None:
        raise ValueError("rl_data.max_prompt_tokens needs the tokenizer to measure prompts")
    rng = random.Random(f"{seed}/{'validation' if validation else 'train'}")  # the extras' own streams
    gradable = [gold_is_gradable(r["answer"], exact=is_exact(r["task"])) for r in recs]
    ungradable = [r for r, ok in zip(recs, gradable) if not ok]
    if ungradable:
        stats["unparseable_gold"] += len(ungradable)
    # the bad-row limit: golds the grader cannot read get no reward; many mean a wrong rl_data.fields.answer
    check_drop_share("rl_data" if not validation else "rl_data.validation", len(recs) - len(ungradable),
                     {"unparseable_gold": len(ungradable)},
                     example=f"answer {ungradable[0]['answer']!r} of {ungradable[0]['problem'][:80]!r}" if ungradable
                     else "", hint="Is rl_data.fields.answer the gold answer's field?")
    for r, ok in zip(recs, gradable):
        if not ok:
            continue
        extra = objective.prompt_extra(rng) if objective is not None else None
        suffix = extra[1] if extra else ""
        if limit and len(tokenizer(render_prompt(tokenizer, r["problem"], instruction=instruction, system=system,
                                                 suffix=suffix), add_special_tokens=False)["input_ids"]) > limit:
            stats["prompt_too_long"] += 1
            continue
        out.append({"prompt": messages(r["problem"], instruction=instruction, system=system, suffix=suffix),
                    "problem": r["problem"],
                    "answer": str(r["answer"]) if not isinstance(r["answer"], list) else r["answer"],
                    "task": r["task"], "level": parse_level(r.get("level")),
                    "problem_class": -1 if r.get("problem_class") is None else int(r["problem_class"]),
                    **({"target": float(extra[0])} if extra else {})})
    stats["kept"] += len(out)
    return out


def probe_prompts(rows: list[dict], budget: Budget | None, seed: int) -> list | None:
    """The prompts ``rl.budget``'s probe reads its think ratio on (None: no probe): ``budget.probe`` training rows
    (``budget.probe_rows``, drawn by the seed), their own prompts — with the objective's per-prompt text where it
    has one (L1's stated budget), as the report after RL asks (``benchmarks.stated``), so the loop steers the think
    ratio the report then measures."""
    if budget is None or not budget.probe:
        return None
    return [rows[i]["prompt"] for i in probe_rows(len(rows), budget.probe, seed)]


def skip_unused_vllm_import(cfg: DictConfig) -> bool:
    """A run that does not use vLLM does not import it. TRL imports vLLM with its trainer whenever vLLM is installed
    (``trl.generation``: 6 of the 16 s a ``train.py`` start took on a 2-core CPU machine), used or not. For a fresh
    process only (``train.py``), before anything imports TRL: the rest of that process then sees vLLM as absent."""
    if cfg.rl.args.get("use_vllm", False) or "trl.generation" in sys.modules:
        return False
    from trl import import_utils

    import_utils.is_vllm_available = lambda min_version=None: False
    return True


def check_vllm(args) -> None:
    """``use_vllm=True`` runs vLLM or fails saying why, before any work (never a silent fallback to HF): TRL
    generates, but whether vLLM can run is ``generation.resolve_backend``'s one decision."""
    resolve_backend("vllm", asked="rl.args.use_vllm=true", instead="rl.args.use_vllm=false")
    if not gpu_visible():
        check_cpu_args(args.vllm_mode, args.vllm_enable_sleep_mode)


RENAMED = {k: f"objective.{k}" for k in ("alpha", "decoupled", "response_norm", "rewards", "reward_schedule")}


def objective_from(cfg: DictConfig) -> Objective:
    """The run's objective (``objective=NAME``), checked before any work; keys that moved to it are named."""
    moved = sorted(k for k in RENAMED if k in cfg.rl)
    if moved:
        raise ValueError(f"{', '.join('rl.' + k for k in moved)} moved to the objective: use "
                         f"{', '.join(RENAMED[k] for k in moved)} (objective=grpo for rl.decoupled=false)")
    objective = make_objective(cfg.objective)
    both = sorted(set(objective.trl_overrides()) & set(cfg.rl.args))
    if both:
        raise ValueError(f"{', '.join('rl.args.' + k for k in both)}: set by objective={objective.name} (its "
                         f"{', '.join('objective.' + k for k in both)}); remove it from rl.args")
    return objective


def budget_from(cfg: DictConfig, objective: Objective) -> Budget | None:
    """The run's ``rl.budget`` (None: unconstrained), checked before any work."""
    args = cfg.rl.get("args") or {}
    accum = args.get("gradient_accumulation_steps") or 1
    per_update = (args.get("num_iterations") or 1) * (args.get("steps_per_generation") or accum) / accum
    scale = args.get("scale_rewards", "group")  # TRL's default, and its booleans' meaning
    scale = {True: "group", False: "none"}.get(scale, scale)
    return make_budget(cfg.rl.get("budget"), objective=objective, max_steps=args.get("max_steps", -1),
                       max_completion_length=args.get("max_completion_length"), steps_per_update=per_update,
                       adam_beta1=args.get("adam_beta1", 0.9),
                       standardised=objective.standardises_groups(SimpleNamespace(scale_rewards=scale)),
                       num_generations=int(args.get("num_generations") or 8))  # TRL's default G


RECIPE_BATCH_KEYS = ("prompts_per_rollout", "prompts_per_step", "processes")


def global_batch(args, processes: int) -> dict:
    """The global batch of ``rl.args`` on ``processes`` training processes, as TRL forms it: completions and prompts
    per rollout (generation batch) and per optimizer step."""
    pd, G = int(args.get("per_device_train_batch_size") or 8), int(args.get("num_generations") or 8)
    accum = int(args.get("gradient_accumulation_steps") or 1)
    gen = args.get("generation_batch_size")  # TRL: set directly, or per-device x processes x steps_per_generation
    spg = int(gen) // (pd * processes) if gen else int(args.get("steps_per_generation") or accum)
    rollout, step = pd * processes * spg, pd * processes * accum
    return {"processes": processes, "per_device": pd, "generations": G, "accumulation": accum,
            "steps_per_generation": spg, "rollout_completions": rollout, "step_completions": step,
            "prompts_per_rollout": rollout / G, "prompts_per_step": step / G}


def restore_batch(b: dict, rollout_prompts: int, step_prompts: int) -> str | None:
    """The ``rl.args`` overrides that give ``rollout_prompts`` / ``step_prompts`` on ``b``'s processes (the per-device
    batch kept if it can be, else the largest one that divides), or None when no per-device batch can."""
    P, G = b["processes"], b["generations"]
    rollout, step = rollout_prompts * G, step_prompts * G
    for pd in [b["per_device"], *range(b["per_device"] - 1, 0, -1)]:
        if rollout % (P * pd) == 0 and step % (P * pd) == 0:
            keep = "" if pd == b["per_device"] else f"rl.args.per_device_train_batch_size={pd} "
            return (f"{keep}rl.args.gradient_accumulation_steps={step // (P * pd)} "
                    f"rl.args.steps_per_generation={rollout // (P * pd)}  ({P} x {pd} x {step // (P * pd)} = "
                    f"{step} completions = {step_prompts} prompts x {G} per optimizer step; {P} x {pd} x "
                    f"{rollout // (P * pd)} = {rollout} = {rollout_prompts} x {G} per rollout)")
    return None


def check_global_batch(cfg: DictConfig, processes: int | None = None, *, is_main: bool = True) -> dict:
    """States the global batch the run will roll out and, when it differs from the recipe's declared one
    (``recipe_batch``, set by +experiment=degrpo / adaptthink), warns with the overrides that restore it. Before any
    work: ``processes`` defaults to the launcher's ``WORLD_SIZE``; the main process says it."""
    P = int(processes or os.environ.get("WORLD_SIZE", "1"))
    b = global_batch(cfg.rl.args, P)
    say = (f"RL global batch: {P} process{'es' if P > 1 else ''} x per_device_train_batch_size {b['per_device']} x "
           f"steps_per_generation {b['steps_per_generation']} = {b['rollout_completions']} completions = "
           f"{b['prompts_per_rollout']:g} prompts x {b['generations']} generations per rollout; x "
           f"gradient_accumulation_steps {b['accumulation']}: {b['step_completions']} completions = "
           f"{b['prompts_per_step']:g} prompts per optimizer step")
    if is_main:
        logger.info(say)
        print(say, flush=True)
    recipe = cfg.get("recipe_batch")
    if not recipe:
        return b
    for k in RECIPE_BATCH_KEYS:
        v = recipe.get(k)
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            raise ConfigError(f"recipe_batch.{k}={v!r}: a whole number >= 1 is expected (the recipe's intended global "
                              f"batch: {', '.join('recipe_batch.' + x for x in RECIPE_BATCH_KEYS)})")
    want = (recipe.prompts_per_rollout, recipe.prompts_per_step)
    if (b["prompts_per_rollout"], b["prompts_per_step"]) != want and is_main:
        fix = restore_batch(b, *want) or (f"no per-device batch divides {want[0]} x {b['generations']} completions "
                                          f"over {P} processes; use a process count that does")
        warn("recipe_batch", f"{want[0]}/{want[1]} prompts per rollout/step",
             f"the recipe is written for {want[0]} prompts per rollout and {want[1]} per optimizer step on "
             f"{recipe.processes} processes; this run has {P} and rolls out {b['prompts_per_rollout']:g} prompts per "
             f"rollout and {b['prompts_per_step']:g} per optimizer step, so its optimizer steps, their noise and the "
             f"schedule's meaning differ from the recipe's. To restore it on {P}: {fix}")
    return b


def card_info(cfg: DictConfig, objective: Objective) -> dict:
    """Model-card fields known before training (steps and mode usage are added at the end). ``base_model`` and
    ``datasets`` are Hub ids only (``thinkless.reporting.hub.base_model_id``): a local path never reaches the card."""
    hub, d = cfg.get("hub") or {}, cfg.rl_data
    base = base_model_id(cfg.model.path, hub.get("base_model"))
    if d.source == "synthetic":
        data = get_task(d.get("variant", "fold"), key="rl_data.variant", generated=True).describe()
    else:
        data = f"`{d.name}`" if hub_datasets(d.name) else "a local file (not a Hub dataset)"
    # the warm-up's own data too: the weights were trained on both
    warmup = card_metadata(cfg.model.path) if Path(str(cfg.model.path)).is_dir() else {}
    return {"name": cfg.get("run_name"), "base_model": base,
            "base": None if base else "a local model with no known Hub id (hub.base_model=org/name names it)",
            "data": data, "datasets": hub_datasets(d.get("name") if d.source != "synthetic" else None,
                                                   *(warmup.get("datasets") or [])),
            "license": hub.get("license"), "loss": objective.label(),
            "objective": {"name": objective.name, **objective.knobs()}}


def check_train(cfg: DictConfig) -> tuple[Objective, Budget | None]:
    """What ``train.py`` checks before the stage starts (before any work): the model path, the Hub settings, the
    objective, the budget and the report's think ratios. Returns the run's objective and budget."""
    check_model_path(cfg.model.path)
    check_hub(cfg.get("hub"))
    rows = cfg.rl.args.get("length_bucket_rows") or 0
    check_scoring(rows, cfg.rl.args.get("share_prompts"))
    if isinstance(rows, int) and rows > 0:  # the model's config only (a json file): before anything loads
        from transformers import AutoConfig

        check_rotary(AutoConfig.from_pretrained(str(cfg.model.path)), "rl.args.length_bucket_rows", rows)
    objective = objective_from(cfg)
    budget = budget_from(cfg, objective)
    for i, r in enumerate(cfg.report.get("threshold_think_ratios") or []):
        if isinstance(r, (int, float)) and not 0 <= r <= 1:
            raise ValueError(f"report.threshold_think_ratios[{i}]={r}: a think ratio in [0, 1] is expected")
    return objective, budget


def run_train(cfg: DictConfig, stage, objective: Objective, budget: Budget | None) -> Trained:
    """DeGRPO (or ``objective``'s loss) from ``model.path``, inside the stage ``train.py`` started (``stage``: its
    output folder, rank, the rerun's recorded changes): the final policy saved to ``<output_dir>/model``, and what the
    publish step needs (``Trained``)."""
    from datasets import Dataset  # datasets is slow to import: only once a run trains

    check_global_batch(cfg, is_main=stage.is_main)  # after start_stage (it resets warnings), before the model loads
    objective.warn_if_odd(warn)
    from .trainer import AdaptiveGRPOConfig, AdaptiveGRPOTrainer  # after start_stage: TRL imports vLLM (it logs)
    model, tok = load_checkpoint(cfg.model.path, dtype=cfg.model.get("dtype", "auto"))
    stats = DropStats()
    rows = rl_prompts(cfg.rl_data, stats, instruction=cfg.prompt.instruction, system=cfg.prompt.system, tokenizer=tok,
                      objective=objective, seed=cfg.seed)
    logger.info("RL prompts: %s", stats.summary())
    if not rows:
        raise RuntimeError(f"no RL prompts left after filtering: {stats.summary()}")
    val_rows, no_val = None, {}
    if cfg.rl_data.get("validation") is None or cfg.rl.args.get("eval_strategy", "no") == "no":
        no_val = {"eval_strategy": "no", "eval_on_start": False}  # validation off: rl_data.validation=null
    else:
        val_stats = DropStats()
        val_rows = rl_prompts(cfg.rl_data, val_stats, instruction=cfg.prompt.instruction, system=cfg.prompt.system,
                              validation=True, tokenizer=tok, objective=objective, seed=cfg.seed)
        logger.info("validation prompts: %s", val_stats.summary())
    args = trainer_args(AdaptiveGRPOConfig, cfg.rl.args, stage,
                        grading_timeout=float(cfg.rl.get("grading_timeout", 5.0)), **objective.trl_overrides(),
                        **no_val)
    info = card_info(cfg, objective)
    if stage.changes:
        info["resumed_with_changes"] = stage.changes
    callbacks = [MetricsLogCallback(stage.out_dir, RL_KEYS, title=objective.label(), plot=True),
                 *hub_callbacks(cfg.get("hub"), info)]
    if args.use_vllm:
        check_vllm(args)
    trainer = AdaptiveGRPOTrainer(model=model, args=args, objective=objective, budget=budget,
                            probe_prompts=probe_prompts(rows, budget, args.seed),
                            train_dataset=Dataset.from_list(rows),
                            eval_dataset=Dataset.from_list(val_rows) if val_rows else None, processing_class=tok,
                            callbacks=callbacks)
    seen = [rows[i] for i in prompts_seen(trainer)] + (val_rows or [])
    # the pre-pass samples; training must not depend on whether it ran or found its cache: RNG state kept
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        objective.prepare(PrepareContext(seen, make_generator("hf", model=model, tokenizer=tok,
                                                              batch_size=cfg.report.batch_size), tok,
                                         model_stamp(cfg.model.path), args.max_completion_length, cfg.seed,
                                         cfg.prompt.instruction, cfg.prompt.system))
    if args.use_vllm and not gpu_visible():
        use_cpu_weight_sync(trainer)
    train_s = train(trainer)

    history = trainer.state.log_history
    result = {"data": dict(stats), "train_seconds": round(train_s, 1), "steps": trainer.state.global_step,
              "ungradable_gold_frac_at_reward": _weighted_mean(history, "rewards/ungradable_gold_frac")}
    final, final_model = save_final_model(trainer, tok, stage.out_dir / "model")  # every rank: ZeRO-3 gathers
    return Trained(result, final, final_model, tok, trainer.state.global_step, train_s, card=info, stats=stats,
                   objective=objective, budget=budget)


def prompts_seen(trainer) -> list[int]:
    """Indices of the training rows a run of ``args.max_steps`` optimizer steps draws, in order (TRL's sampler with
    the run's seed: the same order the trainer will see, resumed or not); every row if the run is set in epochs."""
    a, G = trainer.args, trainer.num_generations
    n = len(trainer.train_dataset)
    if a.max_steps is None or a.max_steps <= 0:
        return list(range(n))
    per_batch = a.generation_batch_size // G  # prompts of one generation batch
    steps_per_batch = trainer.num_iterations * a.steps_per_generation / a.gradient_accumulation_steps
    need = math.ceil(a.max_steps / steps_per_batch) * per_batch  # prompt draws, repeats across epochs counted
    draws_per_prompt = G * trainer.num_iterations * a.steps_per_generation
    sampler = trainer._get_train_sampler()
    out, seen, drawn = [], set(), 0
    while drawn < need * draws_per_prompt and len(seen) < n:
        for i in sampler:
            if i not in seen:
                seen.add(i)
                out.append(i)
            drawn += 1
            if drawn >= need * draws_per_prompt or len(seen) == n:
                break
    return out


def _weighted_mean(history: list[dict], key: str) -> float | None:
    """Mean of a per-step rate over the run's log lines, each weighted by the steps it covers (resume-safe)."""
    tot = weight = 0.0
    prev = 0
    for rec in history:
        if key in rec and rec[key] is not None:
            w = max(1, rec["step"] - prev)
            tot, weight = tot + w * rec[key], weight + w
        if "step" in rec and key in rec:
            prev = rec["step"]
    return tot / weight if weight else None
