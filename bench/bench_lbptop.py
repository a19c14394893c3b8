"""Benchmark: fercli's batched LBP-TOP vs scikit-image called once per slice.

    python bench/bench_lbptop.py [--clips 50] [--frames 10] [--size 64] [--repeats 3]

Both compute the XT and YT code maps (thesis 3.2.4) of the same clips; the
baseline is the obvious loop (``local_binary_pattern`` on every (T, W) slice
and every (T, H) slice, cropped to the interior).  Prints the best-of-N time of
each, the ratio (goal >= 10x) and whether every code is identical, for each
method.  Runs single-threaded like the rest of fercli's numpy code.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from skimage.feature import local_binary_pattern  # noqa: E402

from fercli import lbptop  # noqa: E402


def skimage_loop(volumes: np.ndarray, points: int, radius: float, method: str) -> dict[str, np.ndarray]:
    sk = lbptop.METHODS[method]
    m = lbptop.margin(points, radius)
    n, t, h, w = volumes.shape
    xt = np.empty((n, t - 2 * m, h - 2 * m, w - 2 * m), np.uint8)
    yt = np.empty_like(xt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            for y in range(m, h - m):
                xt[i, :, y - m, :] = local_binary_pattern(volumes[i, :, y, :], points, radius, sk)[m : t - m, m : w - m]
            for x in range(m, w - m):
                yt[i, :, :, x - m] = local_binary_pattern(volumes[i, :, :, x], points, radius, sk)[m : t - m, m : h - m]
    return {"xt": xt, "yt": yt}


def best_of(fn, repeats: int) -> tuple[float, float, object]:
    """Best wall time and best CPU time of this process over ``repeats`` runs.

    Both sides are single-threaded, so on a shared machine the CPU time is the
    steadier figure; the wall time is printed beside it.
    """
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="default,uniform,ror,riu2")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    shape = (args.clips, args.frames, args.size, args.size)
    # Half full-range noise, half few-level regions (ties, where exactness bites).
    volumes = np.where(rng.random(shape) < 0.5, rng.integers(0, 256, shape), rng.integers(0, 3, shape) * 127).astype(np.uint8)
    print(f"{args.clips} clips of {args.frames}x{args.size}x{args.size}, planes xt+yt, P=8 R=1, best of {args.repeats}")
    print(f"{'method':8s} {'skimage loop':>17s} {'fercli':>15s} {'ratio':>13s}  codes")
    print(f"{'':8s} {'wall / cpu ms':>17s} {'wall / cpu ms':>15s} {'wall / cpu':>13s}")
    for method in args.methods.split(","):
        w_ref, c_ref, ref = best_of(lambda: skimage_loop(volumes, 8, 1.0, method), args.repeats)
        w_ours, c_ours, ours = best_of(lambda: lbptop.lbp_top_volume(volumes, ("xt", "yt"), 8, 1.0, method), args.repeats)
        same = all(np.array_equal(ref[p], ours[p]) for p in ("xt", "yt"))
        print(
            f"{method:8s} {w_ref * 1000:8.0f} /{c_ref * 1000:6.0f}  {w_ours * 1000:6.0f} /{c_ours * 1000:5.0f}  "
            f"{w_ref / w_ours:5.1f}x /{c_ref / c_ours:5.1f}x  {'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
