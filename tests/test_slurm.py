"""examples/slurm against a real SLURM: the scripts as shipped, on a one-node cluster.

`examples/slurm/local-cluster.sh start` (root) brings up slurmctld + slurmd + munged
under $FERCLI_SLURM_DIR (default /tmp/fercli-slurm); `.ci/run` does it around `make test`.
Without that cluster these tests skip, saying how to start it -- unless
FERCLI_REQUIRE_SLURM=1 (set by .ci/run once the cluster is up), then they fail.

The jobs run the repository's venv (VENV=<repo>/.venv, the scripts' documented
variable) and ask for what the node has through options the scripts document
(SBATCH_ARGS / SBATCH_MEM_PER_NODE for the array; sbatch options and RANKS_PER_NODE
for training).  Data are tiny: the module adds well under a minute on two cores.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, fercli
from test_merge import h5_arrays
from train_helpers import max_diff, tiny_clips, weights, write

pytestmark = pytest.mark.slurm

ALIGN = ROOT / "examples" / "slurm" / "align-array.sbatch"
TRAIN = ROOT / "examples" / "slurm" / "train-ddp.sbatch"
CONF = Path(os.environ.get("FERCLI_SLURM_DIR", "/tmp/fercli-slurm")) / "slurm.conf"
HOW = "run examples/slurm/local-cluster.sh start as root (see docs/cluster.md)"
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "GONE"}
# The training run both jobs make and a single process repeats: plain-cnn without
# BatchNorm/dropout (per-rank statistics and masks would differ), 3 global batches of 32
# per epoch (few steps, so DDP's different summation order stays below 1e-6), 8 epochs.
TRAIN_ARGS = ["--fold", "0", "--frame", "all", "--config", "dropout=0", "--config", "batch_norm=false", "--config", "width=0.5",
              "--batch-size", "32", "--epochs", "8", "--optimizer", "sgd", "--lr", "0.02", "--device", "cpu"]


def _cluster_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    env.update(SLURM_CONF=str(CONF), VENV=str(Path(sys.executable).parent.parent))
    return env


@pytest.fixture(scope="module")
def env():
    problem = None
    if not shutil.which("sbatch"):
        problem = "SLURM is not installed"
    elif not CONF.is_file():
        problem = f"no local cluster configuration at {CONF}"
    else:
        up = subprocess.run(["sinfo", "-h", "-o", "%T"], env=_cluster_env(), capture_output=True, text=True, timeout=30)
        if up.returncode != 0 or not re.search(r"idle|mixed|alloc", up.stdout):
            problem = f"the local cluster does not answer ({(up.stderr or up.stdout).strip()[:200]})"
    if problem:
        if os.environ.get("FERCLI_REQUIRE_SLURM") == "1":
            pytest.fail(f"{problem}, but FERCLI_REQUIRE_SLURM=1")
        pytest.skip(f"{problem}: {HOW}")
    return _cluster_env()


def run(cmd, env, cwd=None) -> str:
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
    return proc.stdout


def job_state(job: str, env) -> str:
    proc = subprocess.run(["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return "GONE"  # purged (MinJobAge) after it ended
    states = re.findall(r"JobState=(\S+)", proc.stdout)
    return states[0] if len(set(states)) == 1 else "ARRAY:" + ",".join(states)


def wait_ended(job: str, env, log: Path | None = None, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while (state := job_state(job, env)) not in ENDED:
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job], env=env)
            pytest.fail(f"job {job} still {state} after {timeout} s; log:\n{read(log)}")
        time.sleep(0.25)
    return state


def read(path: Path | None) -> str:
    return path.read_text(errors="replace") if path is not None and path.exists() else "(no log)"


def submit_train(env, cwd: Path, out: str, ranks: int) -> tuple[str, Path]:
    job = run(["sbatch", "--parsable", "--gpus-per-node=0", "-c", "1", "--mem=1G", "-o", "train-%j.out",
               TRAIN, "plain-cnn", "data.h5", out, *TRAIN_ARGS], {**env, "RANKS_PER_NODE": str(ranks)}, cwd).strip().split(";")[0]
    return job, cwd / f"train-{job}.out"


# --------------------------------------------------------------------------- align array


def test_align_array_with_afterok_merge_equals_unsharded_run(env, tmp_path):
    fercli("synth", "--subjects", "2", "--classes", "happy,surprise", "--frames", "4:6", "--size", "320x240",
           "-o", tmp_path / "raw.h5", check=True)
    fercli("align", tmp_path / "raw.h5", "--size", "32", "-o", tmp_path / "whole.h5", check=True)
    task_env = {**env, "SBATCH_ARGS": "-c 1", "SBATCH_MEM_PER_NODE": "500M"}
    out = run(["bash", ALIGN, "raw.h5", "work", "3", "--size", "32"], task_env, tmp_path)
    m = re.search(r"align array (\d+) \(3 tasks\) and merge job (\d+)", out)
    assert m, out
    array_id, merge_id = m.groups()
    merge_log = tmp_path / "work" / f"merge-{merge_id}.out"
    assert wait_ended(merge_id, env, merge_log) in ("COMPLETED", "GONE"), read(merge_log)
    task_logs = sorted(tmp_path.glob(f"fercli-align-{array_id}_*.out"))
    assert len(task_logs) == 3, "one log per array task"
    whole, merged = h5_arrays(tmp_path / "whole.h5"), h5_arrays(tmp_path / "work" / "aligned.h5")
    assert sorted(whole) == sorted(merged)
    for name in whole:  # 4 clips over 3 shards (1, 1, 2): uneven blocks, merged in order
        assert np.array_equal(whole[name], merged[name]), name

    # Resubmitting only a lost shard recomputes exactly it (shard 1 of 3, not 1 of 1).
    part = tmp_path / "work" / "part-0001-of-0003.h5"
    before = h5_arrays(part)
    part.unlink()
    job = run(["sbatch", "--parsable", "-c", "1", "--mem=500M", "--array=1", ALIGN, "raw.h5", "work", "3", "--size", "32"],
              env, tmp_path).strip().split(";")[0]
    assert wait_ended(job, env) in ("COMPLETED", "GONE"), read(tmp_path / f"fercli-align-{job}_1.out")
    after = h5_arrays(part)
    assert sorted(before) == sorted(after) and all(np.array_equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def train_jobs(env, tmp_path_factory):
    """Two 2-rank jobs of the same run (one to be pre-empted) and the single-process run,
    all under way at once; each test waits for what it checks."""
    cwd = tmp_path_factory.mktemp("slurm-train")
    write(cwd / "data.h5", tiny_clips(subjects=6, size=32))
    jobs = {"ddp": submit_train(env, cwd, "ddp.h5", 2), "preempted": submit_train(env, cwd, "preempted.h5", 2)}
    single = subprocess.Popen([sys.executable, "-m", "fercli", "train", "plain-cnn", "data.h5", "-o", "single.h5", "-q", *TRAIN_ARGS],
                              cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, stderr=subprocess.PIPE)
    yield cwd, jobs, single
    for job, _ in jobs.values():
        subprocess.run(["scancel", job], env=env)
    single.kill()


def single_run(train_jobs) -> Path:
    cwd, _, single = train_jobs
    _, err = single.communicate(timeout=300)
    assert single.returncode == 0, err.decode()[-2000:]
    return cwd / "single.h5"


def test_preempted_ddp_job_requeues_resumes_and_equals_uninterrupted_run(env, train_jobs):
    cwd, jobs, _ = train_jobs
    job, log = jobs["preempted"]
    deadline = time.monotonic() + 180
    while "epoch 1/8" not in read(log):  # the first checkpoint is written: pre-empt now
        assert time.monotonic() < deadline and job_state(job, env) not in ENDED, read(log)
        time.sleep(0.1)
    # What `#SBATCH --signal=B:TERM@120` does before a time limit: SIGTERM to the batch shell.
    run(["scancel", "--batch", "--signal=TERM", job], env)
    assert wait_ended(job, env, log) in ("COMPLETED", "GONE"), read(log)
    text = read(log)
    stop = re.search(r"fercli: stopped by signal 15 at epoch (\d) of 8; checkpoint saved", text)
    assert stop and int(stop.group(1)) < 8, f"the job was not stopped in the middle of training:\n{text}"
    assert f"requeueing job {job}" in text and "continuing the checkpoint at preempted.h5" in text, text
    assert text.count("stopped by signal") == 1, "only rank 0 reports the stop"
    assert "Killed" not in text, "the ranks must get SIGTERM (and stop at their checkpoint), not SIGKILL"
    ddp_log = jobs["ddp"][1]
    assert wait_ended(jobs["ddp"][0], env, ddp_log) in ("COMPLETED", "GONE"), read(ddp_log)
    # Resumed on CPU: bit-identical to the same 2-rank run left alone.
    assert max_diff(weights(cwd / "preempted.h5"), weights(cwd / "ddp.h5")) == 0.0


def test_ddp_job_two_cpu_ranks_equals_one_process(env, train_jobs):
    import h5py
    import json

    cwd, jobs, _ = train_jobs
    job, log = jobs["ddp"]
    assert wait_ended(job, env, log) in ("COMPLETED", "GONE"), read(log)
    with h5py.File(cwd / "ddp.h5") as f:
        run_info = json.loads(f.attrs["extra"])["run"]
    assert run_info["world_size"] == 2 and run_info["host"]
    assert max_diff(weights(cwd / "ddp.h5"), weights(single_run(train_jobs))) < 1e-6
