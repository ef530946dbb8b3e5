"""Evaluation: benchmarks x methods -> accuracy, think ratio, token cost. `python eval.py`; see conf/eval.yaml.

`model=<path or Hub id>` sets the model to evaluate. conf/model/ is a config *group* (used by distill/train), so
Hydra would read `model=...` as a choice from that group; it is rewritten to the plain key `model_path` before Hydra
parses the command line (`model_path=...` works too).
"""

import sys

import hydra
from omegaconf import DictConfig


def rewrite_model_override(argv: list[str]) -> list[str]:
    return ["model_path=" + a[len("model="):] if a.startswith("model=") else a for a in argv]


def eval_stage(cfg: DictConfig, *, generator=None, tokenizer=None) -> dict:
    """The eval stage: checks before loading anything, the stage's set-up (thinkless.runs.stage), the evaluation
    (``generator``/``tokenizer`` replace the model: tests, notebooks), and the result (results.json). Returns it."""
    from thinkless.evaluation import runner
    from thinkless.runs.stage import finish_stage, start_stage

    runner.check_eval(cfg)
    stage = start_stage(cfg, "eval")
    results = runner.run_eval(cfg, stage, generator=generator, tokenizer=tokenizer)
    finish_stage(stage, results, "eval", path=stage.out_dir / "results.json", summary=runner.tracked_summary(results))
    runner.say_done(results, stage.out_dir)
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from thinkless.runs.stage import run_cli

    run_cli(eval_stage, cfg)


if __name__ == "__main__":
    sys.argv = sys.argv[:1] + rewrite_model_override(sys.argv[1:])
    main()
