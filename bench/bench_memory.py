"""Peak memory and frames/s of every stage at 1x, 4x and 16x the data (issue 19), synth.

    python bench/bench_memory.py                          # this checkout only
    python bench/bench_memory.py --code new=. --code base=/path/to/old/checkout
    python bench/bench_memory.py --quick                  # about a minute

Each stage runs as ``python -m fercli ...`` in its own process, with
``PYTHONPATH`` set to the checkout named by ``--code`` (so the same script
measures an old checkout and the new code side by side on the same machine);
its peak resident memory is the ``ru_maxrss`` that ``os.wait4`` reports for
it (the largest process of its tree).  Frames/s is the frames of the stage's
input over its wall time (Python start-up included, the same for both codes).

The data is synthetic: ``fercli synth --video`` renders a face video of
``--frames`` frames at 640x360 and at 720x576 (mp4, OpenCV's mp4v); the 1x
set is ``--videos`` copies of it, 4x and 16x four and sixteen times as many;
``ingest images`` reads the 640x360 frames as PNG files.  The later stages
(align, resample, lbptop, split, merge, table, info, show) run on what each code's
own ``ingest video`` wrote at that scale (``merge`` joins it with a copy of itself).  One more run ingests a single clip of
``--long-frames`` frames (``ingest video`` of one long file, and ``align`` of it).

Printed: one row per stage, code and scale (peak MiB, frames/s), then per
stage the growth (peak at the largest scale / peak at 1x) and, with two codes,
frames/s of the first over the second at each scale both ran.  ``--base-max``
caps the scale of every code but the first: the old in-memory path holds ~2.5x
the decoded data, so its 16x would not fit a small machine.

Not measured: ``prune`` and ``export`` need a trained model (``prune`` reads its
samples in loads, as ``evaluate`` does; ``export`` reads no data at all).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Run:
    stage: str
    code: str
    scale: int
    frames: int
    peak_mib: float
    seconds: float
    ok: bool
    note: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def measure(code_dir: str, args: list[str], cwd: str, timeout: float) -> tuple[float, float, bool, str]:
    """(peak MiB, seconds, ok, last stderr line) of ``python -m fercli ARGS`` run from ``code_dir``."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(code_dir))
    err_path = os.path.join(cwd, "stderr.txt")
    with open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "fercli", *args], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(err_path, "rb") as fh:
        lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    return usage.ru_maxrss / 1024.0, seconds, proc.returncode == 0, (lines[-1] if lines else "")[:120]


