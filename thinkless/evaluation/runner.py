"""``eval.py`` and every other evaluation (the distill and pipeline reports): benchmarks x methods, resumable.

``evaluate`` is the one code path that generates, grades and tabulates; ``run_eval`` is ``eval.py``'s work inside
the stage that entry point runs, and ``thinkless.reporting.report`` calls ``evaluate`` with the report's methods.

Generations go to ``<output_dir>/generations/<benchmark>/<method>_n<N>_<fingerprint>.jsonl``, one line per problem,
appended (and fsynced) as each chunk of problems finishes. The fingerprint hashes everything that determines the
text (model files, prompt template, method prefill/budget, sampling settings), so a rerun with the same settings
resumes where it stopped, a changed setting starts a new file, and methods that sample the same thing share one
file (the three parallel-scaling selections read the same N samples). Scores are recomputed from the files on
every run, so grading changes never need regeneration.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import torch

from ..runs.checks import collected_warnings, warn
from ..runs.fingerprint import check_meta, fingerprint, model_stamp
from ..format import render_prompt
from ..generation import SamplingConfig, backend_of, make_generator, resolve_backend
from ..grading import GRADE_STATS, GRADING_POLICIES, Grader, is_exact
from ..checkpoints import CONTROL_TOKENS_KEY
from ..modeling import check_model_path, load_checkpoint, prepare_control_tokens
from ..reward import RewardValues, reward_values
from ..tokens import SHORT, THINK
from .benchmarks import BenchmarkData, load_benchmark
from .calibration import calibrate
from .methods import Method, base_method, resolve_methods, sample
from .metrics import LONG_SHORT_MULTIPLE, Graded, budget_adherence, summarize
from .tables import format_tables

logger = logging.getLogger(__name__)

SMALL_MODEL_PARAMS = 50_000_000  # threads=null on a CPU: models below this run single-threaded


# ------------------------------------------------------------------ generations on disk


class GenerationStore:
    """One JSONL file of finished problems (``uid`` -> row); a torn last line (a kill mid-write) is dropped."""

    def __init__(self, path: Path, meta: dict | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, dict] = {}
        self.repaired = 0
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):  # interrupted while writing its last line
                cut = data.rfind(b"\n") + 1
                with open(self.path, "r+b") as f:
                    f.truncate(cut)
                data = data[:cut]
                self.repaired += 1
            for line in data.decode().splitlines():
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.rows[row["uid"]] = row
                except (json.JSONDecodeError, KeyError):
                    self.repaired += 1
        if meta is not None:  # the settings that made the file: a mismatch (or no record) stops, never mixes
            check_meta(self.path.with_suffix(".meta.json"), meta, what=f"generation file {self.path}",
                       data_exists=bool(self.rows) or self.repaired > 0,
                       hint="Move it (and its .meta.json) away to generate again, or use another output_dir.")

    def append(self, rows: list[dict]) -> None:
        with open(self.path, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
            f.flush()
            os.fsync(f.fileno())
        for r in rows:
            self.rows[r["uid"]] = r


# ------------------------------------------------------------------ settings


def bench_settings(cfg: DictConfig, name: str) -> dict:
    """What a benchmark overrides of the run's settings: instruction, max_new_tokens, batch_size."""
    b = cfg.benchmark[name]
    return {
        "instruction": b.get("instruction") if b.get("instruction") is not None else cfg.prompt.instruction,
        "max_new_tokens": int(b.get("max_new_tokens") or cfg.sampling.max_new_tokens),
        "batch_size": int(b.get("batch_size") or cfg.generation.batch_size),
    }


def sampling_config(s, max_new_tokens: int | None = None) -> SamplingConfig:
    out = SamplingConfig(temperature=float(s.temperature), top_p=float(s.top_p),
                         max_new_tokens=int(max_new_tokens or s.max_new_tokens), n=int(s.n), seed=int(s.seed))
    if out.temperature < 0 or not 0 < out.top_p <= 1 or out.n < 1 or out.max_new_tokens < 1:
        raise ValueError(f"sampling settings out of range: {out} (temperature >= 0, 0 < top_p <= 1, n >= 1, "
                         "max_new_tokens >= 1)")
    return out


