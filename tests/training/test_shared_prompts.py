"""thinkless/training/shared_prompts.py and the RL trainer's ``rl.args.share_prompts``: each distinct prompt scored
once gives TRL's log-probs, entropies and gradient; the fallbacks; the setting's errors."""

import pytest
import torch

from tests.training.test_trainer import fake_batch, loss_gradient, make_trainer, tiny  # noqa: F401  (its tiny policy)
from thinkless.training.shared_prompts import check_scoring, distinct_prompts


def test_distinct_prompts_by_ids_and_mask():
    ids = torch.tensor([[0, 5, 6], [0, 5, 6], [1, 2, 3], [0, 5, 6], [0, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1]])  # the last: same ids, another mask
    first, inverse = distinct_prompts(ids, mask)
    assert len(first) == 3 and inverse.tolist()[:2] == [inverse[0]] * 2 and inverse[3] == inverse[0]
    assert sorted(first.tolist()) == [0, 2, 4]  # each prompt's first row
    assert (first[inverse] == torch.tensor([0, 0, 2, 0, 4])).all()


def grouped_batch(tok, G=3):
    """``fake_batch``'s rows with prompts asked G times each (GRPO's groups), one group left-padded."""
    inputs = fake_batch(tok)
    for g in range(0, 6, G):
        inputs["prompt_ids"][g:g + G] = inputs["prompt_ids"][g]
    inputs["prompt_mask"][3:, :2] = 0  # the second group's prompt is shorter
    inputs["completion_mask"][5] = 0  # a row attending its prompt only (e.g. masked as truncated)
    return inputs


@pytest.fixture
def forwards(monkeypatch):
    """The (rows, columns) of every forward the scoring makes: its model calls."""
    calls = []
    from thinkless.training import shared_prompts

    real = shared_prompts.score_shared

    def spy(model, input_ids, *a, **kw):
        hook = model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(tuple(kwargs["input_ids"].shape)),
                                               with_kwargs=True)
        try:
            return real(model, input_ids, *a, **kw)
        finally:
            hook.remove()

    monkeypatch.setattr("thinkless.training.trainer.score_shared", spy)
    return calls


def test_shared_prompts_give_trls_log_probs_entropies_and_update(tiny, tmp_path, forwards):  # noqa: F811
    inputs = grouped_batch(tiny[1])
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    base = make_trainer(tiny, tmp_path / "a", gradient_checkpointing=False)
    shared = make_trainer(tiny, tmp_path / "b", share_prompts=True, gradient_checkpointing=False)
    lp0, ent0, _ = base._get_per_token_logps_and_entropies(base.model, ids, mask, 7, compute_entropy=True)
    lp, ent, _ = shared._get_per_token_logps_and_entropies(shared.model, ids, mask, 7, compute_entropy=True)
    assert forwards == [(2, 4), (6, 7)]  # 2 distinct prompts less their last token; every row's last one + completion
    assert torch.allclose(lp, lp0, atol=1e-5) and torch.allclose(ent, ent0, atol=1e-5) and lp.requires_grad
    assert (lp[5] == 0).all() and (lp0[5] == 0).all()  # unattended tokens score 0, as TRL's
    forwards.clear()  # the old and reference log-probs: TRL's memory chunk bounds what is shared
    lp3, _, _ = shared._get_per_token_logps_and_entropies(shared.model, ids, mask, 7, batch_size=3)
    assert forwards == [(1, 4), (3, 7), (1, 4), (3, 7)] and torch.allclose(lp3, lp0, atol=1e-5)
    g0, g = (loss_gradient(tr, inputs) for tr in (base, shared))
    assert g0.abs().sum() > 0 and torch.allclose(g, g0, atol=1e-6, rtol=1e-4)


