"""Benchmark: `fercli live` end to end, pipelined vs one thread, vs MediaPipe FaceMesh alone.

The video: synth clips with head motion (``fercli synth --motion``, 640x360
colour, 30 fps) rendered to an mp4 (mp4v), or ``--video FILE``.  The model: the
thesis's MobileNetV3-Large + GRU (chapter 4: 96x96 colour faces, the CNN's
probability distribution per frame into a GRU-128, a label every 5 frames), built
by ``fercli train``'s registry at its real size (3.1 M parameters) with
initialised weights -- speed does not depend on them; ``--arch`` picks another
backbone.  The CNN and GRU run in onnxruntime when ``onnx`` + ``onnxruntime`` are
installed, else in eager PyTorch (``--engine``).

Each repeat runs, one after another on the same machine (best of ``--repeats``,
the least disturbed run of each on a shared machine):

- the pipelined engine (decode, detect/track, CNN, GRU in threads: ``live --pipeline``),
- the one-thread engine (``live --no-pipeline``),
- MediaPipe FaceMesh 0.10.14 alone (detector + 468-point mesh, tracking between
  frames) on the same frames, decoded beforehand (its run has no decoding, no CNN,
  no GRU), in this Python or in a worker under ``--mediapipe-python`` (as
  bench_align.py runs it: mediapipe pins protobuf < 5, which breaks ``onnx``).

Prints frames/s end to end (wall clock), frames per CPU-second (all threads), the
latency from capture to label p50/p95 (on a file every queue is full: the latency
of a saturated pipeline), ms per frame by part, and the ratio of each engine's
frames/s to MediaPipe's: the figure (goal >= 1 with the pipeline).  Then
(``--paced``, default) both engines once more on the video delivered at its frame
rate, like a camera: the latency a camera user sees, and the frames dropped.

    python bench/bench_live.py [--frames 300] [--repeats 3] [--motion mild]
    python bench/bench_live.py --mediapipe-python /work/mpvenv/bin/python
    python bench/bench_live.py --video talk.mp4 --arch mobilenet-v3-small
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from bench_align import MediaPipe, read_rgb  # noqa: E402  (MediaPipe FaceMesh in-process or in a worker)

CLASSES = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]


def thesis_model(arch: str):
    """A cnn-gru of the thesis's shape (chapter 4), initialised weights."""
    from fercli.artifacts import ModelRecord
    from fercli.models import registry

    model, cfg = registry.build("cnn-gru", len(CLASSES), {"backbone": arch, "backbone_config": {"in_channels": 3, "input_size": 96},
                                                          "input": "probs", "fc": 0, "frames": 5})
    params = sum(p.numel() for p in model.parameters())
    return ModelRecord("cnn-gru", cfg, registry.state_to_numpy(model), CLASSES), params


