"""Stage 1, distillation: SFT with ``DistillTrainer`` (TRL's ``SFTTrainer``, scoring rows of similar length together
when ``training.args.length_bucket_rows`` asks). ``distill.py`` is its Hydra entry point: it checks with
``check_distill``, starts the stage, trains with ``run_distill`` and publishes with
``thinkless.reporting.publish.publish_distill``."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import AutoTokenizer
from trl import SFTConfig, SFTTrainer

from ..runs.checks import check_trainer_args, warn
from ..checkpoints import save_final_model
from ..tasks.base import get_task
from ..tasks.data import LAYOUTS, DropStats, load_rows, load_table, records_from_rows, sft_table
from ..tasks.teachers import generate_pairs
from ..tasks.synthetic import paired_records
from ..generation import SamplingConfig, make_generator
from ..reporting.hub import base_model_id, check_hub, hub_callbacks, hub_datasets
from ..modeling import check_model_path, load_student
from ..reporting.monitor import SFT_KEYS, MetricsLogCallback
from .buckets import length_buckets
from .fused_head import score_labelled_positions
from .shared_prompts import PromptGroups, caches_every_token, check_scoring, score_sft_shared
from .loop import Trained, train, trainer_args

logger = logging.getLogger(__name__)

SOURCES = ("synthetic", *LAYOUTS, "teacher")
PAIRED_FIELDS = {"problem": "problem", "answer": "answer", "long": "long", "short": "short", "level": "level"}


@dataclass
class DistillConfig(SFTConfig):
    length_bucket_rows: int = field(default=0, metadata={
        "help": "Compute a batch's loss in buckets of this many rows of similar length, each cut to its own padding "
                "(rows are right-padded: no position moves); 0: TRL's one forward over the batch padded to its "
                "longest row. The same loss and gradient (float rounding aside)."})

    share_prompts: bool = field(default=False, metadata={
        "help": "Batch the rows that ask one prompt together (a paired problem's think and short rows; the groups "
                "shuffled each epoch) and compute each distinct prompt of a batch once: its keys and values shared by "
                "its rows, each row's completion scored on them. TRL's loss and metrics to float rounding, with a "
                "paired batch's prompts computed once instead of twice; another row order than TRL's random one. "
                "Exclusive with length_bucket_rows and with a train_sampling_strategy other than random."})

    def __post_init__(self):
        # the range the run checks hold before any work (runs/checks.ARG_MINIMUMS), for configs built in Python
        check_trainer_args(type(self), {"length_bucket_rows": self.length_bucket_rows,
                                        "share_prompts": self.share_prompts}, "training.args")
        check_scoring(self.length_bucket_rows, self.share_prompts, "training.args")
        check_row_order(self.share_prompts, self.train_sampling_strategy)
        super().__post_init__()


def check_row_order(share_prompts, train_sampling_strategy) -> None:
    """``share_prompts`` orders the rows itself (``PromptGroups``): no other sampler beside it."""
    if share_prompts and (train_sampling_strategy or "random") != "random":
        raise ValueError(f"training.args.share_prompts=true with training.args.train_sampling_strategy="
                         f"{train_sampling_strategy!r}: share_prompts orders the rows itself (a prompt's rows "
                         "together, shuffled); set train_sampling_strategy=random or share_prompts=false")


class DistillTrainer(SFTTrainer):
    """TRL's ``SFTTrainer``; with ``length_bucket_rows`` a batch's loss is TRL's loss summed over its length buckets
    (``buckets.length_buckets``), each normalised by the whole batch's token count as TRL's is; with
    ``share_prompts`` a prompt's rows are batched together (``shared_prompts.PromptGroups``) and TRL's loss reads
    outputs computed with each distinct prompt once (``shared_prompts.score_sft_shared``)."""

    def __init__(self, *a, **kw):
        score_labelled_positions()  # TRL's fused head: a CPU scores the labelled tokens, not the prompts (fused_head.py)
        super().__init__(*a, **kw)
        config = self.accelerator.unwrap_model(self.model).config
        # a cache that keeps only a window would not hold a shared prompt: TRL's forward (the grouped order stays)
        self._share_prompts = self.args.share_prompts and caches_every_token(config)
        if self.args.share_prompts and not self._share_prompts and self.accelerator.is_main_process:
            warn("training.args.share_prompts", True, f"the model's layers {sorted(set(config.layer_types))} do not "
                 "all cache every past token (a sliding window's keeps only its last ones): every batch is scored by "
                 "TRL's one forward")

    def _get_train_sampler(self, train_dataset=None):
        ds = train_dataset if train_dataset is not None else self.train_dataset
        if not self.args.share_prompts or ds is None or not hasattr(ds, "column_names"):
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return PromptGroups.of_rows(ds["input_ids"], ds["labels"], seed)

    def _shares(self, inputs, return_outputs, num_items_in_batch) -> bool:
        """Whether this batch's loss may read ``score_sft_shared``'s outputs: TRL's plain NLL branch (no custom loss,
        label smoothing, MoE aux loss or sequence parallelism), right-padded rows with a mask, and no checkpointed
        forward under grad (it returns no cache)."""
        parallel = getattr(self.accelerator, "parallelism_config", None)
        return (self._share_prompts and not return_outputs and "attention_mask" in inputs and
                self.args.loss_type == "nll" and not self.aux_loss_enabled and self.compute_loss_func is None and
                self.label_smoother is None and not (parallel is not None and getattr(parallel, "sp_enabled", False))
                and not (torch.is_grad_enabled() and self.args.gradient_checkpointing))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self._shares(inputs, return_outputs, num_items_in_batch):
            return super().compute_loss(_SharedForward(model), inputs, return_outputs, num_items_in_batch)
        rows, n = self.args.length_bucket_rows, inputs["input_ids"].shape[0]
        parallel = getattr(self.accelerator, "parallelism_config", None)
        # TRL's own loss where a bucket's share is not TRL's loss of those rows over the batch's tokens (no token count,
        # packed rows without a mask, an MoE aux loss or a custom loss per call, sequence parallelism), and for
        # checkpointed forwards under grad (a weight's gradient hook reached once per bucket: DDP and DeepSpeed refuse)
        if not rows or rows >= n or return_outputs or num_items_in_batch is None or "attention_mask" not in inputs or \
                any(not torch.is_tensor(v) or v.shape[:1] != (n,) or v.dim() != 2 for v in inputs.values()) or \
                self.aux_loss_enabled or self.compute_loss_func is not None or self.label_smoother is not None or \
                (parallel is not None and getattr(parallel, "sp_enabled", False)) or \
                (torch.is_grad_enabled() and self.args.gradient_checkpointing):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        m = self._metrics["train" if self.model.training else "eval"]
        logged = {k: len(m[k]) for k in ("entropy", "mean_token_accuracy")}
        loss, weights = 0.0, []
        for idx, lo, hi in length_buckets(inputs["attention_mask"], 0, rows):
            part = {k: v[idx, lo:hi] for k, v in inputs.items()}
            loss = loss + super().compute_loss(model, part, num_items_in_batch=num_items_in_batch)
            weights.append(self.accelerator.gather_for_metrics((part["labels"][:, 1:] != -100).sum()).sum())
        # TRL logged each bucket's token means: one per batch instead, over all its tokens, as without buckets
        w = torch.stack(weights).float()
        for k, start in logged.items():
            m[k][start:] = [float((torch.tensor(m[k][start:]) * w).sum() / w.sum().clamp(min=1.0))]
        return loss


class _SharedForward:
    """``model`` for TRL's ``SFTTrainer.compute_loss``: its fused forward answered by ``score_sft_shared`` (each
    distinct prompt once), the model's own forward where that returns None or the call is another one."""

    def __init__(self, model):
        self.model = model

    def __call__(self, **kw):
        if kw.get("fused_lm_head") and set(kw) <= {"input_ids", "attention_mask", "labels", "use_cache", "fused_lm_head"}:
            out = score_sft_shared(self.model, kw["input_ids"], kw["attention_mask"], kw["labels"])
            if out is not None:
                return out
        return self.model(**kw)


