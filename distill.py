"""Stage 1: paired SFT distillation. `python distill.py` runs the CPU demo; see conf/distill.yaml."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="distill")
def main(cfg: DictConfig) -> None:
    from thinkless.runs.stage import run_cli
    from thinkless.training.sft import run_distill

    run_cli(run_distill, cfg)


if __name__ == "__main__":
    main()
