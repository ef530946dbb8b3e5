import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TOKENIZERS = SHARED / "tokenizers"
DATA = SHARED / "data"
R1 = TOKENIZERS / "DeepSeek-R1-Distill-Qwen-1.5B"
QWEN = TOKENIZERS / "Qwen2.5-1.5B-Instruct"


def pytest_configure(config):
    # ../shared is part of CI's checkout layout; a missing one is a broken environment, not a reason to skip.
    if not SHARED.is_dir():
        raise pytest.UsageError(f"{SHARED} not found: tests need the shared/ folder beside the checkout")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from thinkless.synthetic import build_tiny_tokenizer
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    return tok


@pytest.fixture(scope="session")
def distilled(tmp_path_factory):
    """A short real distill.py run on the tiny model: its output folder (shared by several test modules)."""
    from tests.helpers import run_distill_cli

    out = tmp_path_factory.mktemp("distill")
    run_distill_cli(out, "training.args.max_steps=60", "data.num_problems=2000", "report.benchmark.n_per_level=10",
                    "report.free_samples=2")
    return out
