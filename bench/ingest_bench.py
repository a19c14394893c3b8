"""Benchmark `ingest` on synthetic data in the published layouts (about 30-60 s).

    python bench/ingest_bench.py [--fer-rows 10000] [--ck-sequences 30]

1. FER2013: fercli's reader vs the obvious csv.reader + str.split loop on the
   same CSV (rows/s of each, their ratio, and that the pixels are identical).
2. CK+: 640x490 gray PNG sequences, decoding with 1 thread vs the default
   thread pool (frames/s of each, their ratio).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fercli.ingest import FrameOptions, ingest_ckplus, ingest_fer2013  # noqa: E402


def naive_fer2013(path: str) -> np.ndarray:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.stack([np.array(r["pixels"].split(), dtype=np.uint8).reshape(48, 48) for r in rows])


def bench_fer(folder: str, rows: int) -> None:
    rng = np.random.default_rng(0)
    table = np.array([str(i) for i in range(256)], dtype=object)
    path = os.path.join(folder, "fer2013.csv")
    with open(path, "w") as fh:
        fh.write("emotion,pixels,Usage\n")
        for i in range(rows):
            fh.write(f"{i % 7},{' '.join(table[rng.integers(0, 256, 2304)])},Training\n")
    t = time.perf_counter()
    ref = naive_fer2013(path)
    t_naive = time.perf_counter() - t
    t = time.perf_counter()
    clips, _ = ingest_fer2013(path)
    t_ours = time.perf_counter() - t
    same = np.array_equal(ref, clips.frames)
    print(f"fer2013 {rows} rows: csv+split {rows / t_naive:,.0f} rows/s ({t_naive:.2f} s), "
          f"fercli {rows / t_ours:,.0f} rows/s ({t_ours:.2f} s), ratio {t_naive / t_ours:.1f}x, identical={same}")


def bench_ck(folder: str, sequences: int, frames: int = 10) -> None:
    import cv2

    rng = np.random.default_rng(1)
    root = os.path.join(folder, "CK+")
    base = rng.integers(0, 256, (490, 640), dtype=np.uint8)
    for s in range(sequences):
        subject, seq = f"S{100 + s // 3:03d}", f"{s % 3 + 1:03d}"
        d = os.path.join(root, "cohn-kanade-images", subject, seq)
        os.makedirs(d)
        for f in range(frames):
            img = cv2.GaussianBlur(np.roll(base, 3 * f, axis=1), (5, 5), 0)  # photo-like, compresses like CK+
            cv2.imwrite(os.path.join(d, f"{subject}_{seq}_{f + 1:08d}.png"), img)
        e = os.path.join(root, "Emotion", subject, seq)
        os.makedirs(e)
        with open(os.path.join(e, f"{subject}_{seq}_{frames:08d}_emotion.txt"), "w") as fh:
            fh.write(f"   {s % 7 + 1}.0000000e+00\n")
    n = sequences * frames
    t = time.perf_counter()
    one, _ = ingest_ckplus(root, frames=FrameOptions(workers=1))
    t_one = time.perf_counter() - t
    threads = FrameOptions().threads()
    t = time.perf_counter()
    many, _ = ingest_ckplus(root)
    t_many = time.perf_counter() - t
    same = np.array_equal(one.frames, many.frames)
    print(f"ckplus {sequences} sequences x {frames} frames 640x490: 1 thread {n / t_one:,.0f} frames/s, "
          f"{threads} threads {n / t_many:,.0f} frames/s, ratio {t_one / t_many:.2f}x (cpus={os.cpu_count()}), identical={same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fer-rows", type=int, default=10000)
    ap.add_argument("--ck-sequences", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench_fer(folder, args.fer_rows)
        bench_ck(folder, args.ck_sequences)


if __name__ == "__main__":
    main()
