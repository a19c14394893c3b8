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
    timed_out: bool = False
    #: the command's own peak resident memory (MiB above what it shares with the warm server)
    peak_mb: float = 0.0


class Runner:
    """``run(*args)`` behaves like running ``fercli ARGS`` in a fresh process."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.tmp = tempfile.TemporaryDirectory(prefix="fercli-faults-")

    def run(self, *args, stdin: Optional[bytes] = None, cwd: Optional[Path] = None, timeout: float = 300,
            kill_after: Optional[float] = None, env: Optional[dict] = None, fsize: Optional[int] = None,
            signal: Optional[tuple[int, float]] = None, stdin_closed: bool = False) -> Result:
        io_dir = Path(self.tmp.name)
        stdin_path = None
        if stdin is not None:
            stdin_path = io_dir / "stdin"
            stdin_path.write_bytes(stdin)
        req = {
            "args": [str(a) for a in args], "cwd": str(cwd or io_dir), "stdin": str(stdin_path) if stdin_path else None, "stdin_closed": stdin_closed,
            "stdout": str(io_dir / "stdout"), "stderr": str(io_dir / "stderr"), "timeout": timeout, "kill_after": kill_after,
            "env": env, "fsize": fsize, "signal": list(signal) if signal else None,
        }
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        reply = json.loads(line)
        return Result(reply["rc"], (io_dir / "stdout").read_bytes(), (io_dir / "stderr").read_bytes(), reply["killed"], reply["seconds"],
                      reply.get("timed_out", False), max(0, reply.get("maxrss_kb", 0) - reply.get("base_rss_kb", 0)) / 1024)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.tmp.cleanup()


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


# --------------------------------------------------------------------------- the common check

#: A refused command's own peak memory must stay under this (the bombs of
#: issue 12 took 0.85 to 43 GiB); generous for a loaded CI machine.
MAX_PEAK_MB = 300
#: And it must finish within this (a FIFO opened for reading blocks forever).
MAX_SECONDS = 60


def snapshot(folder: Path, skip: set) -> dict[str, str]:
    """relative path -> sha256 of every regular file (FIFOs etc. are listed, not read)."""
    import hashlib
    import stat as st

    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if rel in skip or path.name.startswith(".fercli-tmp-"):
            continue
        mode = path.lstat().st_mode
        if st.S_ISREG(mode):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = st.S_IFMT(mode)
    return out


def check_refusal(runner: Runner, folder: Path, spec: dict, keep_old: bool) -> Result:
    """Run ``spec`` in ``folder`` and check the refusal contract of issues 7 and 12.

    Exit status (``rc``, default 2), exactly one line on stderr starting
    'fercli: ' holding every ``expect`` fragment and no ``unexpected`` one, no
    traceback (``stdin_closed``: run with file descriptor 0 closed); every input
    byte-identical; each output absent, or byte-identical to the previous good
    one when ``keep_old``; no temporary file left; peak memory and time bounded.
    """
    outputs = [o for o in ([spec.get("output", "out.h5")] + list(spec.get("outputs", []))) if o]
    out_paths = [folder / o for o in outputs]
    old = [p for p in out_paths if keep_old and p.parent.is_dir() and not p.exists()]
    for p in old:
        p.write_bytes(OLD)
    before = snapshot(folder, {str(p.relative_to(folder)) for p in out_paths})
    proc = runner.run(*spec["args"], stdin=spec.get("stdin"), cwd=folder, env=spec.get("env"), fsize=spec.get("fsize"),
                      signal=spec.get("signal"), timeout=spec.get("timeout", MAX_SECONDS), stdin_closed=spec.get("stdin_closed", False))
    err = proc.stderr.decode(errors="replace").strip()
    assert not proc.timed_out, f"still running after {spec.get('timeout', MAX_SECONDS)} s (a hang), stderr:\n{err}"
    assert proc.returncode == spec.get("rc", 2), f"exit {proc.returncode}, stderr:\n{err}"
    assert "Traceback" not in err, err
    if spec.get("quiet"):
        assert err == "", err
    else:
        assert len(err.splitlines()) == 1, f"expected one line, got:\n{err}"
        assert err.startswith("fercli: "), err
    for fragment in spec.get("expect", []):
        assert fragment.lower() in err.lower(), f"{fragment!r} not in {err!r}"
    for fragment in spec.get("unexpected", []):
        assert fragment.lower() not in err.lower(), f"{fragment!r} in {err!r}"
    for p in out_paths:
        if p in old:
            assert p.read_bytes() == OLD, f"{p.name}: the previous output was changed"
        else:
            assert not p.exists(), f"{p.name} was written"
    assert temp_leftovers(folder) == [], temp_leftovers(folder)
    after = snapshot(folder, {str(p.relative_to(folder)) for p in out_paths})
    assert after == before, f"inputs changed or files created: {sorted(set(after.items()) ^ set(before.items()))}"
    for path in spec.get("absent", []):
        assert not Path(path).exists(), f"{path} was created"
    assert proc.peak_mb < spec.get("max_mb", MAX_PEAK_MB), f"peak memory {proc.peak_mb:.0f} MiB"
    assert proc.seconds < spec.get("timeout", MAX_SECONDS)
    return proc
