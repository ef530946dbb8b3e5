"""The final model (thinkless/checkpoints.py): Trainer.save_model output loads with the plain Auto classes."""

import copy

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from thinkless.checkpoints import is_zero3, save_final_model
from thinkless.tokens import control_token_ids

from .training.test_trainer import make_trainer, tiny  # noqa: F401  (the fixture)


def test_final_model_is_a_plain_hf_folder_with_generation_defaults(tiny, tmp_path):  # noqa: F811
    tr = make_trainer(tiny, tmp_path / "run")
    tok = tiny[1]
    assert not is_zero3(tr)
    folder, model = save_final_model(tr, tok, tmp_path / "model")
    assert model is tr.accelerator.unwrap_model(tr.model)
    t2 = AutoTokenizer.from_pretrained(folder)
    m2 = AutoModelForCausalLM.from_pretrained(folder)
    assert control_token_ids(t2) == control_token_ids(tok)
    assert m2.generation_config.eos_token_id == tok.eos_token_id and m2.generation_config.pad_token_id != tok.eos_token_id
    for a, b in zip(copy.deepcopy(model).state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_an_interrupted_save_and_a_truncated_weight_file_are_named(tmp_path):
    """A final model whose save was killed before the tokenizer is an incomplete save of its stage (rerun it), not
    a folder that merely lacks tokenizer files; a truncated safetensors file is named, before anything loads it."""
    import json

    import pytest

    from thinkless.modeling import check_model_path

    from .helpers import save_tiny

    run = tmp_path / "distill"
    model = save_tiny(run / "model")
    check_model_path(str(model))
    (run / "run_config.json").write_text(json.dumps({"stage": "distill"}))
    for f in model.glob("tokenizer*"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match=r"unfinished distill run.*interrupted.*Rerun that stage"):
        check_model_path(str(model))
    (run / "distill_result.json").write_text("{}")  # a finished run's folder without tokenizer: the plain message
    with pytest.raises(FileNotFoundError, match="has no tokenizer files"):
        check_model_path(str(model))
    other = save_tiny(tmp_path / "other")
    weights = other / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=rf"{weights}: truncated safetensors file"):
        check_model_path(str(other))
    weights.write_bytes(data[:4])
    with pytest.raises(ValueError, match=rf"{weights}: not a readable safetensors file"):
        check_model_path(str(other))