def teacher_records(data_cfg, stats: DropStats, *, out_dir, progress: bool = True) -> list[dict]:
    """Paired records generated by the long and the short teacher (verified, resumable)."""
    rows = load_rows(data_cfg.prompts, split=data_cfg.get("split", "train"), limit=data_cfg.get("limit"), stats=stats,
                     fields=dict(data_cfg.fields))
    problems = records_from_rows(rows, dict(data_cfg.fields), stats, require_answer=True, what="data.fields")
    gens = {}
    for role in ("long_teacher", "short_teacher"):
        t = data_cfg[role]
        check_model_path(t.model, what=f"data.{role}.model")
        tok = AutoTokenizer.from_pretrained(t.model)
        gens[role] = make_generator(data_cfg.get("backend", "auto"), tokenizer=tok, model_path=t.model,
                                    batch_size=data_cfg.get("batch_size", 64), key="data.backend")

    def sampling(t):
        return SamplingConfig(temperature=t.temperature, top_p=t.top_p, max_new_tokens=t.max_new_tokens,
                              n=t.get("n", 1), seed=data_cfg.get("seed", 0))

    # the pairs' identity: every data key but where they go, how fast, and budget_prompts (how SFT renders them)
    return generate_pairs(problems, gens["long_teacher"], gens["short_teacher"],
                          data_cfg.get("out_file") or out_dir / "teacher_pairs.jsonl", stats,
                          long_cfg=sampling(data_cfg.long_teacher), short_cfg=sampling(data_cfg.short_teacher),
                          batch_size=data_cfg.get("batch_size", 64), instruction=data_cfg.get("instruction"),
                          long_system=data_cfg.long_teacher.get("system"),
                          short_system=data_cfg.short_teacher.get("system"), progress=progress,
                          meta={k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                                for k, v in data_cfg.items()
                                if k not in ("out_file", "batch_size", "backend", "budget_prompts")})


