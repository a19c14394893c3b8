"""Chapter 3 as one job per fold and model (issue 21): `make chapter3-main LAUNCH=slurm`.

A tiny synthetic chapter 3 (4 subjects x 2 classes, 2 folds, two models: the static CNN and the
SF CNN-GRU that starts from each fold's static CNN) is run once here (LAUNCH=, the local run,
shared by every test), then on the one-node cluster of `examples/slurm/local-cluster.sh` with one
fold job cancelled mid-way and resumed by the next make.  Checked: every fold of every model and
every evaluation is one job (counted in slurmctld's job completion log), the printed table and
every weight equal the local run's, the joined models equal what `train --folds all` writes,
and the join refuses fold models of another run.  The local run and the join tests need no
cluster; the cluster test skips without one unless FERCLI_REQUIRE_SLURM=1 (tests/test_slurm.py).
What does not need a make run (the folds-all reference, the other run's fold model, the
refusals) runs in this process: each fercli process costs seconds of start-up on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import ROOT, assert_user_error, fercli
from test_makefile import make_n
from fercli.cli import app
from fercli.artifacts import read_lineage
from fercli.errors import FercliError
from fercli.protocol.foldjoin import join_model_files
from fercli.protocol.provenance import model_summary
from test_slurm import CONF, env  # noqa: F401  (the cluster fixture)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")

MODELS = ["static", "gru-sf"]
FOLDS = 2
# 12 epochs of the static CNN (0.2 s each): time for the test to cancel fold 1's job after its first checkpoint
VARS = ["CH3_SYNTH=--subjects 4 --clips-per-class 1 --classes happy,surprise --size 320x240 --seed 0", f"FOLDS={FOLDS}",
        "CH3_EPOCHS=12", "CH3_SEQ_EPOCHS=1", "CH3_FUSE_EPOCHS=1", "CH3_MAIN=static (a)=gru-sf", "EVAL_FLAGS=--no-latency"]


def cli(*args) -> None:
    """fercli in this process (one torch import for all); torch's global settings restored after."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    assert result.exit_code == 0, result.output


