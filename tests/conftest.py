"""Shared fixtures: run the real CLI in a subprocess, tiny synthetic artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# One thread per process: the suite runs on 2 cores and torch's default
# oversubscribes them.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def fercli(*args: str, input: bytes | None = None, check: bool = False, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m fercli ARGS`` as a user would; returns the completed process (bytes)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "fercli", *map(str, args)], input=input, capture_output=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"fercli {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')}")
    return proc


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback; returns that line."""
    err = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, f"expected one line, got:\n{err}"
    for fragment in fragments:
        assert fragment.lower() in err.lower(), f"{fragment!r} not in {err!r}"
    return err


@pytest.fixture
def tiny_clips():
    """A small Clips object with random frames (4 clips, 2 subjects, 3 classes)."""
    from fercli.artifacts import Clips

    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 256, size=(n, 16, 12), dtype=np.uint8) for n in (3, 5, 4, 6)]
    return Clips.from_sequences(seqs, labels=[0, 1, 2, 1], class_names=["a", "b", "c"], subjects=["S1", "S1", "S2", "S2"])


@pytest.fixture(scope="session")
def runner():
    """One warm fork server (tests/faults/fork_server.py) for the whole fault suite."""
    sys.path.insert(0, str(ROOT / "tests" / "faults"))
    from fault_harness import Runner

    r = Runner()
    yield r
    r.close()


#: Test files that share the one local SLURM cluster (job counts at slurmctld, one queue):
#: under pytest-xdist they run on one worker, one after another.
_ONE_CLUSTER = ("test_slurm.py", "test_chapter_slurm.py", "test_cluster_examples.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in _ONE_CLUSTER:
            item.add_marker(pytest.mark.xdist_group("slurm"))
