"""The final model (thinkless/checkpoints.py): Trainer.save_model output loads with the plain Auto classes."""

import copy

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from thinkless.checkpoints import is_zero3, save_final_model
from thinkless.tokens import control_token_ids

from .test_trainer import make_trainer, tiny  # noqa: F401  (the fixture)


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
