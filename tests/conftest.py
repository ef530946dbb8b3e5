import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
# the real tokenizers and math sets live in the repository (tests/fixtures/README.md: sources, licences, subsets);
# the tests import DATA, QWEN, R1 and TOKENIZERS from here
from .fixtures.build import DATA, QWEN, R1, TOKENIZERS, assemble_r1_tokenizer  # noqa: E402, F401

assemble_r1_tokenizer()  # R1's tokenizer.json is kept as parts; checked byte for byte against the real file


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from thinkless.tasks.synthetic import build_tiny_tokenizer
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    return tok


@pytest.fixture(params=["r1", "qwen", "tiny"])
def tok(request, tiny_tokenizer):
    """Each chat template we ship for, control tokens added: the real R1-Distill and Qwen2.5 tokenizers, the tiny one."""
    from transformers import AutoTokenizer

    from thinkless.tokens import add_control_tokens

    if request.param == "tiny":
        return tiny_tokenizer
    t = AutoTokenizer.from_pretrained(R1 if request.param == "r1" else QWEN)
    add_control_tokens(t)
    return t


@pytest.fixture(scope="session")
def distilled(tmp_path_factory):
    """A short real distill.py run on the tiny model: its output folder (shared by several test modules)."""
    from tests.helpers import run_distill_cli

    out = tmp_path_factory.mktemp("distill")
    run_distill_cli(out, "training.args.max_steps=60", "data.num_problems=2000", "report.benchmark.n_per_level=10",
                    "report.free_samples=2")
    return out
