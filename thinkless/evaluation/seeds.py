"""One table over the seeds of an evaluation: mean and spread per benchmark x method (the paper protocol's step 4).

The paper's protocol evaluates every model 5 times (seeds 0-4, as the official ``run_eval.sh``), each seed an
``eval.py`` run into its own folder (``slurm/eval.sbatch`` writes ``<eval>/s<seed>/``). This reads each folder's
``results.json`` and writes ``seeds_results.md`` and ``seeds_results.json`` beside them: for every benchmark x method,
the number of seeds and the mean ± sample standard deviation over seeds of the accuracy, think ratio, response tokens
and truncated share. Runs that cannot be compared fail with the reason: an unfinished seed (no ``results.json``), two
folders of the same seed, or seeds that differ in model, benchmarks, methods or settings (other than the seed).

    python -m thinkless.evaluation.seeds runs/thinkless-1.5b/eval            # every s*/results.json below it
    python -m thinkless.evaluation.seeds runs/x/eval/s0 runs/x/eval/s1 --out runs/x/eval
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from ..reporting.markdown import markdown_table
from .metrics import fmt

# (column, results.json key, format): what the table reports per benchmark x method, each as mean ± sd over seeds
METRICS = [("acc", "acc", "{:.3f}"), ("think ratio", "think_ratio", "{:.3f}"), ("tokens", "tokens", "{:.0f}"),
           ("truncated", "truncated_ratio", "{:.3f}")]
# settings that must agree across the seeds of one table (the seed itself and where it was written may differ)
SAME = ("temperature", "top_p", "n", "max_new_tokens_requested")


def spread(xs: list[float]) -> dict:
    """Mean and sample standard deviation (0 for one value) of the finite values of ``xs``; None when none."""
    xs = [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs)}


def seed_folders(paths: list[str | Path]) -> list[Path]:
    """The result folders: each path itself if it holds ``results.json`` (or is named ``s<seed>``), else its
    ``s*/`` sub-folders."""
    out = []
    for p in map(Path, paths):
        if (p / "results.json").is_file() or (p.name.startswith("s") and p.name[1:].isdigit()):
            out.append(p)
        else:
            subs = sorted((q for q in p.glob("s*") if q.is_dir() and q.name[1:].isdigit()),
                          key=lambda q: int(q.name[1:]))
            if not subs:
                raise FileNotFoundError(f"{p}: no results.json and no s<seed>/ folders (eval.py "
                                        "output_dir=<it>/s<seed>)")
            out += subs
    return out


def load_seeds(folders: list[Path]) -> list[dict]:
    runs, seeds = [], {}
    for f in folders:
        path = f / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: the evaluation of {f} has not finished (rerun it: it resumes)")
        r = json.loads(path.read_text())
        seed = (r.get("config") or {}).get("seed")
        if seed in seeds:
            raise ValueError(f"{f} and {seeds[seed]} are both seed {seed}: the spread over seeds would count it twice")
        seeds[seed] = f
        runs.append({"folder": str(f), "seed": seed, "results": r})
    return runs


def check_comparable(runs: list[dict]) -> None:
    """Same model, benchmarks x methods and sampling settings in every seed; else ValueError naming the difference."""
    first = runs[0]
    ref = first["results"]
    for run in runs[1:]:
        r, where = run["results"], f"{run['folder']} vs {first['folder']}"
        if r.get("model") != ref.get("model"):
            raise ValueError(f"{where}: different models ({r.get('model')!r} vs {ref.get('model')!r})")
        if set(r["benchmarks"]) != set(ref["benchmarks"]):
            raise ValueError(f"{where}: different benchmarks ({sorted(r['benchmarks'])} vs "
                             f"{sorted(ref['benchmarks'])})")
        for b, br in r["benchmarks"].items():
            rb = ref["benchmarks"][b]
            if set(br["methods"]) != set(rb["methods"]):
                raise ValueError(f"{where}: {b} has methods {sorted(br['methods'])} vs {sorted(rb['methods'])}")
            if br.get("n_problems") != rb.get("n_problems"):
                raise ValueError(f"{where}: {b} has {br.get('n_problems')} problems vs {rb.get('n_problems')}")
            for k in SAME:
                a, c = (br.get("settings") or {}).get(k), (rb.get("settings") or {}).get(k)
                if a != c:
                    raise ValueError(f"{where}: {b} settings.{k} = {a!r} vs {c!r}")


def aggregate(runs: list[dict]) -> dict:
    """{model, seeds, folders, benchmarks: {b: {n_problems, max_new_tokens, methods: {m: {key: spread}}}}}."""
    if not runs:
        raise ValueError("no evaluation results to aggregate")
    check_comparable(runs)
    ref = runs[0]["results"]
    out = {"model": ref.get("model"), "seeds": [r["seed"] for r in runs], "folders": [r["folder"] for r in runs],
           "benchmarks": {}}
    for b, rb in ref["benchmarks"].items():
        methods = {m: {key: spread([r["results"]["benchmarks"][b]["methods"][m].get(key) for r in runs])
                       for _, key, _ in METRICS} for m in rb["methods"]}
        out["benchmarks"][b] = {"n_problems": rb.get("n_problems"),
                                "max_new_tokens": (rb.get("settings") or {}).get("max_new_tokens_requested"),
                                "methods": methods}
    return out


def table(agg: dict) -> str:
    cols = ["benchmark", "method", "seeds", *(c for c, _, _ in METRICS)]
    rows = []
    for b, rb in agg["benchmarks"].items():
        for m, stats in rb["methods"].items():
            cells = [b, m, str(max(s["n"] for s in stats.values()))]
            for _, key, spec in METRICS:
                s = stats[key]
                cells.append("-" if s["mean"] is None else f"{fmt(s['mean'], spec)} ± {fmt(s['sd'], spec)}")
            rows.append(cells)
    lines = [f"### `{agg['model']}` over seeds {', '.join(map(str, agg['seeds']))} (mean ± sd)", "",
             markdown_table(cols, rows)]
    limits = ", ".join(f"{b}: {rb['max_new_tokens']}" for b, rb in agg["benchmarks"].items())
    lines += ["", "acc: pass@1 of each seed (the mean over its samples); think ratio: share of samples in think mode; "
              f"tokens: mean response tokens per sample; truncated: share of samples cut at max_new_tokens ({limits}); "
              "sd: the sample standard deviation over seeds."]
    return "\n".join(lines)


def write_seed_table(paths: list[str | Path], out_dir: str | Path | None = None) -> tuple[Path, dict]:
    """Aggregate the seeds under ``paths`` into ``<out_dir>/seeds_results.{md,json}`` (default: the folder the seed
    folders are in). Returns the markdown path and the aggregate."""
    folders = seed_folders(paths)
    agg = aggregate(load_seeds(folders))
    out = Path(out_dir) if out_dir is not None else folders[0].parent
    out.mkdir(parents=True, exist_ok=True)
    md = out / "seeds_results.md"
    md.write_text(table(agg) + "\n")
    (out / "seeds_results.json").write_text(json.dumps(agg, indent=2))
    return md, agg


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m thinkless.evaluation.seeds", description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="an eval folder holding s<seed>/ folders, or the seed folders themselves")
    ap.add_argument("--out", default=None, help="where seeds_results.{md,json} go (default: beside the seed folders)")
    a = ap.parse_args(argv)
    try:
        md, _ = write_seed_table(a.paths, a.out)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"Error: {e}") from None
    print(md.read_text(), flush=True)
    print(f"seed table -> {md}, {md.with_suffix('.json')}", flush=True)


if __name__ == "__main__":
    main()
