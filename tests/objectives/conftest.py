import pytest


@pytest.fixture(scope="module")
def tiny_trainer_parts():
    """A tiny Qwen2 model and tokenizer with the control tokens (shared by a module's trainer tests; each trainer
    gets a copy of the model)."""
    from thinkless.tasks.synthetic import build_tiny_model, build_tiny_tokenizer
    from thinkless.tokens import add_control_tokens

    tok = build_tiny_tokenizer()
    add_control_tokens(tok)
    model = build_tiny_model(len(tok), hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                             intermediate_size=64, seed=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return model, tok
