"""examples/slurm: what a one-node cluster cannot show, with the SLURM commands stubbed.

tests/test_slurm.py runs the scripts on a real (one-node) SLURM cluster.  Here
stand-ins on PATH log how they were called, for what needs several nodes or
GPUs (the torchrun command line of a 2-node x 4-GPU job) and for the task-side
shard arithmetic and argument checks, which need no cluster at all.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALIGN = ROOT / "examples" / "slurm" / "align-array.sbatch"
TRAIN = ROOT / "examples" / "slurm" / "train-ddp.sbatch"

STUBS = {
    # sbatch --parsable prints a job id; log every call
    "sbatch": 'echo "sbatch $(printf "%q " "$@")" >> "$LOG"; echo "$((1000 + $(grep -c ^sbatch "$LOG")));cluster"',
    "scontrol": 'if [ "$1" = show ]; then echo node7; echo node8; else echo "scontrol $*" >> "$LOG"; fi',
    "srun": 'while [[ $1 == -* ]]; do shift; done; exec "$@"',  # drop srun's own options
    "fercli": 'echo "fercli $*" >> "$LOG"',
    "torchrun": 'echo "torchrun $*" >> "$LOG"; echo "OMP_NUM_THREADS=$OMP_NUM_THREADS" >> "$LOG"',
}


@pytest.fixture
def env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return {**clean, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log)}


def log_lines(env):
    return Path(env["LOG"]).read_text().splitlines()


def test_align_array_task_runs_its_shard_once(tmp_path, env):
    # a resubmitted `--array=1`: SLURM says 1 task, the shard is still 1 of SHARDS=3
    task = {**env, "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_CPUS_PER_TASK": "4"}
    (tmp_path / "work").mkdir()
    proc = subprocess.run(["bash", str(ALIGN), "ck.h5", "work", "3", "--size", "64"], cwd=tmp_path, env=task, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert log_lines(env) == ["fercli align ck.h5 --shard 1/3 --workers 4 -o work/part-0001-of-0003.h5 --size 64"]
    (tmp_path / "work" / "part-0001-of-0003.h5").write_bytes(b"done")
    proc = subprocess.run(["bash", str(ALIGN), "ck.h5", "work", "3"], cwd=tmp_path, env=task, capture_output=True, text=True)
    assert proc.returncode == 0 and "already done" in proc.stdout
    assert len(log_lines(env)) == 1  # the finished shard is not recomputed


def test_align_array_usage_error(tmp_path, env):
    proc = subprocess.run(["bash", str(ALIGN), "ck.h5", "work", "x"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "SHARDS" in proc.stderr and log_lines(env) == []


def train_env(env):
    return {**env, "SLURM_JOB_ID": "77", "SLURM_GPUS_ON_NODE": "4", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "node[7-8]", "SLURM_CPUS_PER_TASK": "16"}


def test_train_ddp_torchrun_line_for_two_nodes_of_four_gpus(tmp_path, env):
    proc = subprocess.run(["bash", str(TRAIN), "plain-cnn", "ck.h5", "m.h5", "--epochs", "3"], cwd=tmp_path, env=train_env(env), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    line, threads = log_lines(env)
    assert threads == "OMP_NUM_THREADS=4"  # 16 CPUs / 4 ranks
    # one rank per GPU, rendezvous on the first node at a port of this job's own
    assert line.startswith("torchrun --nnodes=2 --nproc_per_node=4 --rdzv_id=77 --rdzv_backend=c10d --rdzv_endpoint=node7:29577")
    assert line.endswith("-m fercli train plain-cnn ck.h5 -o m.h5 --epochs 3")


def test_train_ddp_ranks_per_node_and_threads(tmp_path, env):
    # CPU nodes: RANKS_PER_NODE ranks share the task's CPUs; MASTER_PORT overrides the port
    e = {**train_env(env), "SLURM_GPUS_ON_NODE": "0", "RANKS_PER_NODE": "8", "MASTER_PORT": "31000"}
    proc = subprocess.run(["bash", str(TRAIN), "plain-cnn", "ck.h5", "m.h5"], cwd=tmp_path, env=e, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    line, threads = log_lines(env)
    assert "--nproc_per_node=8" in line and "--rdzv_endpoint=node7:31000" in line
    assert threads == "OMP_NUM_THREADS=2"  # 16 CPUs / 8 ranks
    e = {**train_env(env), "SLURM_GPUS_ON_NODE": "0", "SLURM_CPUS_PER_TASK": "1"}
    subprocess.run(["bash", str(TRAIN), "plain-cnn", "ck.h5", "m.h5"], cwd=tmp_path, env=e, check=True, capture_output=True)
    assert "--nproc_per_node=1" in log_lines(env)[2] and log_lines(env)[3] == "OMP_NUM_THREADS=1"  # no GPU: one CPU rank