def sft_rows(cfg: DictConfig, tok, stats: DropStats, *, out_dir):
    """The SFT rows (``datasets.Dataset``: prompt, completion, mode, level, answer) of the configured source."""
    d = cfg.data
    if d.source not in SOURCES:
        raise ValueError(f"data.source={d.source!r}: valid choices are {SOURCES}")
    if d.source == "synthetic":
        table = paired_records(d.num_problems, list(d.levels), d.seed, d.get("level_weights"),
                               d.get("short_solve_rate"), get_task(d.get("variant", "fold"), key="data.variant",
                                                                   generated=True).name, d.get("max_trace") or 0)
        layout, fields = "paired", PAIRED_FIELDS
    elif d.source == "teacher":
        table, layout, fields = teacher_records(d, stats, out_dir=out_dir), "paired", PAIRED_FIELDS
    else:
        table = load_table(d.name, split=d.get("split", "train"), subset=d.get("subset"), limit=d.get("limit"),
                           stats=stats, fields=dict(d.fields))
        layout, fields = d.source, dict(d.fields)
    share = float(d.get("budget_prompts") or 0.0)  # checked in range with the stage's numbers (runs.checks)
    # an L1 warm-up: prompts that state their response's own length, in objective=l1's Exact sentence (one owner)
    budget = (share, int(d.get("seed", 0)), l1_exact_suffix) if share else None
    return sft_table(table, layout, fields, tok, stats, instruction=cfg.prompt.instruction, system=cfg.prompt.system,
                     require_answer=bool(d.get("require_answer", False)),
                     max_length=cfg.training.args.get("max_length"), num_proc=d.get("num_proc"), budget=budget)


def l1_exact_suffix(n: int) -> str:
    """L1-Exact's budget sentence for ``n`` tokens (``objectives.l1.budget_suffix``; module level: picklable for
    ``datasets.map`` workers)."""
    from ..objectives.l1 import budget_suffix

    return budget_suffix(float(n))



