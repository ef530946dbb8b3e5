"""Stage 1: paired SFT distillation. `python distill.py` runs the CPU demo; see conf/distill.yaml."""

import hydra
from omegaconf import DictConfig


def distill_stage(cfg: DictConfig) -> dict:
    """The distill stage: checks before any work, the stage's set-up (thinkless.runs.stage), SFT, then the report,
    model card and Hub push, and the result (distill_result.json). Returns the result."""
    from thinkless.reporting.publish import publish_distill
    from thinkless.runs.stage import finish_stage, start_stage
    from thinkless.training import sft

    sft.check_distill(cfg)
    stage = start_stage(cfg, "distill", config_cls=sft.DistillConfig)
    trained = sft.run_distill(cfg, stage)
    return finish_stage(stage, publish_distill(cfg, stage, trained), "distill")


@hydra.main(version_base="1.3", config_path="conf", config_name="distill")
def main(cfg: DictConfig) -> None:
    from thinkless.runs.stage import run_cli

    run_cli(distill_stage, cfg)


if __name__ == "__main__":
    main()
