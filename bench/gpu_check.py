"""One-command GPU check: what fercli's CUDA path does on this card, as one table.

    make gpu-check                       # python bench/gpu_check.py --require-gpu (about 5-8 minutes)
    python bench/gpu_check.py --smoke    # the same checks, tiny, on the CPU (< 1 min; tests/test_gpu_check.py)

Every line is a check that passes or fails (with the error's last line):

- throughput: `fercli train`'s engine vs a bare forward/backward loop (bench/bench_train.py's
  :func:`measure`), img/s, same model, batch and precision -- bf16 autocast + channels-last on
  CUDA -- for plain-cnn 64x64, mobilenet-v3 96x96, lb-mbnet-59 r6 and r80 32x32; goal: the
  engine >= 90 % of the bare loop ("BELOW GOAL" otherwise), and the engine under
  `train --compile` (torch.compile; compilation time shown) while the time budget allows.
- chapter 5 on the device: lb-mbnet r80 -> prune -> rebuild -> retrain r6, a few epochs each,
  on CIFAR-shaped (32x32 colour) synth faces; `fercli train --compile` (an artifact with the
  plain module's parameter names); a run stopped by SIGTERM and resumed (weights vs an
  uninterrupted run); DDP through torchrun (NCCL with two GPUs, gloo on the CPU in --smoke; one
  GPU: skipped -- NCCL refuses two ranks on one device); `evaluate --device`; `live` (its
  engine is the CPU's, on the model trained on the device).

The CLI checks run the real commands (forked from this warm interpreter in --smoke, fresh
processes on a GPU).  Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

import torch  # noqa: E402

from bench_train import measure  # noqa: E402

GOAL = 0.90
# SGD for the runs whose weights are compared: Adam divides by the gradient's running RMS, so
# float-rounding differences in near-zero gradients become lr-sized steps.
SGD = ["--optimizer", "sgd", "--lr", "0.05"]


@dataclass
class Row:
    check: str
    status: str  # PASS | FAIL | SKIP | BELOW GOAL
    result: str
    seconds: float
    data: dict = field(default_factory=dict)


class Failed(Exception):
    """A check's one-line reason for failing."""


@dataclass
class Plan:
    """What each check does: full size on a GPU, tiny in --smoke."""

    device: str
    smoke: bool
    synth: list[str]
    steps: int
    rounds: int
    throughput: list[tuple[str, str, int, int, dict]]  # label, arch, size, batch, config
    compile_throughput: bool
    chain: list[str]  # lb-mbnet options shared by the chapter-5 runs
    chain_ratios: tuple[int, int]
    chain_epochs: int
    small: list[str]  # plain-cnn runs: resume, --compile, live
    small_epochs: int
    ddp: list[str]


