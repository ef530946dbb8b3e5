"""Stage 2: RL with any registered objective (`objective=NAME`; DeGRPO, `thinkless`, by default). `python train.py`
runs the CPU demo from distill.py's output; see conf/train.yaml."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from thinkless.runs.stage import run_cli
    from thinkless.training.rl import run_train, skip_unused_vllm_import

    skip_unused_vllm_import(cfg)
    run_cli(run_train, cfg)


if __name__ == "__main__":
    main()
