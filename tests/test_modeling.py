"""Loading students and checkpoints (thinkless/modeling.py)."""

import pytest
from omegaconf import OmegaConf

from thinkless.modeling import check_model_path, load_checkpoint, load_student, torch_dtype
from thinkless.tokens import control_token_ids

from .helpers import save_tiny


def test_check_model_path_fails_before_any_work(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_model_path(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        check_model_path(str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not in the local cache"):
        check_model_path("no-org/no-model")
    check_model_path(None)
    with pytest.raises(ValueError, match="valid choices"):
        torch_dtype("fp8")


def test_tiny_student_and_checkpoint_round_trip(tmp_path):
    model, tok = load_student(OmegaConf.create({"path": None, "tiny": {"hidden_size": 32, "num_layers": 1,
                                                                       "num_heads": 2, "num_kv_heads": 1,
                                                                       "intermediate_size": 64}}))
    ids = control_token_ids(tok)
    assert model.generation_config.eos_token_id == tok.eos_token_id != tok.pad_token_id
    assert model.config.hidden_size == 32 and max(ids.think, ids.short) < model.config.vocab_size
    path = save_tiny(tmp_path / "m")
    m2, t2 = load_checkpoint(path)
    assert control_token_ids(t2) == control_token_ids(tok) and m2.config.vocab_size >= len(t2)
