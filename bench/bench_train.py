"""Throughput of `fercli train`'s engine vs a bare forward/backward loop.

Same model, batch size, optimizer (SGD momentum 0.9), precision (bf16 autocast +
channels-last on CUDA, float32 on CPU). The engine's epoch includes everything
it does per step: indexing the device-resident uint8 set, conversion to float,
on-device rotation+flip augmentation (grid_sample), loss/accuracy bookkeeping.
The bare loop feeds a pre-made float tensor. Goal: engine >= 90 % of bare.

    python bench/bench_train.py                      # CPU: plain-cnn 64x64, batch 32
    python bench/bench_train.py --device cuda --arch mobilenet-v3 --size 96 --batch 128 --steps 40
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np
import torch
import torch.nn.functional as F

from fercli.models.registry import build
from fercli.protocol.samples import Samples
from fercli.train.augment import AugmentConfig
from fercli.train.engine import DeviceData, Dist, Engine, FitOptions


def make_bare(model, x, y, cuda):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    model.train()

    def run(steps: int) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            if cuda:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = model(x)
            else:
                out = model(x)
            loss = F.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if cuda:
            torch.cuda.synchronize()
        return steps * x.shape[0] / (time.perf_counter() - t0)

    return run


def make_engine(model, arrays, labels, batch, device, augment):
    opts = FitOptions(epochs=1000, batch_size=batch, lr=0.01, optimizer="sgd", augment=augment)
    eng = Engine(model, ("image",), opts, device, Dist())
    data = DeviceData.put(Samples({"image": arrays}, labels, np.arange(len(labels))), device)
    epoch = [0]

    def run(steps: int) -> float:
        epoch[0] += 1
        return eng.train_epoch(data, epoch[0])["img_per_s"]  # one epoch = `steps` batches

    def pipeline_ms(reps: int = 20) -> float:
        """Per-batch cost of what the engine adds: index uint8, to float, augment."""
        from fercli.train import augment as aug

        g = torch.Generator().manual_seed(0)
        times = []
        for _ in range(reps):
            idx = torch.randperm(data.n, generator=g)[:batch].to(device)
            t0 = time.perf_counter()
            params = aug.draw(len(idx), augment, g) if augment.active else None
            eng._batch_inputs(data, idx, params)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1000)
        return float(np.median(times))

    run.pipeline_ms = pipeline_ms
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="plain-cnn")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--config", default="{}", help="JSON model config overrides")
    ap.add_argument("--no-augment", action="store_true")
    a = ap.parse_args()
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    cfg = json.loads(a.config)
    cfg.setdefault("input_size", a.size)
    if a.channels:
        cfg["in_channels"] = a.channels
    torch.manual_seed(0)
    m1, resolved = build(a.arch, a.classes, cfg)
    ch = resolved.get("in_channels", 1)
    m2, _ = build(a.arch, a.classes, cfg)
    m2.load_state_dict(m1.state_dict())
    n = a.batch * a.steps
    rng = np.random.default_rng(0)
    arrays = rng.integers(0, 256, (n, ch, a.size, a.size), dtype=np.uint8)
    labels = rng.integers(0, a.classes, n).astype(np.int64)
    augment = AugmentConfig(rotation=0, flip=False, shift=0) if a.no_augment else AugmentConfig(rotation=10, flip=True)
    m2 = m2.to(device)
    if cuda:
        m2 = m2.to(memory_format=torch.channels_last)
    x = torch.rand(a.batch, ch, a.size, a.size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, a.classes, (a.batch,), device=device)
    run_bare = make_bare(m2, x, y, cuda)
    run_engine = make_engine(m1, arrays, labels, a.batch, device, augment)
    run_bare(2)
    run_engine(a.steps)  # warm-up (allocator, kernels)
    # Short rounds, alternating which goes first: the CPU is shared with other
    # processes, so each round's ratio compares runs made under the same load.
    rates_bare, rates_eng, ratios = [], [], []
    for r in range(a.rounds):
        if r % 2:
            e = run_engine(a.steps)
            b = run_bare(a.steps)
        else:
            b = run_bare(a.steps)
            e = run_engine(a.steps)
        rates_bare.append(b)
        rates_eng.append(e)
        ratios.append(e / b)
    pipe = run_engine.pipeline_ms()
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    rb, re_ = float(np.median(rates_bare)), float(np.median(rates_eng))
    print(f"device: {name}  torch {torch.__version__}")
    print(f"{a.arch} {ch}x{a.size}x{a.size} batch {a.batch}, {a.steps} steps, augment {'off' if a.no_augment else 'rot10+flip'}")
    print(f"  bare loop : {rb:9.1f} img/s")
    print(f"  engine    : {re_:9.1f} img/s")
    print(f"  engine input pipeline (index + float + augment): {pipe:.2f} ms per batch = "
          f"{100 * pipe / (1000 * a.batch / rb):.2f} % of a bare step ({1000 * a.batch / rb:.1f} ms)")
    print(f"  ratio     : {100 * float(np.median(ratios)):6.1f} %  median of {a.rounds} alternating rounds "
          f"(min {100 * min(ratios):.1f} %, max {100 * max(ratios):.1f} %; goal >= 90 %)")


if __name__ == "__main__":
    main()