def test_a_batch_of_distinct_prompts_or_a_checkpointed_forward_takes_trls_path(tiny, tmp_path, forwards):  # noqa: F811
    inputs = fake_batch(tiny[1])  # six different prompts: nothing to share
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    tr = make_trainer(tiny, tmp_path, share_prompts=True, gradient_checkpointing=False)
    base, _, _ = make_trainer(tiny, tmp_path / "a")._get_per_token_logps_and_entropies(tr.model, ids, mask, 7)
    lp, _, _ = tr._get_per_token_logps_and_entropies(tr.model, ids, mask, 7)
    assert forwards == [] and torch.allclose(lp, base)  # TRL's forward only: no prompt pass
    grouped = grouped_batch(tiny[1])
    ids = torch.cat([grouped["prompt_ids"], grouped["completion_ids"]], 1)
    ckpt = make_trainer(tiny, tmp_path / "c", share_prompts=True, gradient_checkpointing=True)
    ckpt.model.train()
    ckpt._get_per_token_logps_and_entropies(ckpt.model, ids, mask, 7)
    assert forwards == []  # a checkpointed forward under grad returns no cache: TRL's
    with torch.no_grad():
        ckpt._get_per_token_logps_and_entropies(ckpt.model, ids, mask, 7)
    assert forwards == [(2, 4), (6, 7)]


def test_a_model_whose_cache_keeps_a_window_is_scored_by_trls_forward_without_a_prompt_pass(tiny, tmp_path,  # noqa: F811
                                                                                           forwards, caplog):
    """A sliding-window layer's cache keeps only its last tokens, so it cannot hold a shared prompt: read off the
    model's config when the trainer is built, every batch takes TRL's one forward — no prompt pass computed and
    thrown away — and the run says so."""
    from transformers import AutoModelForCausalLM

    from thinkless.training.shared_prompts import caches_every_token

    model, tok, ds = tiny
    config = model.config.__class__.from_dict({**model.config.to_dict(), "use_sliding_window": True,
                                               "sliding_window": 4, "max_window_layers": 0,
                                               "layer_types": ["sliding_attention"] * model.config.num_hidden_layers})
    assert caches_every_token(model.config) and not caches_every_token(config)
    windowed = AutoModelForCausalLM.from_config(config)
    windowed.load_state_dict(model.state_dict())
    inputs = grouped_batch(tok)
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    with caplog.at_level("WARNING"):
        tr = make_trainer((windowed, tok, ds), tmp_path, share_prompts=True, gradient_checkpointing=False)
    base, _, _ = make_trainer((windowed, tok, ds), tmp_path / "a")._get_per_token_logps_and_entropies(
        tr.model, ids, mask, 7)
    lp, _, _ = tr._get_per_token_logps_and_entropies(tr.model, ids, mask, 7)
    assert forwards == [] and torch.equal(lp, base)
    assert "rl.args.share_prompts=True: the model's layers ['sliding_attention'] do not all cache" in caplog.text


def test_one_way_to_score_a_batch():
    from thinkless.training.trainer import AdaptiveGRPOConfig

    with pytest.raises(ValueError, match=r"rl.args.share_prompts=true with rl.args.length_bucket_rows=4: one way"):
        check_scoring(4, True)
    check_scoring(0, True)
    check_scoring(4, False)
    with pytest.raises(ValueError, match=r"rl.args.share_prompts='yes': expected true or false"):
        AdaptiveGRPOConfig(output_dir="/tmp/x", use_cpu=True, bf16=False, share_prompts="yes")
    with pytest.raises(ValueError, match=r"one way to score a batch"):
        AdaptiveGRPOConfig(output_dir="/tmp/x", use_cpu=True, bf16=False, share_prompts=True, length_bucket_rows=2)


# ---------------------------------------------------------------------- generation: each prompt prefilled once

def generation_batch(tok):
    """Three prompts asked three times each (GRPO's groups), the second left-padded: TRL's generate inputs."""
    texts = ["2 ~ 9 . .", "7 ~ 1 ~ 3", "5 ~ 5 ~ 5"]
    ids = [tok(t)["input_ids"] for t in texts]
    ids[1] = ids[1][2:]  # a shorter prompt
    width = max(map(len, ids))
    rows, masks = [], []
    for p in ids:
        for _ in range(3):
            rows.append([tok.pad_token_id] * (width - len(p)) + p)
            masks.append([0] * (width - len(p)) + [1] * len(p))
    return torch.tensor(rows), torch.tensor(masks)


