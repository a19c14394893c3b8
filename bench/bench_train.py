"""Throughput of `fercli train`'s engine vs a bare forward/backward loop.

Same model, batch size, optimizer (SGD momentum 0.9), precision (bf16 autocast +
channels-last on CUDA, float32 on CPU). The engine's epoch includes everything
it does per step: indexing the device-resident uint8 set, conversion to float,
on-device rotation+flip augmentation (grid_sample), loss/accuracy bookkeeping.
The bare loop feeds a pre-made float tensor. Goal: engine >= 90 % of bare.

    python bench/bench_train.py                      # CPU: plain-cnn 64x64, batch 32
    python bench/bench_train.py --device cuda --arch mobilenet-v3 --size 96 --batch 128 --steps 40 [--compile]

bench/gpu_check.py calls :func:`measure` for its throughput rows.
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

from fercli.models.recipe import TrainingRecipe
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


def make_engine(model, arrays, labels, batch, device, augment, compile=False):
    opts = FitOptions(epochs=1000, batch_size=batch, lr=0.01, optimizer="sgd", augment=augment, compile=compile).with_recipe(TrainingRecipe())
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


def measure(arch: str, size: int = 64, batch: int = 32, steps: int = 4, rounds: int = 5, classes: int = 7,
            device: str = "cpu", config: dict | None = None, channels: int | None = None, augment: bool = True,
            compile: bool = False) -> dict:
    """Bare loop vs engine img/s (median of alternating rounds); with ``compile`` also the
    engine under torch.compile (its first epoch, compilation included, is timed apart)."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    cfg = dict(config or {})
    cfg.setdefault("input_size", size)
    if channels:
        cfg["in_channels"] = channels
    torch.manual_seed(0)
    m1, resolved = build(arch, classes, cfg)
    ch = resolved.get("in_channels", 1)
    m2, _ = build(arch, classes, cfg)
    m2.load_state_dict(m1.state_dict())
    n = batch * steps
    rng = np.random.default_rng(0)
    arrays = rng.integers(0, 256, (n, ch, size, size), dtype=np.uint8)
    labels = rng.integers(0, classes, n).astype(np.int64)
    aug = AugmentConfig(rotation=10, flip=True, shift=0) if augment else AugmentConfig(rotation=0, flip=False, shift=0)
    m2 = m2.to(dev)
    if cuda:
        m2 = m2.to(memory_format=torch.channels_last)
    x = torch.rand(batch, ch, size, size, device=dev)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=dev)
    runners = {"bare": make_bare(m2, x, y, cuda), "engine": make_engine(m1, arrays, labels, batch, dev, aug)}
    compile_s = None
    if compile:
        m3, _ = build(arch, classes, cfg)
        m3.load_state_dict(m1.state_dict())
        runners["compiled"] = make_engine(m3, arrays, labels, batch, dev, aug, compile=True)
        t0 = time.perf_counter()
        runners["compiled"](steps)  # compiles (forward and backward)
        compile_s = time.perf_counter() - t0
    runners["bare"](2)
    runners["engine"](steps)  # warm-up (allocator, kernels)
    # Short rounds, rotating which goes first: the CPU is shared with other
    # processes, so each round's ratio compares runs made under the same load.
    rates: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            rates[k].append(runners[k](steps))
    ratios = [e / b for e, b in zip(rates["engine"], rates["bare"])]
    out = {"device": torch.cuda.get_device_name(dev) if cuda else f"CPU ({torch.get_num_threads()} threads)",
           "arch": arch, "channels": ch, "size": size, "batch": batch, "steps": steps, "rounds": rounds,
           "augment": augment, "bare": float(np.median(rates["bare"])), "engine": float(np.median(rates["engine"])),
           "ratio": float(np.median(ratios)), "ratio_min": min(ratios), "ratio_max": max(ratios),
           "pipeline_ms": runners["engine"].pipeline_ms()}
    if compile:
        out["compiled"] = float(np.median(rates["compiled"]))
        out["compile_s"] = compile_s
    return out


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
    ap.add_argument("--compile", action="store_true", help="also the engine under torch.compile (train --compile)")
    a = ap.parse_args()
    r = measure(a.arch, a.size, a.batch, a.steps, a.rounds, a.classes, a.device, json.loads(a.config), a.channels,
                not a.no_augment, a.compile)
    bare_ms = 1000 * a.batch / r["bare"]
    print(f"device: {r['device']}  torch {torch.__version__}")
    print(f"{a.arch} {r['channels']}x{a.size}x{a.size} batch {a.batch}, {a.steps} steps, augment {'off' if a.no_augment else 'rot10+flip'}")
    print(f"  bare loop : {r['bare']:9.1f} img/s")
    print(f"  engine    : {r['engine']:9.1f} img/s")
    if a.compile:
        print(f"  engine, torch.compile: {r['compiled']:9.1f} img/s (compiling took {r['compile_s']:.1f} s)")
    print(f"  engine input pipeline (index + float + augment): {r['pipeline_ms']:.2f} ms per batch = "
          f"{100 * r['pipeline_ms'] / bare_ms:.2f} % of a bare step ({bare_ms:.1f} ms)")
    print(f"  ratio     : {100 * r['ratio']:6.1f} %  median of {a.rounds} alternating rounds "
          f"(min {100 * r['ratio_min']:.1f} %, max {100 * r['ratio_max']:.1f} %; goal >= 90 %)")


if __name__ == "__main__":
    main()