def make_plan(device: str, smoke: bool) -> Plan:
    if smoke:
        quarter = ["--config", "channels=[16,8,16,32,64,128]"]
        return Plan(device, True,
                    synth=["--subjects", "4", "--classes", "happy,surprise", "--frames", "4:5", "--size", "320x240"],
                    steps=2, rounds=1,
                    throughput=[("plain-cnn 64x64", "plain-cnn", 64, 4, {"width": 0.25}),
                                ("mobilenet-v3 96x96", "mobilenet-v3", 96, 2, {"width_mult": 0.35}),
                                ("lb-mbnet-32 r6 32x32 (quarter channels)", "lb-mbnet", 32, 4, {"depth": 32, "expansion": 6, "channels": [16, 8, 16, 32, 64, 128]}),
                                ("lb-mbnet-32 r80 32x32 (quarter channels)", "lb-mbnet", 32, 2, {"depth": 32, "expansion": 80, "channels": [16, 8, 16, 32, 64, 128]})],
                    compile_throughput=False,
                    chain=["--depth", "32", *quarter, "--batch-size", "8"], chain_ratios=(8, 2), chain_epochs=1,
                    # one batch per epoch (the whole training part): one shape, one compilation
                    small=["--config", "width=0.25", "--config", "dropout=0", "--config", "batch_norm=false", "--batch-size", "256", *SGD],
                    small_epochs=6,
                    ddp=["--config", "width=0.25", "--config", "dropout=0", "--config", "batch_norm=false", "--batch-size", "8", "--epochs", "2", *SGD])
    return Plan(device, False,
                synth=["--subjects", "12", "--clips-per-class", "2", "--classes", "happy,sadness,surprise,anger", "--frames", "6:10", "--size", "320x240"],
                steps=12, rounds=5,
                throughput=[("plain-cnn 64x64", "plain-cnn", 64, 512, {}),
                            ("mobilenet-v3 96x96", "mobilenet-v3", 96, 256, {}),
                            ("lb-mbnet-59 r6 32x32", "lb-mbnet", 32, 1024, {"depth": 59, "expansion": 6}),
                            ("lb-mbnet-59 r80 32x32", "lb-mbnet", 32, 256, {"depth": 59, "expansion": 80})],
                compile_throughput=True,
                chain=["--depth", "59", "--batch-size", "128"], chain_ratios=(80, 6), chain_epochs=3,
                small=["--config", "dropout=0", "--batch-size", "32", *SGD], small_epochs=60,
                # BatchNorm on: with two GPUs the engine runs SyncBatchNorm
                ddp=["--config", "dropout=0", "--batch-size", "64", "--epochs", "5", *SGD])


# --------------------------------------------------------------------------- running commands


class Cli:
    """Runs `fercli ...` in WORKDIR: forked from this interpreter (fast, CPU only) or as a
    fresh process (CUDA must not be forked)."""

    def __init__(self, workdir: str, fork: bool):
        self.workdir = workdir
        self.fork = fork
        self.count = 0

    def start(self, args: list[str]) -> "Job":
        self.count += 1
        out = os.path.join(self.workdir, f"cmd{self.count:02d}.out")
        err = os.path.join(self.workdir, f"cmd{self.count:02d}.err")
        sys.stdout.flush()
        sys.stderr.flush()
        if self.fork:
            pid = os.fork()
            if pid == 0:
                # the fault suite's forked child: fds 0/1/2 redirected, fercli.cli.main(args), os._exit
                sys.path.insert(0, os.path.join(ROOT, "tests", "faults"))
                from fork_server import _child

                _child({"args": args, "cwd": self.workdir, "stdin": None, "stdout": out, "stderr": err})
            return Job(args, out, err, pid=pid)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen([sys.executable, "-m", "fercli", *args], cwd=self.workdir, stdout=fo, stderr=fe,
                                    env={**os.environ, "PYTHONPATH": ROOT})
        return Job(args, out, err, proc=proc)

    def run(self, *args: str, timeout: float = 600) -> "Job":
        return self.start(list(args)).check(timeout)