def synth_video(path: str, frames: int, motion: str, seed: int) -> None:
    from fercli.synth import render_video, synthesize

    per_clip = 50
    n_clips = -(-frames // per_clip)
    classes = ["happy", "surprise", "sadness", "anger", "fear", "disgust", "contempt"]
    per_subject = min(len(classes), n_clips)
    clips = synthesize(subjects=-(-n_clips // per_subject), classes=classes[:per_subject], frames=(per_clip, per_clip),
                       size=(640, 360), color=True, seed=seed, motion=motion)
    render_video(clips.select(np.arange(n_clips)), path, fps=30.0)


def decoded_rgb(path: str, max_frames: int) -> np.ndarray:
    return read_rgb(path, max_frames, "bench_live")


class Paced:
    """The video at its frame rate, like a camera: a live source (the pipelined engine
    drops its frames when full) whose frames come due every 1/fps seconds."""

    live = True

    def __init__(self, source):
        self.source, self.fps = source, source.fps
        self.start, self.n = None, 0

    def wait(self):
        if self.start is None:
            self.start = time.perf_counter()
        wait = self.start + self.n / self.fps - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        self.n += 1

    def read(self):
        return self.source.read()

    def close(self):
        self.source.close()


def live_run(session, video: str, max_frames: int, pipeline: bool, paced: bool = False) -> dict:
    from fercli import live

    session.reset()
    timings = live.Timings()
    source = live.open_source(video)
    c0 = time.process_time()
    for _ in live.run(session, Paced(source) if paced else source, timings, max_frames=max_frames, pipeline=pipeline):
        pass
    summary = timings.summary()
    summary["cpu"] = time.process_time() - c0
    summary["wall"] = timings.wall
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--motion", default="mild", help="synth head motion: none, mild, strong")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--video", help="run on this video instead of a rendered synth one")
    ap.add_argument("--arch", default="mobilenet-v3-large", help="the CNN backbone (the thesis's: mobilenet-v3-large)")
    ap.add_argument("--engine", default="auto", help="auto (onnxruntime when installed), onnx or torch")
    ap.add_argument("--threads", type=int, default=1, help="inference threads")
    ap.add_argument("--faces", default="best", help="best or all")
    ap.add_argument("--paced", action=argparse.BooleanOptionalAction, default=True,
                    help="also run both engines once at the video's frame rate, like a camera (latency, dropped frames)")
    ap.add_argument("--mediapipe-python", help="a Python with mediapipe==0.10.14 to measure it in a worker process")
    args = ap.parse_args()

    from fercli import live

    record, params = thesis_model(args.arch)
    # As `fercli live --headless` without --csv: no head pose.
    options = live.LiveOptions(window=5, threads=args.threads, engine=args.engine, faces=args.faces, pose=False)
    session = live.LiveSession(record, options)
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or os.path.join(tmp, "bench.mp4")
        if not args.video:
            synth_video(video, args.frames, args.motion, args.seed)
        rgb = decoded_rgb(video, args.frames)
        what = os.path.basename(args.video) if args.video else f"synth --motion {args.motion} (seed {args.seed})"
        print(f"{what}: {len(rgb)} frames of {rgb.shape[2]}x{rgb.shape[1]}; {args.arch} + GRU ({params / 1e6:.2f} M parameters, "
              f"initialised weights), {session.engine} engine, {args.threads} inference thread(s), --faces {args.faces}; "
              f"best of {args.repeats}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        mp = MediaPipe([rgb], args.mediapipe_python, tmp)
        live_run(session, video, 30, False)  # graphs built and warmed up outside the timings
        best: dict[str, dict] = {}
        ratios = []  # pipelined / one thread, run back to back: steadier than a best-of under changing load
        for _ in range(args.repeats):
            fps = {}
            for name, pipeline in (("pipelined", True), ("one thread", False)):
                s = live_run(session, video, args.frames, pipeline)
                fps[name] = s["fps"]
                if name not in best or s["fps"] > best[name]["fps"]:
                    best[name] = s
            ratios.append(fps["pipelined"] / fps["one thread"])
            r = mp.run()
            if r is not None:
                ratios[-1] = (ratios[-1], fps["pipelined"] * r["wall"] / len(rgb))
                if "mediapipe" not in best or r["wall"] < best["mediapipe"]["wall"]:
                    best["mediapipe"] = {**r, "frames": len(rgb), "fps": len(rgb) / r["wall"]}
        paced = {name: live_run(session, video, args.frames, pipeline, paced=True)
                 for name, pipeline in (("pipelined", True), ("one thread", False))} if args.paced else {}
        load = os.getloadavg()[0]

    ref = best.get("mediapipe")
    print(f"{'':24s} {'frames/s':>9s} {'frames/CPU-s':>12s} {'latency p50/p95 ms':>19s} {'x MediaPipe':>12s}  ms per frame by part")
    for name in ("pipelined", "one thread"):
        s = best[name]
        ratio = f"{s['fps'] / ref['fps']:11.2f}x" if ref else f"{'':12s}"
        parts = ", ".join(f"{k} {v:.2f}" for k, v in s["ms_per_frame"].items())
        print(f"live, {name:18s} {s['fps']:9.1f} {s['frames'] / s['cpu']:12.1f} {s['latency_ms_p50']:9.2f} / {s['latency_ms_p95']:6.2f} "
              f"{ratio}  {parts}")
    if ref:
        print(f"{'MediaPipe FaceMesh alone':24s} {ref['fps']:9.1f} {ref['frames'] / ref['cpu']:12.1f} {'':19s} {1.0:11.2f}x  "
              f"faces found {ref['found']}/{ref['frames']} ({mp.mode}; decoded frames: no decoding, CNN or GRU in its time)")
    else:
        print(f"MediaPipe FaceMesh: {mp.note}")
    for name, p in paced.items():
        print(f"at {p['frames'] / p['wall']:.0f} frames/s like a camera, {name}: latency capture to label p50 {p['latency_ms_p50']:.2f} ms, "
              f"p95 {p['latency_ms_p95']:.2f} ms, {p['dropped']} frames dropped, {p['frames'] / p['cpu']:.1f} frames/CPU-s")
    pairs = [x if isinstance(x, tuple) else (x,) for x in ratios]
    print("per repeat, run back to back: pipelined / one thread " + ", ".join(f"{p[0]:.2f}x" for p in pairs)
          + (", pipelined / MediaPipe " + ", ".join(f"{p[1]:.2f}x" for p in pairs) if all(len(p) == 2 for p in pairs) else ""))
    print(f"best of each, pipelined / one thread: {best['pipelined']['fps'] / best['one thread']['fps']:.2f}x frames/s; "
          f"load average {load:.1f} at the end (a shared machine: figures move with the neighbours)")


if __name__ == "__main__":
    main()
