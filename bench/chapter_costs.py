"""What `make chapterN DATA=...` costs on real data: measured per-sample training cost of every
model the chapter targets train (at the real-data settings), times the samples the thesis's
protocol feeds them, in CPU-hours -- and a GPU estimate from FLOPs.

    python bench/chapter_costs.py                 # all models, 1 torch thread (make's THREADS default)
    python bench/chapter_costs.py --only ch4 --threads 2
    python bench/chapter_costs.py --gpu-tflops 10 # the sustained rate the GPU column assumes

The CPU column is measured here: the CPU time (``time.process_time``, so other jobs on a
shared machine inflate it less than wall time) of a training step -- forward, backward,
SGD -- on a batch of random inputs of the model's real shape, median over a few steps,
divided by the batch.  The
GPU column is *not* measured (no GPU on the development machine): 3 x forward FLOPs per
training sample at an assumed sustained rate, plus an assumed fixed cost per optimizer step
(kernel launches, the small models' real bound) at the targets' batch sizes (32; LB-MBNet
128); evaluation, checkpoints and data preparation come on top.

Sample counts follow the chapter targets and the data sets' published sizes (thesis 2.1):
CK+ 327 labelled sequences (309 without contempt for chapter 4), Oulu-CASIA 480 (VL strong),
FER2013 28,709 training images, SFEW 958, AFEW 773 training videos, CIFAR-10 50,000.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.nn.functional as F

from fercli.models.registry import build
from fercli.models.summary import complexity

PLAIN = {"in_channels": 1, "input_size": 64}
MNV3 = {"in_channels": 1, "input_size": 96}

# (chapter, row, arch, config, classes, training samples per epoch x epochs x runs: what make trains)
BATCH = {"lb-mbnet": 128}  # the targets' batch sizes (train's defaults), for the per-step GPU cost
JOBS = [
    ("ch3", "static plain CNN (CK+, 10 folds, 40 epochs)", "plain-cnn", PLAIN, 7, 295 * 40 * 10),
    ("ch3", "CNN-GRU SF / PD / max pool (each)", "cnn-gru", {"backbone_config": PLAIN, "frames": 10}, 7, 295 * 40 * 10),
    ("ch3", "LBP-TOP XT / YT (each)", "lbptop-gru", {"plane": "xt"}, 7, 295 * 40 * 10),
    ("ch4", "MobileNetV3-Large, CK+ first/last 3 frames (10 folds, 30 epochs)", "mobilenet-v3", MNV3, 7, 1668 * 30 * 10),
    ("ch4", "MobileNetV2, CK+ first/last 3 frames", "mobilenet-v2", MNV3, 7, 1668 * 30 * 10),
    ("ch4", "MobileNetV3-Large, FER2013 (30 epochs)", "mobilenet-v3", MNV3, 7, 28709 * 30),
    ("ch4", "MobileNetV3 + GRU, CK+ 3 clips x 5 frames", "cnn-gru", {"backbone": "mobilenet-v3", "backbone_config": MNV3, "input": "probs",
                                                              "fc": 0, "frames": 5}, 7, 834 * 30 * 10),
    ("ch5", "LB-MBNet-59-r80, CIFAR-10 (200 epochs)", "lb-mbnet", {"depth": 59, "expansion": 80}, 10, 50000 * 200),
    ("ch5", "LB-MBNet-59-r6, CIFAR-10 (200 epochs)", "lb-mbnet", {"depth": 59, "expansion": 6}, 10, 50000 * 200),
]


def step_ms(model: torch.nn.Module, inputs: list[torch.Tensor], classes: int, steps: int) -> float:
    """Median CPU time of one training step (forward, backward, SGD) on ``inputs``, in ms."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    y = torch.randint(0, classes, (inputs[0].shape[0],))
    model.train()
    times = []
    for i in range(steps + 1):
        t0 = time.process_time()
        loss = F.cross_entropy(model(*inputs), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:  # the first step allocates and warms caches
            times.append((time.process_time() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["ch3", "ch4", "ch5"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--gpu-tflops", type=float, default=10.0, help="sustained FP32/TF32 rate assumed for the GPU column")
    ap.add_argument("--gpu-step-ms", type=float, default=10.0, help="fixed cost per optimizer step assumed for the GPU column")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}; GPU column: an estimate at {args.gpu_tflops:g} TFLOP/s "
          f"sustained + {args.gpu_step_ms:g} ms per step")
    print("| chapter | model (what make trains) | FLOPs/sample | CPU ms/sample (measured) | training samples | CPU-hours | GPU hours (estimate) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for chapter, row, arch, cfg, k, samples in JOBS:
        if args.only and chapter != args.only:
            continue
        model, _ = build(arch, k, cfg)
        flops = complexity(model)["flops"]
        inputs = list(model.dummy_inputs(args.batch))
        ms = step_ms(model, inputs, k, args.steps) / args.batch
        cpu_h = ms * samples / 1000 / 3600
        gpu_h = (3 * flops * samples / (args.gpu_tflops * 1e12) + samples / BATCH.get(arch, 32) * args.gpu_step_ms / 1000) / 3600
        print(f"| {chapter} | {row} | {flops:.2e} | {ms:.1f} | {samples:,} | {cpu_h:,.1f} | {gpu_h:.2f} |", flush=True)
        del model, inputs
    return 0


if __name__ == "__main__":
    sys.exit(main())
