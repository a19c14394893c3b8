"""Shared pieces of the fault suite: a warm fork server that runs `fercli`, and artifact builders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("fork_server.py")
OLD = b"previous good output, must survive a failed run\n"


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes
    killed: bool
    seconds: float


class Runner:
    """``run(*args)`` behaves like running ``fercli ARGS`` in a fresh process."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.tmp = tempfile.TemporaryDirectory(prefix="fercli-faults-")

    def run(self, *args, stdin: Optional[bytes] = None, cwd: Optional[Path] = None, timeout: float = 300,
            kill_after: Optional[float] = None) -> Result:
        io_dir = Path(self.tmp.name)
        stdin_path = None
        if stdin is not None:
            stdin_path = io_dir / "stdin"
            stdin_path.write_bytes(stdin)
        req = {
            "args": [str(a) for a in args], "cwd": str(cwd or io_dir), "stdin": str(stdin_path) if stdin_path else None,
            "stdout": str(io_dir / "stdout"), "stderr": str(io_dir / "stderr"), "timeout": timeout, "kill_after": kill_after,
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        reply = json.loads(line)
        return Result(reply["rc"], (io_dir / "stdout").read_bytes(), (io_dir / "stderr").read_bytes(), reply["killed"], reply["seconds"])

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


@pytest.fixture(scope="session")
def runner():
    r = Runner()
    yield r
    r.close()


# --------------------------------------------------------------------------- builders


def clips(n: int = 4, frames: int = 5, size=(12, 10), classes=("anger", "happy", "sad"), seed: int = 0, color: bool = False):
    from fercli.artifacts import Clips

    rng = np.random.default_rng(seed)
    shape = (*size, 3) if color else size
    seqs = [rng.integers(0, 256, size=(frames, *shape), dtype=np.uint8) for _ in range(n)]
    return Clips.from_sequences(seqs, [i % len(classes) for i in range(n)], list(classes), [f"S{i}" for i in range(n)],
                                clip_ids=[f"c{seed}_{i}" for i in range(n)])


def save(path: Path, c) -> Path:
    from fercli.artifacts import save_clips

    save_clips(str(path), c, [])
    return path


def valid_clips(path: Path, **kw) -> Path:
    return save(path, clips(**kw))


def mutate(path: Path, fn) -> Path:
    """Open a written artifact read-write and damage it with ``fn(h5file)``."""
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def replace_dataset(name: str, data: np.ndarray):
    def fn(f: h5py.File) -> None:
        del f[name]
        f.create_dataset(name, data=data)

    return fn


def temp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".fercli-tmp-"))
