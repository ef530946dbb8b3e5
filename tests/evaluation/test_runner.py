"""End to end: a tiny model on a slice of every real benchmark file and on the synthetic task; exact metrics from a
scripted model; resuming after an interruption; the CLI."""

from __future__ import annotations

import json
import re

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from eval import eval_stage
from thinkless.evaluation.runner import GenerationStore
from thinkless.tasks.synthetic import make_problems, parse_prompt

from ..conftest import DATA, ROOT
from ..helpers import ScriptedGenerator, run_cli, save_tiny

ALL_METHODS = ["adaptive", "forced_think", "forced_short", "nothinking", "budget_forcing", "parallel_majority",
               "parallel_confidence", "parallel_verifier"]
SWEEP = ["think_threshold@-8", "think_threshold@+0", "think_threshold@+8"]  # method.think_threshold.biases=[-8,0,8]
REAL = ["gsm8k", "math500", "aime24", "minerva_algebra"]


def eval_cfg(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="eval", overrides=list(overrides))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A randomly initialised tiny Qwen2 checkpoint (byte-level tokenizer: any text is encodable)."""
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model", max_position_embeddings=4096)  # real problems fit


def parallel_n(n):
    return [f"method.parallel_{s}.n={n}" for s in ("majority", "confidence", "verifier")]


def test_tiny_model_on_every_benchmark_and_method(tiny_model, tmp_path):
    out = tmp_path / "eval"
    cfg = eval_cfg(f"model_path={tiny_model}", f"output_dir={out}", f"data_dir={DATA}", "limit=3", "threads=1",
                   f"benchmarks=[synthetic,{','.join(REAL)}]", "sampling.max_new_tokens=8",
                   "benchmark.synthetic.max_new_tokens=24", "method.budget_forcing.budget=4", "progress=false",
                   "method.think_threshold.biases=[-8,0,8]", *parallel_n(3))
    res = eval_stage(cfg)

    saved = json.loads((out / "results.json").read_text())
    assert set(saved["benchmarks"]) == {"synthetic", *REAL}
    for bname, b in saved["benchmarks"].items():
        assert b["n_problems"] == 3 and list(b["methods"]) == ALL_METHODS + SWEEP
        cal = b["calibration"]  # the first-token distribution, beside the forced accuracies
        assert all(0 <= r["p_think"] <= 1 and "acc_gain" in r for r in cal["per_level"].values())
        assert "oracle_threshold" in cal
        for mname, m in b["methods"].items():
            assert m["n_problems"] == 3, (bname, mname)
            assert 0 <= m["acc"] <= 1 and 0 <= m["think_ratio"] <= 1 and m["tokens"] > 0
            assert m["n_samples"] == (3 if mname.startswith("parallel") else 1)
            assert m["wall_s"] > 0 and m["tokens_per_s"] > 0
            assert m["pass@k"] >= m["pass@1"] - 1e-9
        methods = b["methods"]
        assert methods["forced_think"]["think_ratio"] == 1.0 and methods["forced_short"]["think_ratio"] == 0.0
        assert methods["nothinking"]["think_ratio"] == 0.0 and methods["budget_forcing"]["think_ratio"] == 1.0
        # the three selections read the same samples
        files = {methods[f"parallel_{s}"]["generations"] for s in ("majority", "confidence", "verifier")}
        assert len(files) == 1
        assert methods["parallel_verifier"]["acc"] == methods["parallel_verifier"]["pass@k"]
        assert methods["parallel_majority"]["cost_tokens"] == pytest.approx(3 * methods["parallel_majority"]["tokens"])
        assert ("per_level" in methods["adaptive"]) == (bname in ("synthetic", "math500", "minerva_algebra"))
        rows = [json.loads(x) for x in open(methods["adaptive"]["generations"])]
        assert len(rows) == 3 and all(r["samples"][0]["self_certainty"] is not None for r in rows)
        max_new = 24 if bname == "synthetic" else 8
        assert all(r["samples"][0]["gen_tokens"] <= max_new for r in rows)
    # budget forcing: thinking capped at 4 tokens
    bf = [json.loads(x) for x in open(saved["benchmarks"]["gsm8k"]["methods"]["budget_forcing"]["generations"])]
    assert all(s["extra"]["thinking_tokens"] <= 4 for r in bf for s in r["samples"])
    # outputs: table (printed and saved), plots
    md = (out / "results.md").read_text()
    for name in ALL_METHODS + SWEEP + ["synthetic by level", "math500 by level", "calibration of the mode decision"]:
        assert name in md
    plots = sorted(p.name for p in (out / "plots").iterdir())
    leveled = ("synthetic", "math500", "minerva_algebra")
    assert plots == sorted([f"pareto_{b}.png" for b in ["synthetic", *REAL]]
                           + [f"think_ratio_by_level_{b}.png" for b in leveled]
                           + [f"calibration_{b}.png" for b in leveled])
    assert all((out / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in plots)
    assert res["benchmarks"]["gsm8k"]["methods"]["adaptive"] == saved["benchmarks"]["gsm8k"]["methods"]["adaptive"]


# ------------------------------------------------------------------ a scripted "ideal" model: exact numbers


def oracle(tokenizer):
    """Short for levels 1-2, think for 3-6 (adaptive); forced short answers right only at level 1; in parallel, the
    third sample is wrong but the most self-certain."""

    def problem_of(prompt):
        return parse_prompt(re.search(r"user\n(.*?)<\|im_end\|>", prompt, re.S).group(1))

    def script(prompt, i):
        p = problem_of(prompt)
        ans = int(p.answer) if i < 2 else (int(p.answer) + 1) % 10
        if prompt.endswith("<short>"):
            return f"\\boxed{{{p.answer if p.level == 1 else (int(p.answer) + 1) % 10}}}"
        if prompt.endswith("<think>"):
            return f"{p.prompt}</think>\\boxed{{{ans}}}"
        if p.level <= 2:
            return f"<short>\\boxed{{{ans}}}"
        return f"<think>{p.prompt}</think>\\boxed{{{ans}}}"

    return ScriptedGenerator(tokenizer, script, certainty=lambda prompt, i: 1.0 + i)


def test_exact_metrics_from_a_scripted_model(tiny_tokenizer, tmp_path):
    cfg = eval_cfg(f"output_dir={tmp_path}", "benchmark.synthetic.n_per_level=2", "progress=false", "plots=false",
                   "methods=[adaptive,forced_think,forced_short,parallel_majority,parallel_confidence,"
                   "parallel_verifier]",
                   *parallel_n(3))
    res = eval_stage(cfg, generator=oracle(tiny_tokenizer), tokenizer=tiny_tokenizer)
    m = res["benchmarks"]["synthetic"]["methods"]
    n_tok = lambda s: len(tiny_tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    ad = m["adaptive"]
    assert ad["acc"] == 1.0 and ad["think_ratio"] == pytest.approx(8 / 12)
    assert ad["tokens_short"] == pytest.approx(1 + 5)  # "<short>" + "\boxed{d}" (\, boxed, {, d, }: Qwen's split)
    width = len(make_problems(1, [3], seed=0)[0].prompt)  # every fold prompt has the same width (one byte/token)
    assert ad["tokens_think"] == pytest.approx(1 + width + 1 + 5)  # "<think>" + the problem + "</think>" + box
    assert [ad["per_level"][str(lv)]["think_ratio"] for lv in range(1, 7)] == [0, 0, 1, 1, 1, 1]
    assert m["forced_think"]["acc"] == 1.0
    assert m["forced_think"]["tokens"] == pytest.approx(n_tok("<think>") + width + n_tok("</think>\\boxed{7}"))
    fs = m["forced_short"]
    assert fs["acc"] == pytest.approx(1 / 6) and fs["per_level"]["1"]["acc"] == 1.0 and fs["per_level"]["2"]["acc"] == 0
    assert m["parallel_majority"]["acc"] == 1.0 and m["parallel_majority"]["pass@1"] == pytest.approx(2 / 3)
    assert m["parallel_confidence"]["acc"] == 0.0  # the most certain sample is the wrong one
    assert m["parallel_verifier"]["acc"] == 1.0 and m["parallel_verifier"]["pass_at"]["2"] == pytest.approx(1.0)
    assert m["parallel_majority"]["latency_tokens"] == pytest.approx(ad["tokens"])  # equal-length samples


# ------------------------------------------------------------------ resume


def test_resume_after_an_interruption(tiny_tokenizer, tmp_path):
    overrides = [f"output_dir={tmp_path}", "benchmark.synthetic.n_per_level=2", "progress=false", "plots=false",
                 "methods=[adaptive]", "generation.chunk_size=4"]
    interrupted = oracle(tiny_tokenizer)
    interrupted.fail_after = 8  # killed during the third chunk of 4 problems
    with pytest.raises(KeyboardInterrupt):
        eval_stage(eval_cfg(*overrides), generator=interrupted, tokenizer=tiny_tokenizer)
    files = list((tmp_path / "generations" / "synthetic").glob("adaptive_n1_*.jsonl"))
    assert len(files) == 1
    done = [json.loads(x)["uid"] for x in files[0].read_text().splitlines()]
    assert len(done) == 8

    resumed = oracle(tiny_tokenizer)
    res = eval_stage(eval_cfg(*overrides), generator=resumed, tokenizer=tiny_tokenizer)
    asked = [re.search(r"user\n(.*?)<\|im_end\|>", p).group(1) for prompts, _ in resumed.calls for p in prompts]
    rows = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(12))  # finished problems kept, the rest appended
    assert asked == [r["problem"] for r in rows[8:]]  # only the unfinished problems were generated
    assert res["benchmarks"]["synthetic"]["methods"]["adaptive"]["n_problems"] == 12
    assert res["benchmarks"]["synthetic"]["methods"]["adaptive"]["acc"] == 1.0

    # a kill while writing: a torn last line is dropped and only that problem is generated again
    text = files[0].read_text().splitlines()
    files[0].write_text("\n".join(text[:-1]) + "\n" + text[-1][: len(text[-1]) // 2])
    store = GenerationStore(files[0])
    assert len(store.rows) == 11 and store.repaired == 1
    again = oracle(tiny_tokenizer)
    res = eval_stage(eval_cfg(*overrides), generator=again, tokenizer=tiny_tokenizer)
    assert sum(len(p) for p, _ in again.calls) == 1
    assert all(json.loads(x) for x in files[0].read_text().splitlines())
    assert res["benchmarks"]["synthetic"]["methods"]["adaptive"]["n_problems"] == 12

    # everything on disk: nothing is generated; a changed sampling setting starts a new file
    idle = oracle(tiny_tokenizer)
    eval_stage(eval_cfg(*overrides), generator=idle, tokenizer=tiny_tokenizer)
    assert idle.calls == []
    other = oracle(tiny_tokenizer)
    eval_stage(eval_cfg(*overrides, "sampling.temperature=1.0"), generator=other, tokenizer=tiny_tokenizer)
    assert sum(len(p) for p, _ in other.calls) == 12
    assert len(list((tmp_path / "generations" / "synthetic").glob("adaptive_n1_*.jsonl"))) == 2


# ------------------------------------------------------------------ CLI


def test_cli(tiny_model, tmp_path):
    out = tmp_path / "cli"
    proc = run_cli("eval.py", f"model={tiny_model}", "benchmarks=[synthetic]", "limit=6", f"output_dir={out}",
                   "methods=[adaptive,forced_short]", "progress=false", timeout=300)
    assert "| adaptive |" in proc.stdout and "| forced_short |" in proc.stdout
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == str(tiny_model) and res["config"]["output_dir"] == str(out)
    assert (out / "plots" / "pareto_synthetic.png").exists()
    bad = run_cli("eval.py", f"model={tiny_model}", "methods=[adaptive,beam]", f"output_dir={out}", check=False)
    assert bad.returncode != 0 and "unknown method 'beam': valid choices are" in bad.stderr
    missing = run_cli("eval.py", f"model={tmp_path / 'nope'}", f"output_dir={out}", check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    OmegaConf.create(res["config"])  # the saved config is plain data


def test_a_never_distilled_model_is_warned_about_in_the_results(tiny_model, tmp_path):
    """eval.py on a model whose config records no control tokens (a base model, never distilled) said so only in
    its log; the warning is in results.json and results.md now. A distilled model gets none."""
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_model, base)
    config = json.loads((base / "config.json").read_text())
    del config["thinkless_control_tokens"]
    (base / "config.json").write_text(json.dumps(config))
    for model, warned in ((base, True), (tiny_model, False)):
        out = tmp_path / f"eval-{model.name}"
        run_cli("eval.py", f"model={model}", "benchmarks=[synthetic]", "limit=2", f"output_dir={out}",
                "methods=[adaptive]", "progress=false", "plots=false", "calibration=false",
                "sampling.max_new_tokens=8", timeout=300)
        res = json.loads((out / "results.json").read_text())
        assert [w["key"] for w in res["warnings"]] == (["model"] if warned else [])
        assert ("> warning: model=" in (out / "results.md").read_text()) == warned
        if warned:
            assert "not a Thinkless model (never distilled" in res["warnings"][0]["message"]


def test_load_generator(tiny_model):
    from thinkless.evaluation.runner import load_generator

    with pytest.raises(ValueError, match="generation.backend='tpu'"):  # generation.resolve_backend's choices
        load_generator(eval_cfg(f"model_path={tiny_model}", "generation.backend=tpu"))
    gen, tok = load_generator(eval_cfg(f"model_path={tiny_model}"))  # auto without a GPU: HF generate
    assert type(gen).__name__ == "HFGenerator" and tok.convert_tokens_to_ids("<short>") is not None


def test_generation_files_never_mix_settings(tmp_path):
    """A resumable generation file records the settings that made it; other settings (or no record) stop."""
    import pytest

    from thinkless.evaluation.runner import GenerationStore

    path = tmp_path / "g.jsonl"
    meta = {"model": {"hub": "a/b"}, "sampling": {"temperature": 0.6}}
    GenerationStore(path, meta).append([{"uid": "0-x", "samples": []}])
    assert list(GenerationStore(path, meta).rows) == ["0-x"]  # same settings: resumed
    with pytest.raises(ValueError, match=r"(?s)different settings.*sampling.temperature: 0.6 -> 1.0"):
        GenerationStore(path, {**meta, "sampling": {"temperature": 1.0}})
    path.with_suffix(".meta.json").unlink()
    with pytest.raises(ValueError, match="no record of the settings"):
        GenerationStore(path, meta)


def test_eval_runs_on_the_stage_runner(tmp_path, tiny_tokenizer):
    out = tmp_path / "e"
    res = eval_stage(eval_cfg(f"output_dir={out}", "benchmarks=[synthetic]", "methods=[adaptive]", "limit=4",
                            "plots=false", "calibration=false"), generator=oracle(tiny_tokenizer),
                   tokenizer=tiny_tokenizer)
    saved = json.loads((out / "results.json").read_text())
    assert saved["config_fingerprint"] == res["config_fingerprint"] and saved["warnings"] == []
    assert json.loads((out / "run_config.json").read_text())["stage"] == "eval"
    with pytest.raises(ValueError, match="sampling.temperature='hot': expected a number"):
        eval_stage(eval_cfg(f"output_dir={out}", "sampling.temperature=hot"), generator=oracle(tiny_tokenizer),
                 tokenizer=tiny_tokenizer)
