"""Streamed vs resident training: peak memory and img/s of `fercli train`, side by side.

Makes a synth artifact (``--clips`` clips of ``--frames`` frames, every frame a
sample with ``--frame all``), then runs the same `fercli train` twice as separate
processes: resident (the default budget holds the data) and streamed
(``--device-memory CAP``, smaller than the samples).  Reports each process's peak
RSS (``getrusage`` of the child), the engine's img/s (mean over epochs, from the
model's history), wall time, and whether the two models' weights are identical.
On a shared machine the two processes' img/s mostly measure the load of the
moment, so the script then also times epochs in one process, alternating the two
modes round by round on the same model (``--rounds``; a subset of ``--subset``
clips, loads of ``--load`` samples), and reports the median streamed/resident ratio.

The sample order is the same in both runs (``--shuffle-window``, default 4096 here:
a streamed load of a 16 MiB cap then holds half a window, so each load reads
64 runs of consecutive samples; with a window much larger than a load, every
load reads across the whole window and streaming reads the data several times
an epoch).

    python bench/bench_stream.py                                   # 2002 clips x 16 frames, 64x64, cap 16M
    python bench/bench_stream.py --clips 700 --frames 8 --cap 8M   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, stderr) of one child process."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return usage.ru_maxrss / 1024, wall, err.decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2002, help="clips (7 classes x 2 per subject: rounded to a multiple of 14)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--cap", default="16M", help="--device-memory of the streamed run")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--window", type=int, default=4096, help="--shuffle-window of both runs (4096: a 16M load holds half a window)")
    ap.add_argument("--keep", default=None, help="folder for the artifacts (default: a temporary one)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating in-process epochs per mode (0: none)")
    ap.add_argument("--subset", type=int, default=125, help="clips of the in-process epochs")
    ap.add_argument("--load", type=int, default=256, help="samples per streamed load of the in-process epochs")
    args = ap.parse_args()

    folder = args.keep or tempfile.mkdtemp(prefix="fercli-bench-stream-")
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, "data.h5")
    py = [sys.executable, "-m", "fercli"]
    if not os.path.exists(data):
        subjects = max(1, round(args.clips / 14))
        _, wall, _ = run(py + ["synth", "--subjects", str(subjects), "--clips-per-class", "2", "--frames", f"{args.frames}:{args.frames}",
                        "--size", f"{args.size}x{args.size}", "-o", data])
        print(f"synth: {subjects * 14} clips x {args.frames} frames {args.size}x{args.size}, {os.path.getsize(data) / 2**20:.1f} MiB on disk ({wall:.0f} s)")
    train = py + ["train", "plain-cnn", data, "--frame", "all", "--config", "width=0.125", "--epochs", str(args.epochs),
                  "--batch-size", str(args.batch), "--shuffle-window", str(args.window), "--device", "cpu"]
    import h5py
    import numpy as np

    rows = {}
    for mode, extra in (("resident", []), ("streamed", ["--device-memory", args.cap])):
        out = os.path.join(folder, f"{mode}.h5")
        rss, wall, err = run(train + extra + ["-o", out])
        with h5py.File(out) as f:
            hist = json.loads(f.attrs["history"])
            info = json.loads(f.attrs["extra"])["run"]["data_mode"]
            weights = {k: f["weights"][k][()] for k in f["weights"]}
        line = next((x for x in err.splitlines() if x.startswith("data: ")), "")
        rows[mode] = (rss, wall, float(np.mean([h["img_per_s"] for h in hist])), info, line, weights)

    samples = rows["resident"][3]["needed_bytes"]
    print(f"samples: {samples / 2**20:.1f} MiB (uint8, {rows['resident'][3]['sample_bytes']} bytes each), --shuffle-window {args.window}; torch {__import__('torch').__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<10} {'peak RSS':>10} {'img/s':>8} {'wall':>7}  stderr line")
    for mode, (rss, wall, ips, info, line, _) in rows.items():
        print(f"{mode:<10} {rss:>7.0f} MiB {ips:>8.1f} {wall:>6.0f}s  {line}")
    a, b = rows["resident"][5], rows["streamed"][5]
    diff = max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) if a[k].size else 0.0 for k in a)
    print(f"streamed / resident: peak RSS {rows['streamed'][0] / rows['resident'][0]:.2f}, img/s {rows['streamed'][2] / rows['resident'][2]:.2f}; "
          f"weights max |difference| {diff}")
    if args.rounds:
        interleaved(data, args)


def interleaved(data: str, args: argparse.Namespace) -> None:
    """Epochs of one model, resident and streamed in turn (which goes first alternates)."""
    import numpy as np
    import torch

    from fercli import artifacts
    from fercli.models.recipe import TrainingRecipe
    from fercli.models.registry import build
    from fercli.protocol.samples import SampleReader, SampleSpec, clip_labels
    from fercli.train.engine import DeviceData, Dist, Engine, FitOptions, global_batches, sample_order
    from fercli.train.stream import StreamedData

    clips, _, _ = artifacts.load_clips(data, "bench", lazy=True)
    rows = np.arange(min(args.subset, len(clips)))
    reader = SampleReader([(clips, rows, clip_labels(clips, clips.class_names))], clips.class_names, SampleSpec(("image",), 1, "all"))
    cpu = torch.device("cpu")
    sources = {"resident": DeviceData.put(reader.read_all(), cpu), "streamed": StreamedData(reader, cpu, args.load)}
    torch.manual_seed(0)
    model, _ = build("plain-cnn", len(clips.class_names), {"width": 0.125, "in_channels": 1, "input_size": args.size})
    engine = Engine(model, ("image",), FitOptions(epochs=1000, batch_size=args.batch, lr=0.01, optimizer="sgd", shuffle_window=args.window).with_recipe(TrainingRecipe()),
                    cpu, Dist())
    engine.train_epoch(sources["resident"], 0)  # warm-up
    rates: dict[str, list[float]] = {"resident": [], "streamed": []}
    for r in range(args.rounds):
        for mode in (("resident", "streamed") if r % 2 == 0 else ("streamed", "resident")):
            rates[mode].append(engine.train_epoch(sources[mode], r + 1)["img_per_s"])
    ratios = [s / r for s, r in zip(rates["streamed"], rates["resident"])]
    res, st = np.median(rates["resident"]), np.median(rates["streamed"])
    print(f"in one process, {len(reader)} samples, {args.rounds} rounds, streamed loads of {args.load} samples "
          f"({-(-len(reader) // args.load)} per epoch): median resident {res:.1f} img/s, streamed {st:.1f} img/s, "
          f"ratio of medians {st / res:.2f} (per round {', '.join(f'{x:.2f}' for x in ratios)})")
    # What streaming adds, without the training: grouping the batches, reading and building every load.
    order = sample_order(len(reader), args.window, torch.Generator().manual_seed(0))
    batches = global_batches(order, args.batch, engine.opts.augment, torch.Generator().manual_seed(0), Dist())
    wall, cpu_s = time.perf_counter(), time.process_time()
    for _ in sources["streamed"].feed(batches):
        pass
    wall, cpu_s = time.perf_counter() - wall, time.process_time() - cpu_s
    print(f"reading an epoch's loads alone: {wall:.2f} s wall, {cpu_s:.2f} s CPU = {100 * wall * st / len(reader):.1f} % "
          f"of a streamed epoch ({len(reader) / st:.1f} s)")


if __name__ == "__main__":
    main()