def validate_benchmarks(cfg: DictConfig) -> list[str]:
    valid = sorted(cfg.benchmark.keys())
    names = list(cfg.benchmarks or [])
    if not names:
        raise ValueError(f"benchmarks is empty: choose from {valid}")
    for n in names:
        if n not in cfg.benchmark:
            raise ValueError(f"unknown benchmark {n!r}: valid choices are {valid} (or add one: "
                             f"+benchmark@benchmark.{n}=custom benchmark.{n}.path=<file>)")
    return names


def fit_context(generator, tokenizer, bench: BenchmarkData, prompts: list[str], max_new_tokens: int) -> int:
    """Make the benchmark fit the model's context: problems whose prompt alone fills it are dropped (counted as
    ``prompt_too_long``), and ``max_new_tokens`` is capped to what the longest remaining prompt leaves (warned)."""
    ctx = getattr(generator, "context_length", None)
    if not ctx or not prompts:
        return max_new_tokens
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    keep = [n < ctx for n in lengths]
    if not all(keep):
        logger.warning("%s: %d problems have prompts of >= %d tokens, the model's context: dropped (counted as "
                       "prompt_too_long)", bench.name, keep.count(False), ctx)
        bench.dropped["prompt_too_long"] += keep.count(False)
        bench.problems[:] = [p for p, k in zip(bench.problems, keep) if k]
        if not bench.problems:
            raise ValueError(f"{bench.name}: every prompt is longer than the model's context ({ctx} tokens)")
    room = ctx - max(n for n, k in zip(lengths, keep) if k)
    if max_new_tokens > room:
        logger.warning("%s: max_new_tokens %d does not fit the model's context of %d tokens with the longest "
                       "prompt: capped to %d", bench.name, max_new_tokens, ctx, room)
        return room
    return max_new_tokens


# ------------------------------------------------------------------ generation and grading