def card_info(cfg: DictConfig) -> dict:
    """The warm-up model's card fields (``thinkless.reporting.hub.warmup_card``): Hub ids only for base_model and datasets."""
    hub, d = cfg.get("hub") or {}, cfg.data
    base = base_model_id(cfg.model.get("path"), hub.get("base_model"))
    if d.source == "synthetic":
        data = get_task(d.get("variant", "fold"), key="data.variant", generated=True).describe()
        names = []
    else:
        names = hub_datasets(d.get("prompts") if d.source == "teacher" else d.get("name"))
        data = f"`{names[0]}`" if names else "a local file (not a Hub dataset)"
        if d.source == "teacher":
            data += f", answered by the teachers `{d.long_teacher.model}` and `{d.short_teacher.model}`"
    return {"stage": "distill", "name": cfg.get("run_name"), "base_model": base,
            "base": None if base else ("a tiny Qwen2 built from scratch (model=tiny)" if cfg.model.get("path") is None
                                       else "a local model with no known Hub id (hub.base_model=org/name names it)"),
            "data": data, "datasets": names, "license": hub.get("license")}


def check_distill(cfg: DictConfig) -> None:
    """What ``distill.py`` checks before the stage starts (before any work): the model path, the scoring settings
    (``length_bucket_rows``, ``share_prompts`` and the row order), the data source, the Hub settings."""
    check_model_path(cfg.model.get("path"))
    a = cfg.training.args
    check_scoring(a.get("length_bucket_rows") or 0, a.get("share_prompts"), "training.args")
    check_row_order(a.get("share_prompts"), a.get("train_sampling_strategy"))
    if cfg.data.source not in SOURCES:
        raise ValueError(f"data.source={cfg.data.source!r}: valid choices are {SOURCES}")
    check_hub(cfg.get("hub"))


def run_distill(cfg: DictConfig, stage) -> Trained:
    """SFT of the student on the configured rows, inside the stage ``distill.py`` started (``stage``: its output
    folder, rank, trainer arguments' seed and tracking): the final model saved to ``<output_dir>/model``, and what
    the publish step needs (``Trained``)."""
    model, tok = load_student(cfg.model, seed=cfg.seed)
    # the rows are tokenized and labelled (data.sft_batch): the loss covers the completion (control token, response,
    # EOS) only; rows over max_length are dropped and counted there, so TRL's preparation (labels, truncation, a
    # filter of unlabelled rows: per-row passes over every row) has nothing left to do and is skipped
    kwargs = {**(cfg.training.args.get("dataset_kwargs") or {}), "skip_prepare_dataset": True}
    args = trainer_args(DistillConfig, cfg.training.args, stage, completion_only_loss=True, dataset_kwargs=kwargs)
    stats = DropStats()
    with args.main_process_first(desc="SFT rows"):
        rows = sft_rows(cfg, tok, stats, out_dir=stage.out_dir)
    logger.info("SFT data: %s", stats.summary())
    if not len(rows):
        raise RuntimeError(f"no trainable rows after filtering: {stats.summary()}")
    info = card_info(cfg)
    trainer = DistillTrainer(model=model, args=args, train_dataset=rows.select_columns(["input_ids", "labels"]),
                         processing_class=tok, callbacks=[MetricsLogCallback(stage.out_dir, SFT_KEYS),
                                                          *hub_callbacks(cfg.get("hub"), info)])
    train_s = train(trainer)

    result = {"data": dict(stats), "train_seconds": round(train_s, 1), "train_rows": len(rows),
              "rows_by_mode": dict(Counter(rows["mode"]))}
    final, final_model = save_final_model(trainer, tok, stage.out_dir / "model")  # every rank: ZeRO-3 gathers
    if stage.is_main:
        result["model_dir"] = str(final)
    return Trained(result, final, final_model, tok, trainer.state.global_step, train_s, card=info, stats=stats)
