"""bench/gpu_check.py (`make gpu-check`) in its CPU --smoke mode, so the GPU check cannot rot;
and `train --compile`'s refusal where torch.compile cannot run."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, assert_user_error, fercli
from train_helpers import tiny_clips, write

CHECKS = ["data", "chapter 5 chain", "resume after SIGTERM", "DDP", "evaluate", "live", "train --compile"]


def test_smoke_runs_every_check_and_prints_the_table(tmp_path):
    report = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--json", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    names = [r["check"] for r in rows]
    assert names[:len(CHECKS)] == CHECKS
    assert len([n for n in names if n.startswith("throughput ")]) == 4
    for r in rows:
        assert r["status"] == "PASS", r
    by = {r["check"]: r["data"] for r in rows}
    assert by["resume after SIGTERM"]["max_diff"] == 0.0  # CPU: resumed = uninterrupted, bit for bit
    assert 1 <= by["resume after SIGTERM"]["stopped_at"] < 6
    assert by["DDP"]["max_diff"] < 1e-5
    assert by["train --compile"]["max_diff"] < 1e-4  # same names (else the row fails) and the same training
    for r in rows:  # the table, one line per check, after its header
        assert f"| {r['check']} | PASS |" in proc.stdout
    assert proc.stdout.startswith("fercli GPU check -- CPU smoke, not a GPU result")
    assert "no failure" in proc.stdout


def test_without_a_gpu_it_says_so(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--require-gpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "no CUDA GPU is visible" in proc.stderr and "--smoke" in proc.stderr


def test_compile_without_a_compiler_is_one_sentence(tmp_path):
    data = write(tmp_path / "ck.h5", tiny_clips())
    proc = fercli("train", "plain-cnn", data, "--fold", "0", "--size", "8", "--epochs", "1", "--device", "cpu", "--compile",
                  "-o", tmp_path / "m.h5", env={"CXX": str(tmp_path / "no-such-compiler")})  # refused before reading data
    assert_user_error(proc, "--compile", "C++ compiler")
    assert not (tmp_path / "m.h5").exists()


def test_compile_failing_at_the_first_step_is_one_sentence(tmp_path):
    # A compiler that answers --version (the check before training passes) but fails to
    # build: torch.compile fails inside the first step, and says so in one sentence.
    fake = tmp_path / "g++"
    fake.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "g++ (fake) 12"; exit 0; fi\nexit 1\n')
    fake.chmod(0o755)
    data = write(tmp_path / "ck.h5", tiny_clips())
    proc = fercli("train", "plain-cnn", data, "--fold", "0", "--size", "8", "--epochs", "1", "--device", "cpu", "--compile", "-q",
                  "-o", tmp_path / "m.h5", env={"CXX": str(fake), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")})
    assert_user_error(proc, "--compile", "torch.compile failed")
    assert not (tmp_path / "m.h5").exists()