def generate_all(generator, tokenizer, bench: BenchmarkData, method: Method, n: int, sampling: SamplingConfig,
                 store: GenerationStore, *, instruction: str | None, system: str | None, chunk_size: int,
                 progress: bool = True, self_certainty: bool = False, memo: dict | None = None) -> int:
    """Generate the problems ``store`` lacks, chunk by chunk (fixed chunk boundaries, one seed per chunk).

    Returns the number of problems generated now (0 when everything was on disk already).
    """
    from tqdm.auto import tqdm

    todo = [p for p in bench.problems if p.uid not in store.rows]
    if not todo:
        return 0
    chunks: dict[int, list] = {}
    for p in todo:
        chunks.setdefault(p.index // chunk_size, []).append(p)
    bar = tqdm(total=len(bench.problems), initial=len(bench.problems) - len(todo), disable=not progress,
               desc=f"{bench.name}/{method.name} x{n}", unit="problem")
    done = 0
    try:
        for c, probs in chunks.items():
            prompts = [render_prompt(tokenizer, p.problem, instruction=instruction, system=system, suffix=p.suffix,
                                     **({"token_budget": method.token_budget} if method.token_budget else {}))
                       for p in probs]
            sc = SamplingConfig(**{**asdict(sampling), "n": n, "seed": sampling.seed * 100_003 + c,
                                   "self_certainty": self_certainty})
            t0 = time.perf_counter()
            samples = sample(generator, tokenizer, prompts, method, n, sc, memo)
            dt = time.perf_counter() - t0
            store.append([{"uid": p.uid, "index": p.index, "level": p.level, "problem": p.problem,
                           "answer": p.answer, "prompt": pr + method.prefill, "chunk": c,
                           "seconds": dt / len(probs), "samples": [s.to_json() for s in ss]}
                          for p, pr, ss in zip(probs, prompts, samples)])
            done += len(probs)
            bar.update(len(probs))
    finally:
        bar.close()
    return done


def graded_problems(bench: BenchmarkData, store: GenerationStore, mode: str, grader: Grader) -> list[dict]:
    """Every stored sample graded: the mode is the method's when fixed, else the response's control token."""
    out = []
    for p in bench.problems:
        row = store.rows.get(p.uid)
        if row is None:
            continue
        samples = []
        for s in row["samples"]:
            v = grader.grade(s["response"], p.answer)
            samples.append(Graded(v.correct, v.answer, v.mode if mode == "auto" else mode, s["tokens"],
                                  s["gen_tokens"], s["finished"], s.get("self_certainty")))
        out.append({"level": p.level, "problem_class": p.problem_class, "samples": samples, "seconds": row.get("seconds", 0.0)})
    return out


def evaluate(generator, tokenizer, benches: dict[str, BenchmarkData], method_names, method_cfgs, *,
             sampling: SamplingConfig, out_dir: str | Path, settings: dict[str, dict] | None = None,
             system: str | None = None, grading: str = "strict", timeout: float = 5.0, model: dict | None = None,
             chunk_size: int | None = None, ks=None, rewards=None, self_certainty: bool = False,
             long_short_multiple: float = LONG_SHORT_MULTIPLE,
             calibration: bool = False, progress: bool = True, reuse=()) -> dict:
    """Generate (resumably, under ``out_dir/generations``), grade and summarize every benchmark x method.

    ``settings[bench]`` may set ``instruction``, ``max_new_tokens`` and ``batch_size`` per benchmark; ``grading``
    is the policy for methods without their own; ``rewards`` (``RewardValues``) adds the expected Thinkless reward.
    ``reuse``: other output folders; a generation file of the same name there (same fingerprint: the same model,
    problems' source, prompt, method and sampling) is copied in before anything is generated (the pipeline report's
    before-RL columns are the distill report's generations).
    """
    if grading not in GRADING_POLICIES:
        raise ValueError(f"grading.policy={grading!r}: valid choices are {GRADING_POLICIES}")
    methods = resolve_methods(method_names, method_cfgs)
    out_dir = Path(out_dir)
    is_hf = backend_of(generator) == "hf"
    results: dict = {"benchmarks": {}}
    for bname, bench in benches.items():
        st = dict((settings or {}).get(bname) or {})
        instruction = st.get("instruction")
        prefill = max((base_method(m, method_cfgs).prefill for m in methods.values()), key=len)
        prompts = [render_prompt(tokenizer, p.problem, instruction=instruction, system=system, suffix=p.suffix,
                                 prefill=prefill) for p in bench.problems]
        max_new = fit_context(generator, tokenizer, bench, prompts, int(st.get("max_new_tokens") or
                                                                         sampling.max_new_tokens))
        bsampling = SamplingConfig(**{**asdict(sampling), "max_new_tokens": max_new})
        if is_hf and st.get("batch_size"):
            generator.batch_size = int(st["batch_size"])
        stores: dict[tuple, GenerationStore] = {}
        memo: dict = {}  # greedy continuations, shared by this benchmark's methods (methods.continue_texts)
        bres = {"source": bench.source, "n_problems": len(bench.problems), "dropped": dict(bench.dropped),
                "context_length": getattr(generator, "context_length", None),
                "settings": {"instruction": instruction, "system": system, "max_new_tokens": max_new,
                             "max_new_tokens_requested": int(st.get("max_new_tokens") or sampling.max_new_tokens),
                             "temperature": sampling.temperature, "top_p": sampling.top_p, "n": sampling.n},
                "methods": {}}
        for mname, m in methods.items():
            base = base_method(m, method_cfgs)
            if base.token_budget:
                check_token_budget(tokenizer, base)
            n = m.n if m.is_parallel else (m.n or bsampling.n)
            meta = {"benchmark": bname, "source": bench.source, "model": model, "system": system,
                    "instruction": instruction, "method": base.generation_fields(), "n": n,
                    "sampling": {"temperature": bsampling.temperature, "top_p": bsampling.top_p,
                                 "max_new_tokens": bsampling.max_new_tokens, "seed": bsampling.seed}}
            key = (base.name, n, fingerprint(meta))
            if key not in stores:
                path = out_dir / "generations" / bname / f"{base.name}_n{n}_{key[2]}.jsonl"
                copy_generations(path, [Path(r) / "generations" / bname / path.name for r in reuse],
                                 {p.uid for p in bench.problems})
                stores[key] = GenerationStore(path, meta)
                bs = generator.batch_size if is_hf else 256
                chunk = chunk_size or (max(1, bs // n) if is_hf else 256)
                t0 = time.time()
                made = generate_all(generator, tokenizer, bench, base, n, bsampling, stores[key],
                                    instruction=instruction, system=system, chunk_size=int(chunk),
                                    progress=progress, self_certainty=self_certainty, memo=memo)
                logger.info("%s/%s x%d: %d problems generated now, %d on disk (%.1fs) -> %s", bname, base.name, n,
                            made, len(stores[key].rows) - made, time.time() - t0, path)
            policy = m.grading or base.grading or grading
            grader = Grader(policy, exact=is_exact(bench.task), timeout=timeout)
            probs = graded_problems(bench, stores[key], base.mode, grader)
            metrics = summarize(probs, parallel=m.is_parallel, selection=m.selection, ks=ks, grader=grader,
                                rewards=rewards, long_short_multiple=long_short_multiple)
            if base.token_budget:
                metrics["token_budget"] = budget_adherence(probs, base.token_budget)
            metrics["grading"] = policy
            metrics["generations"] = str(stores[key].path)
            bres["methods"][mname] = metrics
        if calibration and hasattr(generator, "mode_log_odds"):
            bres["calibration"] = calibrate_benchmark(generator, tokenizer, bench, bres["methods"], methods,
                                                      instruction=instruction, system=system, rewards=rewards)
        results["benchmarks"][bname] = bres
    return results


def copy_generations(path: Path, sources: list[Path], uids: set[str]) -> None:
    """The first of ``sources`` that holds every one of ``uids`` (the benchmark's problems) and no other, with its
    settings record, copied to ``path`` when ``path`` has none (``GenerationStore`` then checks the record). The file
    name's fingerprint does not name the problems (a synthetic stream's seed, say): the uids do."""
    if path.exists():
        return
    for src in sources:
        meta = src.with_suffix(".meta.json")
        if not (src.is_file() and meta.is_file()):
            continue
        text = src.read_text()  # read once: the rows checked are the rows written
        if file_uids(text) == uids:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(meta, path.with_suffix(".meta.json"))
            path.write_text(text)
            logger.info("%s: copied from %s", path, src)
            return


def file_uids(text: str) -> set[str] | None:
    """The problems a generation file's text holds, read without repairing it (None: a torn or foreign line)."""
    try:
        return {json.loads(line)["uid"] for line in text.splitlines() if line.strip()}
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def check_token_budget(tokenizer, method: Method) -> None:
    """A requested token budget must reach the prompt: the model's chat template renders ``token_budget`` (a policy
    trained with ``objective=l1`` has it, ``objectives.l1.budget_template``); any other template would drop it
    silently and the run would measure the model without a budget."""
    q = "1 + 1"
    if render_prompt(tokenizer, q, token_budget=method.token_budget) == render_prompt(tokenizer, q):
        raise ValueError(f"method {method.name!r}: token_budget={method.token_budget} but the model's chat template "
                         "does not render a token budget (only a policy trained with objective=l1 takes one)")


def calibrate_benchmark(generator, tokenizer, bench: BenchmarkData, results: dict, methods: dict, *,
                        instruction, system, rewards) -> dict:
    """P(think) per level from the adaptive prompt's first-token distribution, beside what thinking buys (the
    run's forced-think and forced-short accuracies, when it has them), and the oracle threshold."""
    prompts = [render_prompt(tokenizer, p.problem, instruction=instruction, system=system, suffix=p.suffix)
               for p in bench.problems]
    z = generator.mode_log_odds(prompts)
    forced = {}
    for prefill, key in ((THINK, "think"), (SHORT, "short")):
        name = next((n for n, m in methods.items() if m.type == "prefill" and m.prefill == prefill
                     and not m.think_bias), None)
        forced[key] = None if name is None else results[name]
    by_level = None
    if forced["think"] and forced["short"]:
        pt, ps = forced["think"].get("per_level") or {}, forced["short"].get("per_level") or {}
        if pt and ps:
            by_level = {p.level: (pt[str(p.level)]["acc"], ps[str(p.level)]["acc"]) for p in bench.problems}
        else:
            by_level = {None: (forced["think"]["acc"], forced["short"]["acc"])}
    return calibrate(z, [p.level if by_level is None or None not in by_level else None for p in bench.problems],
                     by_level, rewards or RewardValues())


# ------------------------------------------------------------------ entry point


def load_generator(cfg: DictConfig):
    """(generator, tokenizer) of ``model_path`` on the backend ``generation.resolve_backend`` picks (the tokenizer
    and the control-token check differ: vLLM loads the weights itself, HF through ``modeling.load_checkpoint``)."""
    model_path = str(cfg.model_path)
    backend = resolve_backend(cfg.generation.backend, model_path=model_path)
    check_model_path(model_path, what="model", tokenizer=not cfg.get("tokenizer"))
    if backend == "vllm":
        from transformers import AutoConfig, AutoTokenizer  # transformers' import is slow: only on this path

        tok = AutoTokenizer.from_pretrained(cfg.get("tokenizer") or model_path)
        config = AutoConfig.from_pretrained(model_path)
        prepare_control_tokens(tok, config, what=model_path)
        warn_if_not_thinkless(model_path, config)
        v = cfg.generation.get("vllm") or {}
        gen = make_generator("vllm", tokenizer=tok, model_path=model_path, **dict(v))
        return gen, tok
    model, tok = load_checkpoint(model_path, dtype=cfg.get("dtype", "auto"), tokenizer=cfg.get("tokenizer"))
    warn_if_not_thinkless(model_path, model.config)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return make_generator("hf", model=model, tokenizer=tok, batch_size=int(cfg.generation.batch_size)), tok


def warn_if_not_thinkless(model_path: str, config) -> None:
    """A model that was never distilled (its config records no control tokens: ``checkpoints.CONTROL_TOKENS_KEY``)
    writes no mode token: a config warning, so it reaches ``results.json`` / ``results.md``, not only the log."""
    if not getattr(config, CONTROL_TOKENS_KEY, None):
        warn("model", model_path, "not a Thinkless model (never distilled: its config records no control tokens, "
             "which were added for this run with untrained embeddings): its responses start with neither <think> nor "
             "<short>, so 'auto' modes, think ratios and the calibration say nothing about a learned choice")


def check_eval(cfg: DictConfig) -> None:
    """What ``eval.py`` checks before the stage starts (before loading anything): benchmark and method names."""
    validate_benchmarks(cfg)
    resolve_methods(cfg.methods, cfg.method)


def run_eval(cfg: DictConfig, stage, *, generator=None, tokenizer=None) -> dict:
    """Run the configured evaluation inside the stage ``eval.py`` started (``stage``: its output folder and wandb
    run); ``generator``/``tokenizer`` replace the model (tests, notebooks). Writes ``results.md`` and the plots and
    returns the results; ``eval.py`` records them (``results.json``, with the config fingerprint and warnings) and
    then calls ``say_done``. Rerunning resumes every generation file whose recorded settings match
    (``GenerationStore``); changed settings write new files, never mixed ones."""
    grade_stats_before = dict(GRADE_STATS)
    names = validate_benchmarks(cfg)
    out_dir = stage.out_dir

    benches = {n: load_benchmark(n, cfg.benchmark[n], data_dir=cfg.get("data_dir"), limit=cfg.get("limit"))
               for n in names}
    for b in benches.values():
        logger.info("benchmark %s: %d problems from %s%s", b.name, len(b.problems), b.source,
                    f" (dropped {dict(b.dropped)})" if b.dropped else "")

    if generator is None:
        generator, tokenizer = load_generator(cfg)
    is_hf = backend_of(generator) == "hf"
    if cfg.get("threads") is None and is_hf and generator.model.device.type == "cpu":
        if sum(p.numel() for p in generator.model.parameters()) < SMALL_MODEL_PARAMS:
            torch.set_num_threads(1)  # a tiny model on a CPU: thread overhead dominates (measured ~8x slower)
    is_vllm = backend_of(generator) == "vllm"
    want_sc = bool(cfg.generation.get("self_certainty", True)) and not is_vllm
    methods = resolve_methods(cfg.methods, cfg.method)
    confidence = [m.name for m in methods.values() if m.is_parallel and m.selection == "confidence"]
    if confidence and not want_sc:
        raise ValueError(f"methods {confidence} select by self-certainty, which needs full-vocabulary log-probs at "
                         "every step: only the HF backend computes them (generation.backend=hf, "
                         "generation.self_certainty=true); vLLM returns the sampled tokens' log-probs only")

    results = evaluate(generator, tokenizer, benches, cfg.methods, cfg.method,
                       sampling=sampling_config(cfg.sampling), out_dir=out_dir,
                       settings={n: bench_settings(cfg, n) for n in names}, system=cfg.prompt.get("system"),
                       grading=cfg.grading.policy, timeout=float(cfg.grading.timeout),
                       model={**model_stamp(cfg.model_path), "tokenizer": cfg.get("tokenizer")},
                       chunk_size=cfg.generation.get("chunk_size"), ks=list(cfg.get("ks") or []) or None,
                       self_certainty=want_sc, calibration=bool(cfg.get("calibration", True)),
                       rewards=reward_values(cfg.get("rewards")), progress=bool(cfg.get("progress", True)),
                       long_short_multiple=float(cfg.get("long_short_multiple", LONG_SHORT_MULTIPLE)))
    results = {"model": str(cfg.model_path), **results}
    results["grading"] = {"policy": cfg.grading.policy,
                          **{k: v - grade_stats_before.get(k, 0) for k, v in GRADE_STATS.items()
                             if v > grade_stats_before.get(k, 0)}}  # this run's timeouts / parse errors / too long
    results["config"] = OmegaConf.to_container(cfg, resolve=True)
    table = format_tables(results)
    shown = "".join(f"> warning: {w['key']}={w['value']!r}: {w['message']}\n\n" for w in collected_warnings())
    (out_dir / "results.md").write_text(shown + table + "\n")
    print(table, flush=True)
    plots = []
    if cfg.get("plots", True):
        from .plots import make_plots  # matplotlib: imported only when plots are made

        plots = make_plots(results, out_dir / "plots")
    results["plots"] = [str(p) for p in plots]
    if stage.run is not None and plots:
        try:
            import wandb

            stage.run.log({f"eval/plots/{Path(p).stem}": wandb.Image(str(p)) for p in plots})
        except Exception as e:  # plots are a nicety
            logger.warning("could not log plots to wandb: %s", e)
    return results


def tracked_summary(results: dict) -> dict:
    """The scalar metrics per benchmark and method: what the tracker's run summary gets of ``results``."""
    return {b: {m: {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
                for m, r in br["methods"].items()} for b, br in results["benchmarks"].items()}


def say_done(results: dict, out_dir: Path) -> None:
    """The evaluation's last console lines, once ``results.json`` is written: where the results are, and the
    answers grading could not judge (counted as wrong)."""
    plots = results["plots"]
    print(f"results -> {out_dir / 'results.json'}, {out_dir / 'results.md'}"
          + (f", {len(plots)} plots in {out_dir / 'plots'}" if plots else ""), flush=True)
    counts = {k: v for k, v in results["grading"].items() if k != "policy"}
    if counts:
        logger.warning("grading: %s (counted as wrong)", counts)
