"""Stage 2: RL with any registered objective (`objective=NAME`; DeGRPO, `thinkless`, by default). `python train.py`
runs the CPU demo from distill.py's output; see conf/train.yaml."""

import hydra
from omegaconf import DictConfig


def train_stage(cfg: DictConfig) -> dict:
    """The train stage: checks before any work, the stage's set-up (thinkless.runs.stage), RL, then the pipeline
    report, model card and Hub push, and the result (train_result.json). Returns the result."""
    from thinkless.reporting.publish import publish_train
    from thinkless.runs.stage import finish_stage, start_stage
    from thinkless.training import rl

    objective, budget = rl.check_train(cfg)
    stage = start_stage(cfg, "train", config_cls="thinkless.training.trainer:AdaptiveGRPOConfig")
    trained = rl.run_train(cfg, stage, objective, budget)
    return finish_stage(stage, publish_train(cfg, stage, trained), "train")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from thinkless.runs.stage import run_cli
    from thinkless.training.rl import skip_unused_vllm_import

    skip_unused_vllm_import(cfg)
    run_cli(train_stage, cfg)


if __name__ == "__main__":
    main()
