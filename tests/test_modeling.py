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


def test_trained_checkpoint_with_missing_or_moved_control_tokens_is_an_error(tmp_path, caplog):
    import json

    import pytest

    from thinkless.modeling import load_checkpoint
    from thinkless.tasks.synthetic import build_tiny_tokenizer
    from thinkless.tokens import AddedToken

    from .helpers import save_tiny

    ck = save_tiny(tmp_path / "ck")
    ids = json.loads((ck / "config.json").read_text())["thinkless_control_tokens"]
    assert ids == {"<think>": 279, "</think>": 280, "<short>": 281}  # recorded with the trained model
    load_checkpoint(ck)  # its own tokenizer: verified
    bare = build_tiny_tokenizer()  # a tokenizer without the control tokens (ids 279-281 would be re-added)
    bare.save_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match=r"trained Thinkless checkpoint.*<think>: trained id 279.*overwrite trained"):
        load_checkpoint(ck, tokenizer=str(tmp_path / "bare"))
    moved = build_tiny_tokenizer()
    moved.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("<short>", "<think>", "</think>")])
    moved.save_pretrained(tmp_path / "moved")
    with pytest.raises(ValueError, match=r"<short>: trained id 281, tokenizer gives \[279\]"):
        load_checkpoint(ck, tokenizer=str(tmp_path / "moved"))
    # a base model (no record) gets the tokens added, and the log says so
    base = save_tiny(tmp_path / "base")
    cfg = json.loads((base / "config.json").read_text())
    del cfg["thinkless_control_tokens"]
    (base / "config.json").write_text(json.dumps(cfg))
    bare.save_pretrained(base)
    for f in ("chat_template.jinja",):
        (tmp_path / "ck" / f).exists() and (base / f).write_text((tmp_path / "ck" / f).read_text())
    load_checkpoint(base)
    assert "base model: control tokens added" in caplog.text


def test_model_folder_without_tokenizer_files_fails_before_work(tmp_path):
    import pytest

    from thinkless.modeling import check_model_path

    from .helpers import save_tiny

    ck = save_tiny(tmp_path / "ck")
    for f in ck.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens", "vocab")):
            f.unlink()
    with pytest.raises(FileNotFoundError, match=r"model.path=.* has no tokenizer files.*model.tokenizer"):
        check_model_path(str(ck))
    check_model_path(str(ck), tokenizer=False)  # a separate tokenizer is named
