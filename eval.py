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


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from thinkless.evaluation.runner import run_eval
    from thinkless.runs.stage import run_cli

    run_cli(run_eval, cfg)


if __name__ == "__main__":
    sys.argv = sys.argv[:1] + rewrite_model_override(sys.argv[1:])
    main()
