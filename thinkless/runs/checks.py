"""Config checks that run before any work, and warnings for values that are legal but almost certainly a mistake.

Errors (``ConfigError``) name the key and what is valid: ``check_trainer_args`` checks a stage's ``args`` against the
TRL config dataclass it becomes (unknown keys, types, ``ARG_MINIMUMS`` ranges), ``check_numbers`` the other numeric
keys (``NUMERIC_KEYS``, per stage), ``check_number`` one value for code that checks its own knobs; a float beyond
float32's range is refused everywhere. Why before any work: a bad value TRL or torch would refuse only later (after
the model loads, or after training, in the report) or never. Warnings (``warn``) are logged and collected into the
stage's result JSON and wandb summary, so a finished run still shows them. What is checked: docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import fnmatch
import logging
import math
import types
import typing

from omegaconf import OmegaConf

from ..serving.requests import MAX_THINK_BIAS
from ..tasks.base import get_task, task_names

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what is valid."""


# ------------------------------------------------------------------ warnings


_WARNINGS: list[dict] = []


def warn(key: str, value, message: str) -> None:
    """A legal but suspicious config value: logged now, and reported in the stage's result and summary."""
    logger.warning("%s=%r: %s", key, value, message)
    _WARNINGS.append({"key": key, "value": value, "message": message})


def collected_warnings() -> list[dict]:
    return list(_WARNINGS)


def reset_warnings() -> None:
    _WARNINGS.clear()


# ------------------------------------------------------------------ numbers


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# The largest float32: a larger finite Python float (1e39) becomes inf in a tensor, then NaN downstream.
FLOAT32_MAX = 3.4028234663852886e38


def check_number(value, key: str, *, integer: bool = False, optional: bool = False, minimum: float | None = None,
                 maximum: float | None = None):
    """``value`` as a finite number (an int when ``integer``; otherwise within float32's range) in
    ``[minimum, maximum]``, or ``ConfigError`` naming ``key`` and the valid range."""
    if value is None and optional:
        return None
    want = "an integer" if integer else "a number"
    if not _is_number(value) or (integer and isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"{key}={value!r}: expected {want}{' or null' if optional else ''}")
    if not math.isfinite(value):
        raise ConfigError(f"{key}={value!r}: expected a finite number (not NaN or infinite)")
    if maximum is not None and (value > maximum or (minimum is not None and value < minimum)):
        raise ConfigError(f"{key}={value!r}: must be in [{minimum if minimum is not None else '-inf'}, {maximum}]")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}={value!r}: must be >= {minimum}")
    if not integer and abs(value) > FLOAT32_MAX:
        raise ConfigError(f"{key}={value!r}: outside float32's range (|x| <= {FLOAT32_MAX:.4g}), where it is used")
    return int(value) if integer else value


# Keys outside the trainer's ``args`` that hold numbers, per stage. ``(pattern, integer, optional)``, optionally
# followed by ``(minimum, maximum)`` (None: unbounded) where a value outside can only fail later (a report over no
# problems fails after the whole training run) or overflow float32 (a think bias).
_POSITIVE = (1, None)
_BIAS = (-MAX_THINK_BIAS, MAX_THINK_BIAS)
_COMMON = [("seed", True, False), ("threads", True, True, *_POSITIVE)]  # threads=0 meant torch's default, silently
# a sampling temperature (0 divides by zero: the report failed after the whole RL run)
_TEMPERATURE = (1e-3, None)
# seconds per math-verify check: below this every answer that needs it times out and is graded wrong, in silence
_TIMEOUT = (0.1, None)
_REPORT = [("report.free_samples", True, False, *_POSITIVE), ("report.free_temperature", False, False, *_TEMPERATURE),
           ("report.max_new_tokens", True, False, *_POSITIVE), ("report.batch_size", True, False, *_POSITIVE),
           ("report.rewards.*", False, False), ("report.threshold_biases.*", False, False, *_BIAS),
           ("report.threshold_think_ratios.*", False, False),
           ("report.benchmark.n_per_level", True, False, *_POSITIVE), ("report.benchmark.seed", True, False),
           ("report.benchmark.limit", True, True, *_POSITIVE)]
