"""Parameter counts and FLOPs of every network vs the thesis's tables (4.4, 5.2, 5.3, 5.5).

    python bench/model_counts.py            # all rows (~30 s on 2 CPU cores; big models on the meta device)

Trainable = parameters with requires_grad; "+BN" adds BatchNorm running
statistics (what Keras's "Total params" counts); fixed = LBC kernels.
FLOPs = 2 x multiply-accumulates from torch.utils.flop_counter at the stated input.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from fercli.models.summary import complexity  # noqa: E402
from fercli.models.registry import build  # noqa: E402

ROWS = [
    # (label, arch, classes, config, thesis params M, thesis FLOPs 1e8 or None)
    ("MobileNetV2 (Table 4.4)", "mobilenet-v2", 7, {}, 2.40, None),
    ("MobileNetV3 = V3-Large (Table 4.4)", "mobilenet-v3", 7, {}, 3.12, None),
    ("MobileNetV3+GRU (Table 4.4)", "cnn-gru", 7, {"backbone": "mobilenet-v3", "input": "probs", "fc": 0, "frames": 5}, 3.17, None),
    ("MobileNetV3-Small", "mobilenet-v3-small", 7, {}, None, None),
    ("plain CNN (3.2.3)", "plain-cnn", 7, {}, None, None),
    ("CNN-GRU SF (3.2.3)", "cnn-gru", 7, {}, None, None),
    ("CNN-GRU PD (3.2.3)", "cnn-gru", 7, {"input": "probs"}, None, None),
    ("LBP-TOP XT stream (3.2.4)", "lbptop-gru", 7, {}, None, None),
    ("multi-stream fusion (3.2.5)", "multistream", 7, {}, None, None),
]
for depth, r, p, f in [(59, 3, 3.63, 2.33), (59, 6, 7.11, 4.57), (59, 10, 11.75, 7.57), (59, 18, 21.03, 13.6), (59, 20, 23.36, 15.0),
                       (59, 30, 34.96, 22.5), (59, 40, 46.57, 30.0), (59, 60, 69.78, 45.0), (59, 80, 92.99, 59.9), (59, 50, 58.17, 37.5),
                       (59, 100, 116.20, 74.9), (32, 3, 1.67, 1.12), (32, 6, 3.19, 2.16), (32, 20, 10.31, 6.99), (32, 50, 25.58, 17.4),
                       (32, 80, 40.84, 27.7), (32, 100, 51.01, 34.6)]:
    ROWS.append((f"LB-MBNet-{depth}-r{r} (CIFAR-10, 32x32)", "lb-mbnet", 10, {"depth": depth, "expansion": r}, p, f))


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'model':42s} {'trainable':>12s} {'+BN stats':>12s} {'fixed':>10s} {'thesis':>8s} {'delta':>7s} {'FLOPs':>9s} {'thesis':>8s} {'delta':>7s}  input")
    for label, arch, k, cfg, tp, tf in ROWS:
        t0 = time.time()
        big = arch == "lb-mbnet" and cfg["expansion"] > 10
        with torch.device("meta" if big else "cpu"):
            model, _ = build(arch, k, cfg)
        c = complexity(model)
        bn = c["trainable_params"] + c["bn_stats"]
        dp = f"{c['trainable_params'] / 1e6 / tp - 1:+.2%}" if tp else ""
        df = f"{c['flops'] / 1e8 / tf - 1:+.2%}" if tf else ""
        print(f"{label:42s} {c['trainable_params']:12,d} {bn:12,d} {c['fixed_params']:10,d} {(str(tp) + 'M') if tp else '':>8s} {dp:>7s} "
              f"{c['flops']:9.3e} {(str(tf) + 'e8') if tf else '':>8s} {df:>7s}  {'x'.join(map(str, c['input_shape'][0]))}"
              f"  ({time.time() - t0:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
