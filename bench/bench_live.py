"""Benchmark: `fercli live` end to end on a 640x360 video with MobileNetV3 + GRU.

Renders a synth video (640x360 colour frames, 30 fps; or takes --video), builds
a cnn-gru model (MobileNetV3-Small backbone, or --arch mobilenet-v3-large, the
thesis's, at 96x96 colour, probability-distribution input, GRU 128: thesis
4.2.4.3 / Fig 4.3; random weights -- speed does not depend on them) and runs the live engine headless over the file: decode,
detection + tracking, crop + CNN per frame, GRU every 5 frames.

With --engines torch,onnx (default) it runs the CNN and GRU with eager PyTorch
and with onnxruntime on the same video.  Prints frames/s end to end (goal >= 60
on 2 CPU cores), the breakdown in ms per frame by part, and the per-frame
latency p50/p95.  Best of --repeats runs.

    python bench/bench_live.py [--frames 300] [--repeats 2] [--threads 1] [--engines torch,onnx]
    python bench/bench_live.py --arch mobilenet-v3-large --video talk.mp4   # the thesis's backbone, any video
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="inference threads")
    ap.add_argument("--engines", default="torch,onnx", help="engines to compare (onnx needs onnx + onnxruntime)")
    ap.add_argument("--arch", default="mobilenet-v3-small")
    ap.add_argument("--video", help="run on this video instead of a rendered synth one")
    args = ap.parse_args()

    from fercli import live
    from fercli.artifacts import ModelRecord
    from fercli.models import registry
    from fercli.synth import render_video, synthesize

    if not args.video:
        per_clip = 50
        clips = synthesize(subjects=max(1, args.frames // per_clip // 3 + 1), classes=["happy", "surprise", "sadness"],
                           frames=(per_clip, per_clip), size=(640, 360), color=True, seed=11)
        clips = clips.select(np.arange(min(len(clips), -(-args.frames // per_clip))))
    model, cfg = registry.build("cnn-gru", 7, {"backbone": args.arch, "backbone_config": {"in_channels": 3, "input_size": 96},
                                               "input": "probs", "fc": 0, "frames": 5})
    record = ModelRecord("cnn-gru", cfg, registry.state_to_numpy(model), ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"])
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or os.path.join(tmp, "bench.mp4")
        if not args.video:
            render_video(clips, video, fps=30.0)
        results = {}
        for engine in args.engines.split(","):
            try:
                live.resolve_engine(engine)
            except Exception as exc:  # noqa: BLE001 - report and go on with the others
                print(f"{engine}: skipped ({exc})")
                continue
            session = live.LiveSession(record, live.LiveOptions(window=5, threads=args.threads, engine=engine))
            best = None
            for _ in range(args.repeats):
                session.reset()
                timings = live.Timings()
                windows = sum(r.window is not None for r in live.run(session, live.open_source(video), timings, max_frames=args.frames))
                s = timings.summary()
                if best is None or s["fps"] > best["fps"]:
                    best, best["windows_seen"] = s, windows
            results[engine] = best
    for engine, best in results.items():
        what = os.path.basename(args.video) if args.video else "a 640x360 synth video (mp4v)"
        print(f"[{engine}] {args.arch} + GRU, {best['frames']} frames of {what}, {best['windows_seen']} windows of 5 frames, "
              f"{args.threads} inference thread(s), best of {args.repeats}")
        print(f"[{engine}] end to end: {best['fps']:.1f} frames/s (goal >= 60)")
        print(f"[{engine}] latency per frame: p50 {best['latency_ms_p50']:.2f} ms, p95 {best['latency_ms_p95']:.2f} ms")
        print(f"[{engine}] ms per frame by part: " + ", ".join(f"{k} {v:.2f}" for k, v in best["ms_per_frame"].items()))


if __name__ == "__main__":
    main()