NUMERIC_KEYS = {
    "distill": _COMMON + _REPORT + [("data.num_problems", True, False), ("data.seed", True, False),
                                    ("data.limit", True, True), ("data.level_weights.*", False, False),
                                    ("data.budget_prompts", False, True, 0, 1),
                                    ("data.max_trace", True, True, 0, None),
                                    ("data.batch_size", True, False), ("data.num_proc", True, True),
                                    ("data.*_teacher.temperature", False, False),
                                    ("data.*_teacher.top_p", False, False),
                                    ("data.*_teacher.max_new_tokens", True, False), ("data.*_teacher.n", True, False)],
    # objective.* knobs are checked by the objective itself (thinkless.objectives.base), naming the key
    "train": _COMMON + _REPORT + [("rl.grading_timeout", False, False, *_TIMEOUT), ("rl_data.num_problems", True, False),
                                  ("rl_data.seed", True, False), ("rl_data.limit", True, True),
                                  ("rl_data.max_prompt_tokens", True, True), ("rl_data.level_weights.*", False, False),
                                  ("rl_data.validation.n_per_level", True, False, *_POSITIVE),
                                  ("rl_data.validation.limit", True, True)],
    "eval": _COMMON + [("sampling.temperature", False, False, 0, None), ("sampling.top_p", False, False, 0, 1),
                       ("sampling.max_new_tokens", True, False, *_POSITIVE), ("sampling.n", True, False, *_POSITIVE),
                       ("generation.batch_size", True, False, *_POSITIVE), ("generation.chunk_size", True, True),
                       ("generation.vllm.gpu_memory_utilization", False, False),
                       ("generation.vllm.tensor_parallel_size", True, False),
                       ("generation.vllm.max_model_len", True, True), ("grading.timeout", False, False, *_TIMEOUT),
                       ("limit", True, True, *_POSITIVE), ("ks.*", True, False, *_POSITIVE), ("rewards.*", False, False),
                       ("method.*.think_bias", False, True, *_BIAS), ("method.*.biases.*", False, False, *_BIAS),
                       ("method.*.n", True, True), ("method.*.budget", False, True), ("method.*.num_wait", True, True), ("benchmark.*.limit", True, True),
                       ("benchmark.*.max_new_tokens", True, True), ("benchmark.*.batch_size", True, True),
                       ("benchmark.*.n_per_level", True, True, *_POSITIVE)],
}


def _select(tree, parts: list[str], prefix: str):
    """``(key, value)`` for every path of ``tree`` matching the pattern ``parts``."""
    if not parts:
        yield prefix, tree
        return
    head, rest = parts[0], parts[1:]
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = ((str(i), v) for i, v in enumerate(tree))
    else:
        return
    for k, v in items:
        if fnmatch.fnmatchcase(str(k), head):
            yield from _select(v, rest, f"{prefix}.{k}" if prefix else str(k))


def check_numbers(cfg, patterns) -> None:
    """Every key of ``cfg`` matching a ``(pattern, integer, optional[, minimum, maximum])`` holds a finite number
    in range (``ConfigError``)."""
    tree = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    for pattern, integer, optional, *bounds in patterns:
        lo, hi = bounds or (None, None)
        for key, value in _select(tree, pattern.split("."), ""):
            # a matching subtree (a benchmark's settings) is not a value
            if not isinstance(value, (dict, list)):
                check_number(value, key, integer=integer, optional=optional, minimum=lo, maximum=hi)


# Sections that may hold a synthetic task, per stage (``source: synthetic`` or ``type: synthetic``).
SYNTHETIC_KEYS = {"distill": ["data", "report.benchmark"], "train": ["rl_data", "rl_data.validation", "report.benchmark"],
                  "eval": ["benchmark.*"]}


# The config group that fills a benchmark section: `report.benchmark=graded` on the command line sets the section to
# the text "graded" (Hydra), and the stage would fail at its report, after training; the group's override picks the file
GROUP_OF = {"report.benchmark": "benchmark@report.benchmark", "rl_data.validation": "benchmark@rl_data.validation",
            "benchmark": "benchmark@benchmark"}


def check_synthetic(cfg, keys) -> None:
    """A synthetic section's ``variant`` (a generated task's name) and ``levels`` are valid for each other; a section
    given as a name instead of settings (``report.benchmark=graded``) says how to pick the file (``ConfigError``
    naming the key)."""
    tree = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    for pattern in keys:
        for key, sec in _select(tree, pattern.split("."), ""):
            if isinstance(sec, str):
                group = GROUP_OF.get(key) or GROUP_OF.get(key.rpartition(".")[0], "").replace(
                    "@benchmark", f"@{key}") or key
                raise ConfigError(f"{key}={sec!r}: a section of settings, not a name; to pick conf/"
                                  f"{group.split('@')[0]}/{sec}.yaml use {group}={sec}")
            if not isinstance(sec, dict) or "synthetic" not in (sec.get("source"), sec.get("type")):
                continue
            variant = sec.get("variant", "fold")
            if variant not in task_names(generated=True):
                raise ConfigError(f"{key}.variant={variant!r}: valid choices are {task_names(generated=True)}")
            task = get_task(variant)
            for lv in sec.get("levels") or []:
                if isinstance(lv, bool) or not isinstance(lv, int) or lv not in task.levels():
                    raise ConfigError(f"{key}.levels: {lv!r} is not a level of the {variant} task "
                                      f"({task.level_range()}" + (f": {task.level_note})" if task.level_note else ")"))


