"""SE-statistics pass of `fercli prune` vs a bare forward pass on the same LB-MBNet.

    python bench/prune_se_stats.py [--depth 59] [--expansion 6] [--n 128] [--batch 64] [--threads 2]

Prints images/s of both and the ratio (the observers' overhead). Random 32x32
RGB inputs; CPU unless CUDA is available. ~1 min on 2 (busy) CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from fercli.models.registry import build  # noqa: E402
from fercli.prune import se_statistics  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=59)
    ap.add_argument("--expansion", type=float, default=6)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, _ = build("lb-mbnet", 10, {"depth": a.depth, "expansion": a.expansion})
    model.to(device).eval()
    x = torch.rand(a.n, 3, 32, 32, device=device)
    batches = [[x[i:i + a.batch]] for i in range(0, a.n, a.batch)]

    def bare():
        with torch.no_grad():
            for (b,) in batches:
                model(b)

    bare()  # warm-up
    rows = []
    for name, fn in (("bare forward", bare), ("prune SE statistics", lambda: se_statistics(model, batches, a.n))):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        rows.append((name, a.n / (time.perf_counter() - t)))
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {a.threads} threads"
    print(f"LB-MBNet-{a.depth}-r{a.expansion:g}, {a.n} images of 32x32, batch {a.batch}, {where}")
    for name, ips in rows:
        print(f"  {name:22s} {ips:8.1f} img/s")
    print(f"  ratio SE statistics / bare: {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
