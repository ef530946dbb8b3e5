"""docs/cluster.md's GPU quick start holds no guesses: its pinned stack is the project's, its offline download list
names every Hub id each +experiment (and the paper's evaluation) reads, its save intervals and its global-batch
example are what the composed configs and train.py give."""

import re

import pytest

from thinkless.runs import checks
from thinkless.modeling import looks_like_hub_id
from thinkless.training.rl import check_global_batch

from .conftest import ROOT
from .test_configs import compose_cfg

DOC = (ROOT / "docs" / "cluster.md").read_text()
QUICK = DOC[DOC.index("## 1. GPU quick start"):DOC.index("## 2. What you must edit")]


def download_block() -> str:
    start = QUICK.index("export HF_HOME=")
    return QUICK[start:QUICK.index("```", start)]


def section(header: str) -> str:
    """The download block's commands under the comment line that starts with ``# <header>`` (up to the next one)."""
    out, inside = [], False
    for line in download_block().splitlines():
        if re.match(r"# (\+experiment=|evaluation|model=)", line):
            inside = line.startswith(f"# {header}")
        if inside:
            out.append(line)
    assert out, f"no section '# {header}' in docs/cluster.md's download list"
    return "\n".join(out)


def hub_ids(cfg, keys) -> set[str]:
    from omegaconf import OmegaConf

    out = set()
    for k in keys:
        v = OmegaConf.select(cfg, k)
        if isinstance(v, str) and looks_like_hub_id(v):
            out.add(v)
    return out


def test_the_stack_is_the_projects_pinned_pair():
    pyproject = (ROOT / "pyproject.toml").read_text()
    vllm = re.search(r'vllm = \["vllm==([\d.]+)"\]', pyproject).group(1)
    transformers = re.search(r'"transformers==([\d.]+)"', pyproject).group(1)
    torch = re.search(r"TORCH_VERSION=\$\{THINKLESS_TORCH_VERSION:-([\d.]+)\}",
                      (ROOT / "scripts" / "setup.sh").read_text()).group(1)
    assert f"pip install torch=={torch}" in QUICK and f"torch {torch} (a CUDA build) + vLLM {vllm}" in QUICK
    assert f"`vllm=={vllm}`" in QUICK and f"transformers=={transformers}" in QUICK
    assert "pip install torch  " not in DOC and "pip install torch\n" not in DOC  # no unpinned torch anywhere
    assert "hf auth login" in QUICK and "wandb login" in QUICK


@pytest.mark.parametrize("name,experiment,keys", [
    ("distill", "distill", ["model.path", "data.name", "report.benchmark.name"]),
    ("train", "degrpo", ["model.path", "rl_data.name", "rl_data.validation.name"]),
    ("train", "adaptthink", ["model.path", "rl_data.name", "rl_data.validation.name"]),
    ("train", "grpo", ["model.path", "rl_data.name", "rl_data.validation.name"]),
])
def test_download_list_names_every_hub_id_an_experiment_reads(name, experiment, keys):
    cfg = compose_cfg(name, [f"+experiment={experiment}"])
    ids = hub_ids(cfg, keys)
    block = section("+experiment=degrpo and +experiment=adaptthink" if experiment == "adaptthink"
                    else f"+experiment={experiment}")
    missing = sorted(i for i in ids if f"hf download {i}" not in block and f"L('{i}'" not in block)
    assert not missing, f"+experiment={experiment} reads {missing}: not in docs/cluster.md's download list"
    if experiment in ("degrpo", "adaptthink"):  # the official warm-up checkpoint the experiments' comments offer
        assert "model.path=Vinnnf/Thinkless-1.5B-Warmup" in (ROOT / "conf/experiment/degrpo.yaml").read_text()
        assert "hf download Vinnnf/Thinkless-1.5B-Warmup" in block


def test_download_list_names_the_evaluation_benchmarks_with_their_subsets():
    cfg = compose_cfg("eval", [])
    block = section("evaluation")
    protocol = re.search(r'"benchmarks=\[([\w,]+)\]"', (ROOT / "slurm" / "eval.sbatch").read_text()).group(1)
    for b in protocol.split(","):
        bc = cfg.benchmark[b]
        args = f"'{bc.name}'" + (f", '{bc.subset}'" if bc.subset else "") + f", split='{bc.split}'"
        assert f"L({args})" in block, b


def test_save_intervals_are_the_composed_ones():
    distill = compose_cfg("distill", ["+experiment=distill"]).training.args.save_steps
    rl = compose_cfg("train", ["+experiment=degrpo"]).rl.args.save_steps
    assert f"`training.args.save_steps`, {distill} in `+experiment=distill`" in DOC
    assert f"`rl.args.save_steps`, {rl} in the paper config" in DOC


def test_the_global_batch_example_is_what_train_py_says():
    checks.reset_warnings()
    check_global_batch(compose_cfg("train", ["+experiment=degrpo"]), 1)
    [w] = checks.collected_warnings()
    checks.reset_warnings()
    shown = QUICK[QUICK.index("the recipe is written for"):]
    shown = " ".join(shown[:shown.index("```")].split())
    head, tail = shown.split(", ... ")
    tail = tail.split("; ...")[0]
    said = " ".join(w["message"].split())
    assert said.startswith(head) and tail in said