@dataclass
class Job:
    args: list[str]
    out: str
    err: str
    pid: int = 0
    proc: subprocess.Popen | None = None
    rc: int | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    def poll(self) -> int | None:
        if self.rc is None:
            if self.proc is not None:
                self.rc = self.proc.poll()
            else:
                done, status = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    self.rc = os.waitstatus_to_exitcode(status)
            if self.rc is not None:
                self.ended = time.monotonic()
        return self.rc

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                self.signal(signal.SIGKILL)
                self.wait(30)
                raise Failed(f"fercli {self.args[0]} did not finish within {timeout:.0f} s")
            time.sleep(0.01)
        return self.rc

    def check(self, timeout: float) -> "Job":
        """Wait; Failed with the command's last message unless it exited 0."""
        if self.wait(timeout) != 0:
            raise Failed(f"fercli {self.args[0]} exited {self.rc}: {self.last_error()}")
        return self

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid if self.proc is not None else self.pid, signum)

    def stdout(self) -> str:
        with open(self.out, errors="replace") as f:
            return f.read()

    def stderr(self) -> str:
        with open(self.err, errors="replace") as f:
            return f.read()

    def last_error(self) -> str:
        lines = [ln.strip() for ln in self.stderr().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else "(no message)"


def model_state(path: str) -> dict:
    from fercli.train import load_model_file

    return load_model_file(path, "gpu check").record.state


def max_diff(a: dict, b: dict) -> float:
    import numpy as np

    if set(a) != set(b):
        raise Failed(f"the two models have different parameters ({sorted(set(a) ^ set(b))[:3]} ...)")
    return max((float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in a if a[k].size), default=0.0)


def history(path: str) -> list[dict]:
    from fercli.train import load_model_file

    return load_model_file(path, "gpu check").record.history


def rate(hist: list[dict]) -> float:
    """Median img/s over the epochs after the first (which includes warm-up / compilation)."""
    values = [h["img_per_s"] for h in hist[1:] if h.get("img_per_s")] or [h["img_per_s"] for h in hist if h.get("img_per_s")]
    return statistics.median(values) if values else 0.0


# --------------------------------------------------------------------------- the checks


class Check:
    def __init__(self, plan: Plan, cli: Cli, work: str, budget: float):
        self.plan = plan
        self.cli = cli
        self.work = work
        self.budget = budget
        self.t0 = time.monotonic()
        self.rows: list[Row] = []
        self.dev = ["--device", plan.device]
        self.fold = ["--fold", "0", "--n-folds", "2"]

    def path(self, name: str) -> str:
        return os.path.join(self.work, name)

    def row(self, name: str, fn, *args) -> Row:
        t = time.monotonic()
        try:
            status, result, data = fn(*args)
        except Failed as exc:
            status, result, data = "FAIL", str(exc), {}
        except Exception as exc:  # a check that crashes is a failed check, reported in one line
            status, result, data = "FAIL", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", {}
        seconds = data.pop("seconds", None) if isinstance(data, dict) else None  # a check run in the background
        r = Row(name, status, result, round(seconds if seconds is not None else time.monotonic() - t, 1), data)
        self.rows.append(r)
        print(f"  {r.status:<10} {r.check}: {r.result}  ({r.seconds:.0f} s)", file=sys.stderr, flush=True)
        return r

    # -- data -------------------------------------------------------------------
    def data(self):
        p = self.plan
        self.cli.run("synth", *p.synth, "--color", "--seed", "3", "--video", self.path("faces.mp4"), "-o", self.path("raw.h5"))
        jobs = [self.cli.start(["align", self.path("raw.h5"), "--size", "32", "--color", "-o", self.path("c32.h5")]),
                self.cli.start(["align", self.path("raw.h5"), "--size", "64", "-o", self.path("g64.h5")])]
        for job in jobs:
            job.check(600)
        from fercli import artifacts

        clips = artifacts.load_clips(self.path("c32.h5"), "gpu check")[0]
        return "PASS", f"synth -> align: {len(clips.offsets) - 1} clips, {clips.frames.shape[0]} frames, 32x32 colour + 64x64 gray", {}

    # -- chapter 5 chain --------------------------------------------------------------
    def chain(self):
        p = self.plan
        big, small = p.chain_ratios
        e = ["--epochs", str(p.chain_epochs)]
        data = self.path("c32.h5")
        self.cli.run("train", "lb-mbnet", data, "--expansion", str(big), *p.chain, *e, "--size", "32", *self.fold, *self.dev, "-q", "-o", self.path("large.h5"))
        # no --fold: prune reads the model's own training part (or, in older versions, every clip)
        self.cli.run("prune", self.path("large.h5"), data, "--expansion", str(small), *self.dev, "-o", self.path("pruning.h5"))
        self.cli.run("rebuild", self.path("pruning.h5"), "-o", self.path("rebuilt.h5"))
        self.cli.run("train", "lb-mbnet", data, "--init-from", self.path("rebuilt.h5"), "--expansion", str(small), *p.chain, *e, "--size", "32",
                     *self.fold, *self.dev, "-q", "-o", self.path("re-small.h5"))
        hist = history(self.path("re-small.h5"))
        dev = json.loads(_attr(self.path("re-small.h5"), "extra"))["run"]["device"]
        if not dev.startswith(self.plan.device):
            raise Failed(f"the retrained model ran on {dev}, not {self.plan.device}")
        return "PASS", (f"r{big} -> prune r{small} -> rebuild -> retrain, {p.chain_epochs} epoch(s) each on {dev}: "
                        f"test acc {hist[-1].get('test_acc', float('nan')):.3f}, {rate(hist):.0f} img/s"), {"device": dev}

    # -- resume after SIGTERM -----------------------------------------------------------
    def small_args(self, epochs: int) -> list[str]:
        return ["train", "plain-cnn", self.path("g64.h5"), *self.plan.small, "--epochs", str(epochs), "--frame", "all", *self.fold, *self.dev]

    def resume(self):
        n = self.plan.small_epochs
        self.cli.run(*self.small_args(n), "-q", "-o", self.path("whole.h5"))
        out = self.path("stopped.h5")
        job = self.cli.start([*self.small_args(n), "-o", out])
        deadline = time.monotonic() + 600
        while not os.path.exists(out):  # the first checkpoint is on disk: interrupt now
            if job.poll() is not None or time.monotonic() > deadline:
                raise Failed(f"the run ended (exit {job.rc}) before its first checkpoint: {job.last_error()}")
            time.sleep(0.005)
        job.signal(signal.SIGTERM)
        rc = job.wait(600)
        m = re.search(r"stopped by signal 15 at epoch (\d+) of", job.stderr())
        if rc != 128 + signal.SIGTERM or not m:
            raise Failed(f"SIGTERM did not stop the run with a checkpoint (exit {rc}): {job.last_error()}")
        stopped_at = int(m.group(1))
        if stopped_at >= n:
            raise Failed(f"the run finished ({n} epochs) before SIGTERM arrived: use more epochs")
        first = history(out)
        self.cli.run(*self.small_args(n), "--resume", "-q", "-o", out)
        hist = history(out)
        if len(hist) != n or hist[:stopped_at] != first[:stopped_at]:
            raise Failed(f"the resumed run has {len(hist)} epochs (want {n}) or rewrote the first {stopped_at}")
        diff = max_diff(model_state(out), model_state(self.path("whole.h5")))
        exact = self.plan.device == "cpu"
        if exact and diff != 0.0:
            raise Failed(f"resumed on the CPU but max |dw| = {diff:.3g} vs the uninterrupted run (must be bit-identical)")
        note = "bit-identical" if diff == 0.0 else f"max |dw| {diff:.2g} (CUDA kernels are not bitwise deterministic)"
        return "PASS", f"SIGTERM at epoch {stopped_at} of {n}, resumed to {n}: vs uninterrupted run {note}", {"max_diff": diff, "stopped_at": stopped_at}

    # -- train --compile ------------------------------------------------------------------
    def start_compile(self) -> Job:
        """Compiling takes long on a CPU: it runs alongside the next checks."""
        return self.cli.start([*self.small_args(self.plan.small_epochs), "--compile", "-q", "-o", self.path("compiled.h5")])

    def compile(self, job: Job):
        job.check(900)
        out = self.path("compiled.h5")
        if not os.path.exists(self.path("whole.h5")):
            raise Failed("no eager run to compare with (the resume check failed)")
        import h5py

        names: list[str] = []
        with h5py.File(out) as f:
            f.visit(names.append)
        leaked = [x for x in names if "_orig_mod" in x or "module." in x]
        if leaked:
            raise Failed(f"compiled-module prefixes leaked into the artifact: {leaked[:2]}")
        fit = json.loads(_attr(out, "extra"))["run"]["options"]["fit"]
        if fit.get("compile") is not True:
            raise Failed(f"the run config does not record --compile (fit options: {fit})")
        eager, compiled = model_state(self.path("whole.h5")), model_state(out)
        diff = max_diff(compiled, eager)  # same parameter names, or Failed
        speed = rate(history(out)) / max(rate(history(self.path("whole.h5"))), 1e-9)
        return "PASS", (f"{len(compiled)} tensors under the plain module's names, recorded in the run config; "
                        f"max |dw| vs eager {diff:.2g}; {speed:.2f}x the eager run's img/s (after epoch 1)"), \
            {"max_diff": diff, "speedup": speed, "seconds": job.ended - job.started}

    # -- DDP ---------------------------------------------------------------------------------
    def ddp(self):
        plan = self.plan
        if plan.device == "cuda" and torch.cuda.device_count() < 2:
            return "SKIP", ("one GPU: NCCL refuses two ranks on one device ('Duplicate GPU detected'), "
                            "so DDP needs 2 GPUs; the CPU smoke runs it with gloo"), {}
        args = ["train", "plain-cnn", self.path("g64.h5"), *plan.ddp, "--frame", "all", *self.fold, *self.dev, "-q"]
        self.cli.run(*args, "-o", self.path("ddp-1.h5"))
        env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "fercli", *args, "-o", self.path("ddp-2.h5")]
        proc = subprocess.run(cmd, cwd=self.work, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or ["(no message)"]
            raise Failed(f"torchrun exited {proc.returncode}: {tail[0][:300]}")
        run = json.loads(_attr(self.path("ddp-2.h5"), "extra"))["run"]
        if run["world_size"] != 2:
            raise Failed(f"the run recorded world size {run['world_size']}, not 2")
        diff = max_diff(model_state(self.path("ddp-2.h5")), model_state(self.path("ddp-1.h5")))
        backend = "NCCL" if plan.device == "cuda" else "gloo"
        if plan.device == "cpu" and diff > 1e-5:
            raise Failed(f"2 gloo ranks differ from one process by {diff:.3g} (> 1e-5)")
        return "PASS", f"torchrun 2 ranks ({backend}) on {run['device']}: max |dw| vs one process {diff:.2g}", {"max_diff": diff}

    # -- evaluate / live -----------------------------------------------------------------------
    def evaluate(self):
        accs = {}
        for dev in dict.fromkeys([self.plan.device, "cpu"]):
            job = self.cli.run("evaluate", self.path("re-small.h5"), self.path("c32.h5"), "--json", "--no-latency", "--device", dev)
            accs[dev] = json.loads(job.stdout())["accuracy_mean"]
        text = ", ".join(f"{d}: acc {a:.3f}" for d, a in accs.items())
        return "PASS", f"evaluate --device {self.plan.device} on the retrained r{self.plan.chain_ratios[1]} ({text})", {"accuracy": accs}

    def live(self):
        job = self.cli.run("live", self.path("whole.h5"), "--source", self.path("faces.mp4"), "--headless", "--max-frames", "40")
        windows = [json.loads(ln) for ln in job.stdout().splitlines() if ln.startswith("{")]
        if not windows:
            raise Failed("live printed no window")
        return "PASS", (f"{len(windows)} windows over 40 frames of the synth video with the model trained on "
                        f"{self.plan.device} (live's engine is the CPU's: it has no --device)"), {"windows": len(windows)}

    # -- throughput ----------------------------------------------------------------------------
    def throughput(self, label: str, arch: str, size: int, batch: int, cfg: dict, compile: bool):
        p = self.plan
        compile_error = None
        try:
            r = measure(arch, size, batch, p.steps, p.rounds, device=p.device, config=cfg, compile=compile)
        except Exception as exc:
            if not compile:
                raise
            compile_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            if p.device == "cuda":
                torch.cuda.empty_cache()
            r = measure(arch, size, batch, p.steps, p.rounds, device=p.device, config=cfg)  # the eager figures still count
        text = f"batch {batch}: bare {r['bare']:.0f} img/s, train {r['engine']:.0f} img/s = {100 * r['ratio']:.0f} % of bare"
        if compile_error:
            text += f"; train --compile FAILED: {compile_error}"
        elif compile:
            text += f"; train --compile {r['compiled']:.0f} img/s ({r['compiled'] / r['bare']:.2f}x bare; compiling took {r['compile_s']:.0f} s)"
        elif p.compile_throughput:
            text += "; --compile not measured: time budget"
        status = "FAIL" if compile_error else "PASS" if p.smoke or r["ratio"] >= GOAL else "BELOW GOAL"
        if p.smoke:
            text += " (CPU smoke: speed not judged)"
        return status, text, r

    def all(self) -> list[Row]:
        p = self.plan
        data = self.row("data", self.data)
        if data.status == "PASS":
            compiling = self.start_compile()
            chain = self.row("chapter 5 chain", self.chain)
            self.row("resume after SIGTERM", self.resume)
            self.row("DDP", self.ddp)
            if chain.status == "PASS":
                self.row("evaluate", self.evaluate)
            if os.path.exists(self.path("whole.h5")):
                self.row("live", self.live)
            self.row("train --compile", self.compile, compiling)
        for label, arch, size, batch, cfg in p.throughput:
            left = self.budget - (time.monotonic() - self.t0)
            compile = p.compile_throughput and left > 150  # a cold compile of a deep net takes a minute or two
            self.row(f"throughput {label}", self.throughput, label, arch, size, batch, cfg, compile)
        return self.rows


def _attr(path: str, name: str) -> str:
    import h5py

    with h5py.File(path) as f:
        return f.attrs[name]


# --------------------------------------------------------------------------- report


def describe_device(device: str) -> str:
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return (f"{props.name} ({props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} visible), "
                f"torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 autocast + channels-last")
    return f"CPU smoke, not a GPU result: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, float32"


def table(rows: list[Row], header: str) -> str:
    lines = [f"fercli GPU check -- {header}", "", "| check | status | result | s |", "| --- | --- | --- | ---: |"]
    for r in rows:
        lines.append(f"| {r.check} | {r.status} | {r.result.replace('|', '/')} | {r.seconds:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (the test suite's check that this script works)")
    ap.add_argument("--require-gpu", action="store_true", help="exit 2 when no CUDA GPU is visible (make gpu-check)")
    ap.add_argument("--budget", type=float, default=420, help="seconds after which the remaining --compile measurements are skipped")
    ap.add_argument("--json", dest="json_path", help="also write the rows as JSON here")
    ap.add_argument("--keep", help="keep the work files in this folder (default: a temporary one)")
    a = ap.parse_args(argv)
    if a.smoke:
        device = "cpu"
    elif torch.cuda.is_available():
        device = "cuda"
    else:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
        print(f"gpu_check: no CUDA GPU is visible (torch {torch.__version__}, a {build} build); nothing to check here. "
              f"`python bench/gpu_check.py --smoke` runs the same checks, tiny, on the CPU.", file=sys.stderr)
        return 2 if a.require_gpu else 0
    t0 = time.monotonic()
    header = describe_device(device)
    print(f"gpu_check: {header}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="fercli-gpu-check-") as tmp:
        work = a.keep or tmp
        os.makedirs(work, exist_ok=True)
        if a.smoke:
            torch.set_num_threads(1)
        checks = Check(make_plan(device, a.smoke), Cli(work, fork=a.smoke), work, a.budget)
        rows = checks.all()
    total = time.monotonic() - t0
    print(table(rows, header))
    failed = [r.check for r in rows if r.status == "FAIL"]
    print(f"\n{len(rows)} checks in {total:.0f} s: " + (f"FAILED: {', '.join(failed)}" if failed else "no failure"))
    if a.json_path:
        with open(a.json_path, "w") as f:
            json.dump({"device": header, "seconds": total, "rows": [asdict(r) for r in rows]}, f, indent=1, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
