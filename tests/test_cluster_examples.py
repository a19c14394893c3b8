"""examples/slurm: the scripts' logic, with sbatch/srun/scontrol/torchrun/fercli stubbed.

No cluster here, so stand-ins on PATH log how they were called; the tests check
the shard arguments, the dependent merge, resuming from a checkpoint, and the
SIGTERM -> checkpoint -> requeue path.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
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
    # a training that runs until SIGTERM when STUB_WAIT is set, then "checkpoints"
    "torchrun": (
        'echo "torchrun $*" >> "$LOG"\n'
        'if [ -n "${STUB_WAIT:-}" ]; then\n'
        '  trap \'echo "checkpoint on TERM" >> "$LOG"; exit 143\' TERM\n'
        '  echo ready >> "$LOG"\n'
        '  while :; do sleep 0.05; done\n'
        'fi'
    ),
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


def test_align_array_submits_array_then_dependent_merge(tmp_path, env):
    proc = subprocess.run(["bash", str(ALIGN), "ck.h5", "work", "3", "--size", "64"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    first, second = log_lines(env)
    assert "--array=0-2" in first and "ck.h5 work 3 --size 64" in first
    assert "--dependency=afterok:1001" in second
    wrap = shlex.split(second)[-1].split("=", 1)[1]  # --wrap=...
    assert shlex.split(wrap) == ["fercli", "merge", "work/part-0000-of-0003.h5", "work/part-0001-of-0003.h5",
                                 "work/part-0002-of-0003.h5", "-o", "work/aligned.h5"]
    assert (tmp_path / "work").is_dir()


def test_align_array_task_runs_its_shard_once(tmp_path, env):
    task = {**env, "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_CPUS_PER_TASK": "4"}
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


def test_train_ddp_launches_torchrun_and_resumes(tmp_path, env):
    e = train_env(env)
    proc = subprocess.run(["bash", str(TRAIN), "plain-cnn", "ck.h5", "m.h5", "--epochs", "3"], cwd=tmp_path, env=e, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (line,) = log_lines(env)
    assert line.startswith("torchrun --nnodes=2 --nproc_per_node=4 --rdzv_id=77 --rdzv_backend=c10d --rdzv_endpoint=node7:29500")
    assert line.endswith("-m fercli train plain-cnn ck.h5 -o m.h5 --epochs 3")
    (tmp_path / "m.h5").write_bytes(b"checkpoint")
    proc = subprocess.run(["bash", str(TRAIN), "plain-cnn", "ck.h5", "m.h5"], cwd=tmp_path, env=e, capture_output=True, text=True)
    assert proc.returncode == 0 and log_lines(env)[-1].endswith("-o m.h5 --resume")


def test_train_ddp_sigterm_checkpoints_and_requeues(tmp_path, env):
    e = {**train_env(env), "STUB_WAIT": "1"}
    proc = subprocess.Popen(["bash", str(TRAIN), "plain-cnn", "ck.h5", "m.h5"], cwd=tmp_path, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while "ready" not in log_lines(env):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # what --signal=B:TERM@120 does before the time limit
    out, err = proc.communicate(timeout=30)
    lines = log_lines(env)
    assert "checkpoint on TERM" in lines, (out, err)
    assert lines[-1] == "scontrol requeue 77"
    assert proc.returncode == 143