def fercli(code_dir: str, args: list[str], cwd: str) -> None:
    """Run a preparation step (not measured); fail loudly."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(code_dir))
    subprocess.run([sys.executable, "-m", "fercli", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_video(code_dir: str, work: str, name: str, size: str, frames: int) -> str:
    """A synth face video of ``frames`` frames (clips of 12 frames rendered one after another)."""
    path = os.path.join(work, name)
    if os.path.exists(path):
        return path
    per_subject = 7 * 12
    subjects = max(1, -(-frames // per_subject))
    fercli(code_dir, ["synth", "--subjects", str(subjects), "--frames", "12:12", "--size", size, "--seed", "3",
                      "--video", path, "-o", os.path.join(work, "unused.h5")], work)
    os.unlink(os.path.join(work, "unused.h5"))
    if subjects * per_subject != frames:  # cut to the asked length
        import cv2

        cap = cv2.VideoCapture(path)
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        tmp = path + ".cut.mp4"
        writer = None
        for _ in range(frames):
            ok, frame = cap.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0]))
            writer.write(frame)
        cap.release()
        writer.release()
        os.replace(tmp, path)
    return path


def video_folder(work: str, video: str, copies: int, tag: str) -> str:
    """``copies`` hard links of ``video`` in class folders (labels alternate happy / sadness)."""
    root = os.path.join(work, f"videos-{tag}-{copies}")
    if not os.path.isdir(root):
        for i in range(copies):
            folder = os.path.join(root, ("happy", "sadness")[i % 2])
            os.makedirs(folder, exist_ok=True)
            os.link(video, os.path.join(folder, f"v{i:04d}.mp4"))
    return root


def image_folder(work: str, video: str, copies: int) -> tuple[str, int]:
    """The frames of ``video`` as PNG files, ``copies`` times (hard links), in class folders."""
    import cv2

    src = os.path.join(work, "frames-png")
    if not os.path.isdir(src):
        os.makedirs(src)
        cap = cv2.VideoCapture(video)
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            cv2.imwrite(os.path.join(src, f"f{i:05d}.png"), frame)
            i += 1
        cap.release()
    names = sorted(os.listdir(src))
    root = os.path.join(work, f"images-{copies}")
    if not os.path.isdir(root):
        for c in range(copies):
            folder = os.path.join(root, ("happy", "sadness")[c % 2])
            os.makedirs(folder, exist_ok=True)
            for n in names:
                os.link(os.path.join(src, n), os.path.join(folder, f"c{c:03d}-{n}"))
    return root, len(names) * copies


def frames_in(path: str) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f["frames"].shape[0])


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", action="append", default=[], metavar="NAME=DIR",
                    help="a checkout to measure (PYTHONPATH for its runs); repeat for side by side; default this checkout")
    ap.add_argument("--frames", type=int, default=100, help="frames per video (default 100)")
    ap.add_argument("--videos", type=int, default=4, help="videos in the 1x set (default 4: 400 frames of 640x360, 276 MiB decoded)")
    ap.add_argument("--scales", default="1,4,16", help="data multiples (default 1,4,16)")
    ap.add_argument("--base-max", type=int, default=4, help="largest scale run for every code but the first (default 4)")
    ap.add_argument("--long-frames", type=int, default=10_000, help="frames of the one-clip run (0 = skip; default 10000)")
    ap.add_argument("--stages", default="", help="comma-separated subset of the stages")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    ap.add_argument("--work", default="", help="folder for the data (default a temporary one, removed)")
    ap.add_argument("--videos-720", type=int, default=2, help="720x576 videos in the 1x set (default 2)")
    ap.add_argument("--save", default="", help="also write the runs to this JSON file")
    ap.add_argument("--compare", action="append", default=[], metavar="JSON",
                    help="runs saved earlier (--save) shown beside this run's, e.g. the baseline measured before a change")
    ap.add_argument("--quick", action="store_true", help="small data, scales 1 and 4, no long clip: about a minute")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.videos, args.videos_720, args.scales, args.long_frames = 24, 2, 1, "1,4", 0
        args.stages = args.stages or "ingest-video,ingest-images,synth,align,split,info"
    codes = [tuple(c.split("=", 1)) if "=" in c else (os.path.basename(os.path.abspath(c)), c) for c in args.code]
    codes = codes or [("this", os.path.join(HERE, ".."))]
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    wanted = {s.strip() for s in args.stages.split(",") if s.strip()}
    work = args.work or tempfile.mkdtemp(prefix="bench-memory-")
    os.makedirs(work, exist_ok=True)
    prep_code = codes[0][1]
    runs: list[Run] = []

    def want(stage: str) -> bool:
        return not wanted or stage in wanted

    def record(stage: str, code: str, scale: int, frames: int, result: tuple[float, float, bool, str]) -> None:
        peak, seconds, ok, last = result
        runs.append(Run(stage, code, scale, frames, peak, seconds, ok, "" if ok else last))
        print(f"  {stage:16s} {code:8s} {scale:>3}x  {frames:>6} frames  {peak:8.0f} MiB  {seconds:7.1f} s"
              f"{'' if ok else '  FAILED: ' + last}", flush=True)

    try:
        v640 = make_video(prep_code, work, "face-640x360.mp4", "640x360", args.frames)
        v720 = make_video(prep_code, work, "face-720x576.mp4", "720x576", args.frames)
        for scale in scales:
            copies = args.videos * scale
            for name, code_dir in codes:
                if name != codes[0][0] and scale > args.base_max:
                    continue
                out = os.path.join(work, f"{name}-{scale}")
                os.makedirs(out, exist_ok=True)
                raw = os.path.join(out, "raw.h5")
                n_raw = args.frames * copies

                def stage(label: str, argv_: list[str], frames: int) -> bool:
                    if not want(label):
                        return False
                    record(label, name, scale, frames, measure(code_dir, argv_, out, args.timeout))
                    return runs[-1].ok

                need_raw = any(want(s) for s in ("ingest-video", "align", "resample", "lbptop", "split", "merge", "table", "info", "show"))
                if need_raw:
                    if not stage("ingest-video", ["ingest", "video", video_folder(work, v640, copies, "640"), "-o", raw], n_raw):
                        fercli(code_dir, ["ingest", "video", video_folder(work, v640, copies, "640"), "-o", raw], out)
                stage("ingest-video-720", ["ingest", "video", video_folder(work, v720, args.videos_720 * scale, "720"), "-o", "raw720.h5"],
                      args.frames * args.videos_720 * scale)
                if want("ingest-images"):
                    folder, n_img = image_folder(work, v640, scale * max(1, args.videos // 2))
                    stage("ingest-images", ["ingest", "images", folder, "-o", "img.h5"], n_img)
                subjects = max(1, args.frames * args.videos // 84) * scale
                stage("synth", ["synth", "--subjects", str(subjects), "--frames", "12:12", "--size", "640x360",
                                "-o", "synth.h5"], subjects * 84)
                aligned = os.path.join(out, "aligned.h5")
                if want("align") or any(want(s) for s in ("resample", "lbptop")):
                    if not stage("align", ["align", raw, "--size", "64", "-o", aligned], n_raw):
                        fercli(code_dir, ["align", raw, "--size", "64", "-o", aligned], out)
                n_al = frames_in(aligned) if os.path.exists(aligned) else 0
                resampled = os.path.join(out, "resampled.h5")
                if want("resample") or want("lbptop"):
                    if not stage("resample", ["resample", aligned, "-n", "10", "-o", resampled], n_al):
                        fercli(code_dir, ["resample", aligned, "-n", "10", "-o", resampled], out)
                n_rs = frames_in(resampled) if os.path.exists(resampled) else 0
                stage("lbptop", ["lbptop", resampled, "-o", "lbptop.h5"], n_rs)
                stage("split", ["split", raw, "--folds", "2", "-o", "split.h5"], n_raw)
                if want("merge"):  # the artifact and a copy of it: inputs of the same parameters
                    shutil.copyfile(raw, os.path.join(out, "raw-copy.h5"))
                stage("merge", ["merge", raw, "raw-copy.h5", "--prefix-ids", "-o", "merged.h5"], 2 * n_raw)
                stage("table", ["table", raw, "-o", "frames.csv"], n_raw)
                stage("info", ["info", raw], n_raw)
                stage("show", ["show", raw, "-o", "sheet.png"], n_raw)
                for f in ("raw720.h5", "img.h5", "synth.h5", "lbptop.h5", "split.h5", "raw-copy.h5", "merged.h5", "frames.csv", "sheet.png"):
                    with_path = os.path.join(out, f)
                    if os.path.exists(with_path):
                        os.unlink(with_path)
        if args.long_frames and want("long-clip"):
            long_video = make_video(prep_code, work, "face-long.mp4", "640x360", args.long_frames)
            folder = os.path.join(work, "long", "happy")
            os.makedirs(folder, exist_ok=True)
            if not os.path.exists(os.path.join(folder, "long.mp4")):
                os.link(long_video, os.path.join(folder, "long.mp4"))
            name, code_dir = codes[0]  # the in-memory path would need ~17 GB for it
            out = os.path.join(work, f"{name}-long")
            os.makedirs(out, exist_ok=True)
            record("long-clip ingest", name, 1, args.long_frames,
                   measure(code_dir, ["ingest", "video", os.path.dirname(folder), "-o", "long.h5"], out, args.timeout))
            if runs[-1].ok:
                record("long-clip align", name, 1, args.long_frames,
                       measure(code_dir, ["align", "long.h5", "--size", "64", "-o", "long-al.h5"], out, args.timeout))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    if args.save:
        with open(args.save, "w") as fh:
            json.dump([dataclasses.asdict(r) for r in runs], fh, indent=1)
    for path in args.compare:
        with open(path) as fh:
            earlier = [Run(**r) for r in json.load(fh)]
        runs += earlier
        codes += [(c, "") for c in dict.fromkeys(r.code for r in earlier) if c not in {n for n, _ in codes}]
    report(runs, codes, scales)
    return 0 if all(r.ok for r in runs) else 1


def report(runs: list[Run], codes: list[tuple[str, str]], scales: list[int]) -> None:
    print("\nsynth data; peak RSS in MiB, frames/s")
    print(f"{'stage':18s} {'code':8s} " + " ".join(f"{f'{s}x peak':>9s} {f'{s}x f/s':>9s}" for s in scales) + f" {'growth':>7s}")
    stages = list(dict.fromkeys(r.stage for r in runs))
    by = {(r.stage, r.code, r.scale): r for r in runs}
    for st in stages:
        for name, _ in codes:
            cells, peaks = [], []
            for s in scales:
                r = by.get((st, name, s))
                if r is None:
                    cells.append(f"{'-':>9s} {'-':>9s}")
                elif not r.ok:
                    cells.append(f"{'failed':>9s} {'-':>9s}")
                else:
                    cells.append(f"{r.peak_mib:9.0f} {r.fps:9.1f}")
                    peaks.append(r.peak_mib)
            if not any((st, name, s) in by for s in scales):
                continue
            growth = f"{peaks[-1] / peaks[0]:7.2f}" if len(peaks) > 1 else f"{'-':>7s}"
            print(f"{st:18s} {name:8s} " + " ".join(cells) + f" {growth}")
    if len(codes) > 1:
        first, second = codes[0][0], codes[1][0]
        print(f"\nframes/s {first} / {second} (>= 0.95 is the goal), peak {first} / {second}")
        for st in stages:
            cells = []
            for s in scales:
                a, b = by.get((st, first, s)), by.get((st, second, s))
                if a and b and a.ok and b.ok:
                    cells.append(f"{s}x: f/s {a.fps / b.fps:5.2f}  peak {a.peak_mib / b.peak_mib:5.2f}")
            if cells:
                print(f"  {st:18s} " + "   ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