@pytest.fixture
def model_rows():
    """The (rows, columns) of every forward of a model, as ``watch(model)`` hooks them."""
    calls, hooks = [], []

    def watch(model):
        hooks.append(model.register_forward_pre_hook(
            lambda m, args, kwargs: calls.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True))
        return calls

    yield watch
    for h in hooks:
        h.remove()


@pytest.mark.parametrize("sample", [False, True])
def test_generation_prefills_each_prompt_once_with_the_same_samples(tiny, model_rows, sample):  # noqa: F811
    from transformers import GenerationConfig

    from thinkless.training.shared_prompts import generate_sharing_prompts

    model, tok, _ = tiny
    model.eval()
    ids, mask = generation_batch(tok)
    config = GenerationConfig(max_new_tokens=6, do_sample=sample, temperature=1.0, top_k=0,
                              pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(3)
    plain = model.generate(input_ids=ids, attention_mask=mask, generation_config=config, output_scores=True,
                           return_dict_in_generate=True)
    calls = model_rows(model)
    torch.manual_seed(3)
    shared = generate_sharing_prompts(model, model.generate, ids, mask, generation_config=config,
                                      output_scores=True, return_dict_in_generate=True)
    L = ids.size(1)
    assert calls[:2] == [(3, L - 1), (9, 1)]  # 3 distinct prompts less their last token; then every row's last one
    assert torch.equal(shared.sequences, plain.sequences)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(shared.scores, plain.scores))


def test_generation_without_a_shared_prompt_is_plain_generate(tiny, model_rows):  # noqa: F811
    from transformers import GenerationConfig

    from thinkless.training.shared_prompts import generate_sharing_prompts

    model, tok, _ = tiny
    model.eval()
    ids, mask = generation_batch(tok)
    ids, mask = ids[::3], mask[::3]  # one row per prompt: nothing to share
    config = GenerationConfig(max_new_tokens=2, do_sample=False, pad_token_id=tok.pad_token_id,
                              eos_token_id=tok.eos_token_id)
    calls = model_rows(model)
    generate_sharing_prompts(model, model.generate, ids, mask, generation_config=config)
    assert calls[0] == (3, ids.size(1))  # generate's own prefill, every prompt token


def test_the_trainer_generates_through_it_with_share_prompts_only(tiny, tmp_path, monkeypatch):  # noqa: F811
    from thinkless.training import shared_prompts

    made = []
    real = shared_prompts.generate_sharing_prompts

    def spy(model, generate, input_ids, attention_mask, **kw):
        made.append(tuple(input_ids.shape))
        return real(model, generate, input_ids, attention_mask, **kw)

    monkeypatch.setattr("thinkless.training.trainer.generate_sharing_prompts", spy)
    tr = make_trainer(tiny, tmp_path / "a", share_prompts=True, gradient_checkpointing=False)
    tr.train()
    assert made and made[0][0] == 8  # the step's 8 rows (2 prompts x 4) through the prefill-once path
    assert "generate" not in vars(tr.accelerator.unwrap_model(tr.model))  # the model's own generate again
    made.clear()
    make_trainer(tiny, tmp_path / "b", gradient_checkpointing=False).train()
    assert made == []


def test_rows_that_differ_only_in_their_last_token_share_the_prefill(tiny, model_rows):  # noqa: F811
    """A forced first token (AdaptThink's) ends each row's prompt differently: the cached part, all but that token,
    is still one per prompt, and the samples are generate's."""
    from transformers import GenerationConfig

    from thinkless.training.shared_prompts import generate_sharing_prompts

    model, tok, _ = tiny
    model.eval()
    ids, mask = generation_batch(tok)
    ids[1::2, -1] = tok.pad_token_id + 1  # every other row of a group another last token
    config = GenerationConfig(max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id,
                              eos_token_id=tok.eos_token_id)
    plain = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    calls = model_rows(model)
    shared = generate_sharing_prompts(model, model.generate, ids, mask, generation_config=config)
    assert calls[:2] == [(3, ids.size(1) - 1), (9, 1)] and torch.equal(shared, plain)