# ------------------------------------------------------------------ trainer args against the TRL dataclass


def _allowed(annotation) -> set:
    """The plain types an annotation allows (``Optional[float]`` -> {float, NoneType})."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_allowed(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(a) for a in typing.get_args(annotation)}
    if origin is not None:
        return {origin}
    return {annotation} if isinstance(annotation, type) else {object}


def _value_problem(value, allowed: set) -> str | None:
    if object in allowed or str in allowed or any(isinstance(t, type) and issubclass(t, enum.Enum) for t in allowed):
        # text is legal (TRL parses strategies, schedulers, ...): only a non-finite number is surely wrong
        return "a finite number" if isinstance(value, float) and not math.isfinite(value) else None
    if value is None:
        return None  # left to TRL (a None default)
    if allowed & {int, float}:
        if not _is_number(value):
            return "a number" if float in allowed else "an integer"
        if not math.isfinite(value):
            return "a finite number"
        if float not in allowed and isinstance(value, float) and not value.is_integer():
            return "an integer"
        if abs(value) > FLOAT32_MAX:
            return f"a number within float32's range (|x| <= {FLOAT32_MAX:.4g})"
        return None
    if allowed == {bool} or allowed == {bool, type(None)}:
        return None if isinstance(value, bool) else "true or false"
    return None


# Trainer ``args`` fields whose out-of-range values TRL / torch refuse only after the model is loaded (or never):
# name -> (minimum, why). ``max_steps`` is apart: -1 (train ``num_train_epochs``) or >= 1 (0 trained one step).
ARG_MINIMUMS = {"learning_rate": (0, "a learning rate"),
                "num_generations": (2, "completions per prompt: GRPO compares a group's completions"),
                "num_generations_eval": (1, "completions per validation prompt"),
                "per_device_train_batch_size": (1, "rows per device and step"),
                "gradient_accumulation_steps": (1, "batches per optimizer step"),
                "max_completion_length": (1, "tokens per completion"), "max_length": (1, "tokens per row"),
                "length_bucket_rows": (0, "rows per length bucket; 0: TRL's one padded forward")}


# Sampling and loss knobs whose bad values the libraries accept in silence or refuse only after the model loads:
# (exclusive lower bound, inclusive upper bound, what).
ARG_OPEN_RANGES = {"temperature": (0, None, "the rollouts' sampling temperature (0 divides by zero)"),
                   "top_p": (0, 1, "the rollouts' nucleus (above 1 it silently means 1)"),
                   "epsilon": (0, None, "the PPO clip's lower range"),
                   "epsilon_high": (0, None, "the PPO clip's upper range")}


def _range_problem(name: str, value) -> str | None:
    if not _is_number(value):
        return None
    if name == "max_steps" and value != -1 and value < 1:
        return "-1 (train num_train_epochs) or an integer >= 1"
    if name == "beta" and value < 0:
        return ">= 0 (the KL penalty's weight; a negative one pays the policy to leave the reference)"
    if name in ARG_OPEN_RANGES:
        lo, hi, what = ARG_OPEN_RANGES[name]
        if value <= lo or (hi is not None and value > hi):
            return f"in ({lo}, {hi if hi is not None else 'inf'}] ({what})"
    if name in ARG_MINIMUMS and value < ARG_MINIMUMS[name][0]:
        lo, what = ARG_MINIMUMS[name]
        return f">= {lo} ({what})"
    return None


def check_trainer_args(config_cls, args_cfg, key: str) -> None:
    """Every key of ``args_cfg`` (the ``key`` mapping, e.g. ``rl.args``) is a field of ``config_cls`` with a value
    its type allows; ``ConfigError`` naming the key and what is valid otherwise."""
    args = OmegaConf.to_container(args_cfg, resolve=True) if OmegaConf.is_config(args_cfg) else dict(args_cfg or {})
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # an annotation that does not evaluate: fall back to the raw ones
        hints = {f.name: f.type for f in dataclasses.fields(config_cls)}
    names = {f.name for f in dataclasses.fields(config_cls) if f.init}
    for name, value in args.items():
        if name not in names:
            close = difflib.get_close_matches(name, sorted(names), n=3)
            raise ConfigError(f"{key}.{name}: not a field of {config_cls.__name__}"
                              + (f"; did you mean {' / '.join(close)}?" if close else ""))
        want = _value_problem(value, _allowed(hints.get(name, object)))
        if want:
            raise ConfigError(f"{key}.{name}={value!r}: expected {want} ({config_cls.__name__}.{name})")
        valid = _range_problem(name, value)
        if valid:
            raise ConfigError(f"{key}.{name}={value!r}: valid values are {valid}")
