"""Benchmark: `align | resample | lbptop` through Unix pipes vs the same stages through files.

Artifacts travel through stdout/stdin as whole HDF5 files (each stage reads its
input fully, works, then streams its output), so the pipe should cost about the
same as temporary files: goal <= 1.2x the file-based run.

    python bench/bench_pipe.py [--subjects 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def run(cmd: str, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, shell=True, env=env, capture_output=True, executable="/bin/bash")
    if proc.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{proc.stderr.decode()}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": os.path.abspath(ROOT)}
    fer = f"{sys.executable} -m fercli"
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "synth.h5")
        run(f"{fer} synth --subjects {args.subjects} --classes happy,surprise,sadness --size 320x240 -o {src}", env)
        pipe = (f"set -o pipefail; {fer} align {src} -o - | {fer} resample -n 10 - -o - | {fer} lbptop - -o {d}/pipe.h5")
        files = (f"{fer} align {src} -o {d}/a.h5 && {fer} resample -n 10 {d}/a.h5 -o {d}/r.h5 && {fer} lbptop {d}/r.h5 -o {d}/files.h5")
        tp = tf = float("inf")
        for _ in range(args.repeats):
            tf = min(tf, run(files, env))
            tp = min(tp, run(pipe, env))
        size = os.path.getsize(src) / 2 ** 20
    print(f"input: synth, {args.subjects} subjects x 3 classes at 320x240 ({size:.1f} MiB)")
    print(f"through files : {tf:6.2f} s")
    print(f"through pipes : {tp:6.2f} s")
    print(f"ratio pipe/files: {tp / tf:.2f}x (goal <= 1.2x; best of {args.repeats})")


if __name__ == "__main__":
    main()