def make(out: Path, *args: str, env_vars: dict | None = None, **kw) -> subprocess.Popen:
    full_env = {**(env_vars or os.environ), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(["make", "--no-print-directory", "chapter3-main", f"OUT={out}", *VARS, *args], cwd=ROOT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 400) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def table(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith(("|", "###"))]


def run_dir(out: Path) -> Path:
    (found,) = out.glob("ch3/synth-*/k2-all-folds-*")
    return found


def arrays(path: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return found


def assert_same_arrays(a: Path, b: Path) -> None:
    x, y = arrays(a), arrays(b)
    assert sorted(x) == sorted(y), f"{a} vs {b}"
    for name in x:
        assert np.array_equal(x[name], y[name]), f"{name} differs: {a} vs {b}"


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The local run (LAUNCH=), two recipes at a time."""
    out = tmp_path_factory.mktemp("ch3-serial")
    log = finish(make(out, "-j2"))
    assert "GRU with SF sequence" in log, log[-3000:]
    return out, run_dir(out), log


def test_joined_fold_models_are_the_folds_all_run(serial, tmp_path):
    """Fold k trained alone (its own target, its own job) is fold k of `train --folds all`:
    the join of the folds equals the serial --folds all model in every array."""
    out, run, _ = serial
    plan = subprocess.run(["make", "-n", "-B", "--no-print-directory", str(run / "fold0" / "static.h5"), f"OUT={out}", *VARS],
                          cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    (line,) = [x for x in plan.splitlines() if " train plain-cnn " in x]
    args = line.split(" train ", 1)[1].split(" -o ")[0].split()
    assert "--fold" in args
    args[args.index("--fold"):args.index("--fold") + 2] = ["--folds", "all"]
    cli("train", *args, "-o", tmp_path / "all-folds.h5", "-q")
    assert_same_arrays(run / "static.h5", tmp_path / "all-folds.h5")
    with h5py.File(run / "static.h5") as f, h5py.File(tmp_path / "all-folds.h5") as g:
        joined, whole = json.loads(f.attrs["extra"]), json.loads(g.attrs["extra"])
    assert joined["partition"] == whole["partition"] and joined["progress"] == whole["progress"]
    assert joined["run"]["options"] == whole["run"]["options"]
    timing = ("seconds", "img_per_s")
    strip = [[{k: v for k, v in h.items() if k not in timing} for h in fold["history"]] for fold in joined["folds"]]
    assert strip == [[{k: v for k, v in h.items() if k not in timing} for h in fold["history"]] for fold in whole["folds"]]
    # what the tables name rows from: the join's history is the --folds all model's (one fold's chain)
    with h5py.File(run / "static.h5") as f, h5py.File(tmp_path / "all-folds.h5") as g:
        assert model_summary(read_lineage(f)) == model_summary(read_lineage(g))
    info = CliRunner().invoke(app, ["info", str(run / "gru-sf.h5")], terminal_width=200)
    assert info.exit_code == 0 and "fold 0" in info.output and "fold 1" in info.output, info.output


def test_join_refuses_fold_models_of_another_run(serial, tmp_path):
    out, run, _ = serial
    (folds,) = out.glob("ch3/synth-*/folds-k2.h5")
    # the same clips split again (another split seed): another data artifact
    cli("split", folds.parent / "planes.h5", "--folds", "2", "--by", "subject", "--seed", "1", "-o", tmp_path / "other.h5")
    fit = ["--fold", "1", "--epochs", "1", "--batch-size", "8", "--schedule", "cosine", "--threads", "1", "--device", "cpu", "--seed", "0", "-q"]
    cli("train", "plain-cnn", tmp_path / "other.h5", "--config", "width=0.25", "--config", "dropout=0.3", *fit, "-o", tmp_path / "f1.h5")
    # the same data and folds, another configuration
    cli("train", "plain-cnn", folds, "--config", "width=0.5", "--config", "dropout=0.3", *fit, "-o", tmp_path / "wide.h5")
    joined = tmp_path / "joined.h5"
    # the command as a user runs it: exit 2, one sentence, no output
    assert_user_error(fercli("merge", run / "fold0/static.h5", tmp_path / "f1.h5", "-o", joined), "other data")
    assert not joined.exists()
    cases = [([run / "fold0/static.h5", tmp_path / "f1.h5"], "other data"),
             ([run / "fold0/static.h5", run / "fold1/gru-sf.h5"], "'cnn-gru' model"),
             ([run / "fold0/gru-sf.h5", run / "fold1/static.h5"], "'plain-cnn' model"),
             ([run / "fold0/static.h5", tmp_path / "wide.h5"], "configuration differs (width)"),
             ([run / "fold0/static.h5", run / "fold0/static.h5"], "fold 0 is given twice"),
             ([run / "fold1/static.h5"], "untested"),
             ([run / "static.h5", run / "fold1/static.h5"], "already holds several folds")]
    for paths, words in cases:
        with pytest.raises(FercliError, match=re.escape(words)):
            join_model_files([str(p) for p in paths])


def completed_jobs(start: int) -> list[tuple[str, str]]:
    """(job name, state) of the jobs slurmctld logged as ended after line ``start``."""
    lines = (CONF.parent / "log" / "jobcomp.log").read_text().splitlines()[start:]
    return [(re.search(r"Name=(\S+)", x).group(1), re.search(r"JobState=(\S+)", x).group(1)) for x in lines]


@pytest.mark.slurm
def test_chapter3_on_slurm_one_job_per_fold_and_model_resumes_and_equals_the_local_run(env, serial, tmp_path):  # noqa: F811
    out, local_run, local_log = serial
    jobcomp = CONF.parent / "log" / "jobcomp.log"
    assert jobcomp.exists() or not completed_jobs(0), "the cluster logs finished jobs (examples/slurm/local-cluster.sh start)"
    start = len(jobcomp.read_text().splitlines()) if jobcomp.exists() else 0
    # the prepared data of the local run (raw, planes, folds) with their times: only models are made again
    data = local_run.parent
    mine = tmp_path / "out" / data.relative_to(out)
    mine.mkdir(parents=True)
    for f in data.glob("*.h5"):
        shutil.copy2(f, mine / f.name)
    run = mine / local_run.name
    slurm = ["LAUNCH=slurm", "SLURM_ARGS=--mem=500M"]

    # First make: fold 1's static CNN is cancelled after its first checkpoint; -k builds the rest.
    proc = make(tmp_path / "out", "-j4", "-k", *slurm, env_vars=env)
    ckpt, name = run / "fold1" / "static.ckpt.h5", f"fercli:{(run / 'fold1' / 'static.h5').relative_to(tmp_path / 'out')}"
    deadline = time.monotonic() + 300
    while not ckpt.exists():
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc)[-3000:]
        time.sleep(0.1)
    subprocess.run(["scancel", "--name", name], env=env, check=True, timeout=30)
    first = finish(proc)
    assert proc.returncode != 0, first[-3000:]
    assert ckpt.exists() and not (run / "fold1" / "static.h5").exists(), "the cancelled job left its checkpoint, not a target"
    assert not list(run.glob("fold1/gru-*.h5")) and not (run / "static.h5").exists()

    # Second make: resumes the checkpoint and builds only what is missing.
    second = finish(make(tmp_path / "out", "-j4", *slurm, env_vars=env))
    assert "GRU with SF sequence" in second, second[-3000:]
    assert re.search(r"srun .*fold1/static\.h5 .*--resume -o \S+fold1/static\.ckpt\.h5", second), second[-3000:]
    assert not re.search(r"-o \S+/fold0/\S+\.ckpt\.h5", second), "fold 0's models were finished: not trained again"
    assert not ckpt.exists()

    assert table(second) == table(local_log) and len(table(second)) == 2 + 1 + len(MODELS)
    for m in MODELS:
        assert_same_arrays(run / f"{m}.h5", local_run / f"{m}.h5")

    jobs = completed_jobs(start)
    rel = run.relative_to(tmp_path / "out")
    expected = sorted([f"fercli:{rel}/fold{k}/{m}.h5" for m in MODELS for k in range(FOLDS)] + [f"fercli:{rel}/report-{m}.h5" for m in MODELS])
    assert sorted(n for n, s in jobs if s == "COMPLETED") == expected, jobs
    assert [(n, s) for n, s in jobs if s != "COMPLETED"] == [(name, "CANCELLED")], jobs


def test_chapter4_with_data_plans_one_job_per_fold_and_model(tmp_path):
    """`make -n chapter4 DATA=... LAUNCH=slurm`: every fold of every CK+ model is a job of its own
    (`train --fold k`), each second stage starts from its own fold's first stage, the joins and the
    tables stay local, the identity pre-training and FER2013's official-split models are one job
    each, and LAUNCH= runs the same commands without srun.  Needs make only, no cluster."""
    data, fer = tmp_path / "CK+", tmp_path / "fer2013.h5"
    (data / "S001").mkdir(parents=True)
    (data / "S001" / "001.png").write_bytes(b"not read by make -n")
    fer.write_bytes(b"not read by make -n")
    variables = {"DATA": str(data), "FER2013": str(fer), "CH4_FOLDS": "3", "CH4_NETS": "mobilenet-v3"}
    plan = make_n("chapter4", tmp_path / "out", LAUNCH="slurm", **variables).splitlines()
    local = make_n("chapter4", tmp_path / "out", **variables).splitlines()
    unwrap = re.compile(r"^srun --job-name=fercli:(\S+) --ntasks=1 --input=none --quit-on-interrupt --kill-on-bad-exit=1 +")
    assert [unwrap.sub("", line) for line in plan] == local
    jobs = {m.group(1): line for line in plan if (m := unwrap.match(line))}
    assert len(jobs) == sum(line.startswith("srun ") for line in plan), "one job name per job"
    (run,) = {Path(n).parent.parent for n in jobs if "/fold0/" in n}
    models = ["direct", "pretrained", "both", "gru", "lstm", "gru-both"]
    (cross,) = {n.rsplit("mobilenet-v3-", 1)[1][:-3] for n in jobs if "-cross-" in n and "/fold0/" in n}
    for m in [*models, cross]:
        fold_jobs = sorted(n for n in jobs if n.endswith(f"/mobilenet-v3-{m}.h5") and "/fold" in n)
        assert fold_jobs == [f"{run}/fold{k}/mobilenet-v3-{m}.h5" for k in range(3)], m
        for k, name in enumerate(fold_jobs):
            assert f" --fold {k} " in jobs[name] and f"/fold{k}/mobilenet-v3-{m}.ckpt.h5" in jobs[name]
            first = {"gru": "pretrained", "lstm": "pretrained", "gru-both": "both"}.get(m)
            if first:
                assert re.search(rf"--init-from \S+/{run}/fold{k}/mobilenet-v3-{first}\.h5 ", jobs[name]), jobs[name]
        joins = [line for line in plan if f"/{run}/mobilenet-v3-{m}.h5" in line.split(" -o ")[-1] and " merge " in line]
        assert len(joins) == (m != "both"), m  # no table reads the aligned + unaligned CNN itself, only its CNN-GRU
        assert all(not j.startswith("srun ") and j.count(f"mobilenet-v3-{m}.h5") == 4 for j in joins), joins
    assert sorted(n.rsplit("/", 1)[1] for n in jobs if "/fold" not in n and "report-" not in n) == [
        "identity-mobilenet-v3-e30-" + n.rsplit("-", 1)[1] for n in jobs if "/identity-" in n] + [
        "mobilenet-v3-direct.h5", "mobilenet-v3-pretrained.h5"], "no folds: identity pre-training and FER2013's official split"
    reports = [line for n, line in jobs.items() if "/report-" in n]
    assert reports and all(re.search(rf" evaluate \S+/{run}/mobilenet-v3-\S+\.h5 |/fer2013-", line) for line in reports)
    assert not [line for line in plan if "table.py" in line and line.startswith("srun ")]
