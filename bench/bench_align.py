"""Benchmark: fercli's face tracker vs naive per-frame dlib vs MediaPipe FaceMesh.

Same RGB frames for every method, in one run, repeats interleaved:

(a) naive: dlib's HOG detector on every full-resolution frame, then the 68-point
    predictor in the box it found (what a straightforward script does);
(b) fercli: :class:`fercli.tracking.FaceTracker` with ``align``'s defaults, and
    with ``--predict-every 1`` (the predictor on every frame, no optical flow);
(c) MediaPipe FaceMesh (``mediapipe==0.10.14``: its BlazeFace detector + 468-point
    mesh, tracking between frames), when it can be imported here or
    ``--mediapipe-python`` names a Python that has it.  MediaPipe pins
    protobuf < 5, which breaks the ``onnx`` package of fercli's dev install, so
    a separate venv is the clean way: ``python -m venv .venv-mp &&
    .venv-mp/bin/pip install mediapipe==0.10.14``.  Its 468-point mesh is mapped
    onto dlib's 68 (:data:`MP_TO_68`) for the landmark tables, where part of its
    difference is the two definitions';
(d) the whole ``align`` stage (tracker + registration + 64x64 crops).

Frames: synth clips at 640x360 colour with head motion (``--motion strong`` by
default: yaw/pitch/roll, shifts, scale, light change, motion blur, a brief
occlusion), or any video with ``--video FILE``.  Prints frames per CPU-second
(the steadier measure on a shared machine) and per wall-second, best of
``--repeats``; the "fercli x" column is how many times the default tracker's
frames per CPU-second that row's is.  Then the landmark difference of each
tracker from per-frame detection (mean and p95 over frames, % of the
inter-ocular distance; goal <= 2 % mean, <= 4 % p95), without the occluded
frames too, and, on synth, the error of both against the ground-truth landmarks.
Last, per region (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67;
:data:`fercli.tracking.REGIONS`) mean / p95 in % IOD of every method against
per-frame detection and, on synth, against the ground truth, and the jaw drop's
and lip opening's error against the truth with each clip's constant gap between
dlib's and synth's landmarks removed (what a lagging talking mouth shows;
:func:`fercli.tracking.opening_errors`).  ``--save F.json``
keeps the figures, ``--compare F.json`` prints saved ones (e.g. before a change)
below this run's.

    python bench/bench_align.py [--motion strong] [--clips 8] [--frames 60] [--repeats 3]
    python bench/bench_align.py --video talk.mp4 [--max-frames 600]
    python bench/bench_align.py --mediapipe-python .venv-mp/bin/python
    python bench/bench_align.py --save after.json --compare bench/align-regions-before.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


# --------------------------------------------------------------------------- MediaPipe (no fercli imports:
# this part also runs as a worker under another Python that has mediapipe)


#: MediaPipe FaceMesh's 468 points onto dlib's 68 (iBUG layout): each 68-point
#: landmark is the mean of these mesh vertices.  The mesh's face oval runs a little
#: outside dlib's jaw line and its lip contours differ from iBUG's, so part of
#: MediaPipe's difference from dlib is the definitions', not the tracking's.
MP_TO_68 = [
    [127], [234], [93], [132, 58], [58, 172], [136], [150], [176], [152], [400], [379], [365], [397, 288],
    [361], [323], [454], [356],                                              # jaw 0-16
    [70], [63], [105], [66], [107], [336], [296], [334], [293], [300],      # brows 17-26
    [168, 6], [197, 195], [5], [4], [75], [97], [2], [326], [305],          # nose 27-35
    [33], [160], [158], [133], [153], [144], [362], [385], [387], [263], [373], [380],  # eyes 36-47
    [61], [39], [37], [0], [267], [269], [291], [405], [314], [17], [84], [181],       # outer lips 48-59
    [78], [82], [13], [312], [308], [317], [14], [87],                                 # inner lips 60-67
]


def mediapipe_68(result, w: int, h: int) -> np.ndarray:
    """The 68 dlib-layout points (pixels) of FaceMesh's first face, NaN without one."""
    if result.multi_face_landmarks is None:
        return np.full((68, 2), np.nan)
    mesh = np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark])
    return np.stack([mesh[idx].mean(0) for idx in MP_TO_68])


def mediapipe_run(frames_rgb: list[np.ndarray]) -> tuple[dict, np.ndarray]:
    """One timed pass of FaceMesh over the clips: a fresh graph per clip (tracking
    within the clip, like fercli's tracker), built and warmed up on a blank frame
    outside the timing.  Returns the timing and the mapped landmarks (frames, 68, 2);
    the mapping runs after the timing."""
    import mediapipe as mp

    meshes = [mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False)
              for _ in frames_rgb]
    for mesh, clip in zip(meshes, frames_rgb):
        mesh.process(np.zeros_like(clip[0]))
    results = []
    t0, c0 = time.perf_counter(), time.process_time()
    for mesh, clip in zip(meshes, frames_rgb):
        for f in clip:
            results.append(mesh.process(f))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    for mesh in meshes:
        mesh.close()
    h, w = frames_rgb[0].shape[1:3]
    found = sum(r.multi_face_landmarks is not None for r in results)
    return {"cpu": cpu, "wall": wall, "found": found}, np.stack([mediapipe_68(r, w, h) for r in results])


def mediapipe_worker(path: str) -> None:
    data = np.load(path)
    offsets = data["offsets"]
    clips = [data["frames"][offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    timing, landmarks = mediapipe_run(clips)
    np.save(path + ".landmarks.npy", landmarks)
    print(json.dumps(timing))


class MediaPipe:
    """MediaPipe FaceMesh in this process when importable, else in a worker under
    ``python`` (frames handed over in a temporary .npz); ``None`` runs when neither."""

    def __init__(self, clips_rgb: list[np.ndarray], python: str | None, tmp: str):
        self.clips, self.python, self.note = clips_rgb, python, ""
        try:
            import mediapipe  # noqa: F401
            self.mode = "in process"
        except ImportError:
            self.mode = None
            if python:
                self.mode = f"worker {python}"
                self.path = os.path.join(tmp, "frames.npz")
                np.savez(self.path, frames=np.concatenate(clips_rgb), offsets=np.cumsum([0] + [len(c) for c in clips_rgb]))
            else:
                self.note = "not installed (pip install mediapipe==0.10.14 into a separate venv, then --mediapipe-python PATH)"

    def run(self) -> tuple[dict, list] | None:
        """(timing, per-frame mapped landmarks or None), or None when MediaPipe cannot run."""
        if self.mode is None:
            return None
        if self.mode == "in process":
            timing, landmarks = mediapipe_run(self.clips)
        else:
            proc = subprocess.run([self.python, os.path.abspath(__file__), "--mediapipe-worker", self.path], capture_output=True, text=True)
            if proc.returncode != 0:
                last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
                self.mode, self.note = None, f"{self.python} failed: {last}"
                return None
            timing, landmarks = json.loads(proc.stdout.strip().splitlines()[-1]), np.load(self.path + ".landmarks.npy")
        return timing, [None if np.isnan(p).any() else p for p in landmarks]


# --------------------------------------------------------------------------- dlib methods


def naive(clips_rgb):
    import cv2

    from fercli import faces

    detector, predictor = faces.hog_detector(), faces.shape_predictor()
    return [faces.landmarks_in_frame(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), detector, predictor) for frames in clips_rgb for rgb in frames]


def tracked(clips_rgb, tracker):
    out = []
    for frames in clips_rgb:
        tracker.reset()
        for f in frames:
            s = tracker(f)
            out.append(s.landmarks if s.found else None)
    return out


def timed(fn):
    """(result, wall s, CPU s) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - t0, time.process_time() - c0


def pct_iod(a, b, ref):
    from fercli import faces

    return np.linalg.norm(a - b, axis=-1).mean(-1) / faces.interocular(ref) * 100


# --------------------------------------------------------------------------- inputs


def synth_clips(args):
    from fercli.synth import synthesize

    classes = ["happy", "surprise", "fear", "anger", "sadness", "disgust", "contempt"]
    per_subject = min(len(classes), args.clips)
    clips = synthesize(subjects=-(-args.clips // per_subject), classes=classes[:per_subject], frames=(args.frames, args.frames),
                       size=(640, 360), color=True, seed=args.seed, motion=args.motion)
    clips = clips.select(np.arange(args.clips))
    rgb = [np.ascontiguousarray(clips.clip(i)) for i in range(len(clips))]
    occluded = np.zeros(len(clips.frames), bool)
    for i, cid in enumerate(clips.clip_ids):
        span = clips.meta["synth"].get("occluded", {}).get(str(cid))
        if span:
            occluded[clips.offsets[i] + span[0]: clips.offsets[i] + span[1] + 1] = True
    return rgb, clips.landmarks.astype(np.float64), occluded, f"synth --motion {args.motion}, seed {args.seed}"


def read_rgb(path, max_frames, who="bench_align"):
    """Up to ``max_frames`` RGB frames of a video (also bench_live's reader)."""
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        sys.exit(f"{who}: cannot open {path}")
    frames = []
    while len(frames) < max_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        sys.exit(f"{who}: {path} gave no frames")
    return np.stack(frames)


def video_clips(path, max_frames):
    frames = read_rgb(path, max_frames)
    return [frames], None, np.zeros(len(frames), bool), os.path.basename(path)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--motion", default="strong", help="synth motion: none, mild, strong, speech (a talking mouth on mild head motion)")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60, help="frames per synth clip")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--video", help="benchmark on this video instead of synth clips")
    ap.add_argument("--max-frames", type=int, default=600, help="with --video: read at most this many frames")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mediapipe-python", help="a Python with mediapipe==0.10.14 to measure it in a worker process")
    ap.add_argument("--save", metavar="JSON", help="write the speed and per-region figures here")
    ap.add_argument("--compare", action="append", default=[], metavar="JSON",
                    help="also print the figures an earlier --save wrote (e.g. before a change)")
    ap.add_argument("--mediapipe-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mediapipe_worker:
        mediapipe_worker(args.mediapipe_worker)
        return

    sys.path.insert(0, ROOT)
    from fercli.align import AlignOptions, align
    from fercli.tracking import make_tracker
    from fercli.artifacts import Clips

    rgb, truth, occluded, what = video_clips(args.video, args.max_frames) if args.video else synth_clips(args)
    n = sum(len(c) for c in rgb)
    h, w = rgb[0].shape[1:3]
    print(f"{what}: {len(rgb)} clip(s), {n} frames of {w}x{h}; best of {args.repeats} interleaved runs each, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    default = AlignOptions()
    trackers = {"fercli tracker (align defaults)": make_tracker(default),
                "fercli tracker --predict-every 1": make_tracker(AlignOptions(predict_every=1))}
    naive(rgb[:1])  # model loading outside the timings
    for tracker in trackers.values():
        tracked(rgb[:1], tracker)
    clips = Clips.from_sequences(rgb, [0] * len(rgb), ["x"], ["s"] * len(rgb))
    best: dict[str, tuple[float, float]] = {}
    results: dict[str, list] = {}
    found: dict[str, int] = {}

    def keep(name, result, wall, cpu):
        results[name] = result
        old = best.get(name, (float("inf"), float("inf")))
        best[name] = (min(old[0], wall), min(old[1], cpu))

    with tempfile.TemporaryDirectory() as tmp:
        mp = MediaPipe(rgb, args.mediapipe_python, tmp)
        # Interleaved, best of --repeats: on a shared machine the least disturbed run
        # of each method is the comparable one.
        for _ in range(args.repeats):
            keep(NAIVE, *timed(lambda: naive(rgb)))
            for name, tracker in trackers.items():
                before = tracker.detections
                keep(name, *timed(lambda: tracked(rgb, tracker)))
                found[name] = tracker.detections - before
            r = mp.run()
            if r is not None:
                keep(MEDIAPIPE, r[1], r[0]["wall"], r[0]["cpu"])
            keep("whole align stage (+ register, 64x64 crops)", *timed(lambda: align(clips, default)))

    ref_cpu = best["fercli tracker (align defaults)"][1]
    print(f"{'method':46s} {'frames/CPU-s':>12s} {'frames/s':>9s} {'faces':>10s}  {'fercli x':>9s}")
    for name, (wall, cpu) in best.items():
        result = results[name]
        faces_found = result if isinstance(result, int) else (sum(x is not None for x in result) if isinstance(result, list) else None)
        ratio = f"{cpu / ref_cpu:8.2f}x" if "align stage" not in name else ""
        cell = f"{faces_found}/{n}" if faces_found is not None else ""
        note = f"  detector on {found[name]} frames" if name in found else ""
        print(f"{name:46s} {n / cpu:12.1f} {n / wall:9.1f} {cell:>10s}  {ratio:>9s}{note}")
    if mp.mode is None:
        print(f"MediaPipe FaceMesh: {mp.note}")

    a = results[NAIVE]
    for name in trackers:
        b = results[name]
        both = np.array([i for i in range(n) if a[i] is not None and b[i] is not None])
        la, lb = np.stack([a[i] for i in both]), np.stack([b[i] for i in both])
        diff = pct_iod(lb, la, la)
        line = (f"{name}: landmarks vs per-frame detection {diff.mean():.2f} % IOD mean, {np.percentile(diff, 95):.2f} % p95 "
                f"(goal <= 2 %, <= 4 %)")
        visible = ~occluded[both]
        if (~visible).any():
            line += f"; without the {int((~visible).sum())} occluded frames {diff[visible].mean():.2f} % / {np.percentile(diff[visible], 95):.2f} %"
        print(line)
        if truth is not None:
            gt = truth[both]
            ea, eb = pct_iod(la, gt, gt), pct_iod(lb, gt, gt)
            off = ea > 10  # per-frame detection fitted something else (a false detection): not the tracker's drift
            if off.any():
                print(f"  without the {int(off.sum())} frames where per-frame detection is > 10 % IOD off the truth: "
                      f"{diff[~off].mean():.2f} % mean, {np.percentile(diff[~off], 95):.2f} % p95")
            print(f"  vs synth ground truth: tracker {eb.mean():.2f} % mean / {np.percentile(eb, 95):.2f} % p95, "
                  f"per-frame detection {ea.mean():.2f} % / {np.percentile(ea, 95):.2f} % (mostly the gap between dlib's "
                  f"and synth's landmark definitions)")

    methods = [m for m in [*trackers, MEDIAPIPE] if m in results]
    figures = {"what": what, "frames": n, "load": os.getloadavg()[0],
               "frames_per_cpu_s": {name: n / cpu for name, (_, cpu) in best.items()},
               "regions": {"per-frame detection": region_table(results, methods, a, occluded)}}
    if truth is not None:
        gt = [truth[i] for i in range(n)]
        figures["regions"]["synth ground truth"] = region_table(results, [NAIVE, *methods], gt, occluded)
        offsets = np.cumsum([0] + [len(c) for c in rgb])
        figures["openings"] = opening_table(results, [NAIVE, *methods], truth, offsets, occluded)
    print_regions(figures, occluded.any())
    for path in args.compare:
        with open(path) as fh:
            earlier = json.load(fh)
        print(f"\n{path} (saved: {earlier['what']}, load average {earlier['load']:.1f}):")
        for name, fps in earlier["frames_per_cpu_s"].items():
            print(f"  {name:46s} {fps:8.1f} frames/CPU-s")
        print_regions(earlier, occluded.any())
    if args.save:
        with open(args.save, "w") as fh:
            json.dump(figures, fh, indent=1)


NAIVE = "naive per-frame dlib (HOG + predictor)"
MEDIAPIPE = "MediaPipe FaceMesh 0.10.14"
REGION_ORDER = ["jaw", "brows", "nose", "eyes", "mouth", "all"]


def region_table(results: dict, methods: list[str], reference: list, occluded: np.ndarray) -> dict:
    """{method: {region: (mean, p95)}} in % of the reference's IOD, over the frames
    where both the method and the reference found a face, outside occlusions."""
    from fercli.tracking import region_errors

    table = {}
    for name in methods:
        got = results[name]
        idx = [i for i in range(len(reference)) if got[i] is not None and reference[i] is not None and not occluded[i]]
        if not idx:
            continue
        errors = region_errors(np.stack([got[i] for i in idx]), np.stack([reference[i] for i in idx]))
        table[name] = {r: (float(e.mean()), float(np.percentile(e, 95))) for r, e in errors.items()}
        table[name]["frames"] = len(idx)
    return table


def opening_table(results: dict, methods: list[str], truth: np.ndarray, offsets: np.ndarray, occluded: np.ndarray) -> dict:
    """{method: {"jaw drop"/"lip opening": (mean, p95)}}: :func:`fercli.tracking.opening_errors`
    per clip (frames with a face, outside occlusions), pooled."""
    from fercli.tracking import opening_errors

    table = {}
    for name in methods:
        pooled: dict[str, list] = {}
        for lo, hi in zip(offsets[:-1], offsets[1:]):
            idx = [i for i in range(lo, hi) if results[name][i] is not None and not occluded[i]]
            if len(idx) < 2:
                continue
            for key, e in opening_errors(np.stack([results[name][i] for i in idx]), truth[idx]).items():
                pooled.setdefault(key, []).append(e)
        table[name] = {key: (float(np.concatenate(v).mean()), float(np.percentile(np.concatenate(v), 95))) for key, v in pooled.items()}
    return table


def print_regions(figures: dict, any_occluded: bool) -> None:
    """The per-region tables: mean / p95 in % IOD, goal <= 2 / <= 4 against per-frame detection."""
    where = ", occluded frames left out" if any_occluded else ""
    for reference, table in figures["regions"].items():
        print(f"landmark error by region vs {reference}, % IOD mean / p95{where}:")
        print(f"  {'method':46s} " + " ".join(f"{r:>14s}" for r in REGION_ORDER) + "  frames")
        for name, row in table.items():
            label = name + (" (mapped to 68)" if name == MEDIAPIPE else "")
            print(f"  {label:46s} " + " ".join(f"{row[r][0]:6.2f} /{row[r][1]:6.2f}" for r in REGION_ORDER) + f"  {row['frames']}")
    if "openings" in figures:
        print("jaw drop (chin to nose bridge) and lip opening (51-57) vs synth ground truth, each clip's constant gap removed, "
              "% IOD mean / p95:")
        for name, row in figures["openings"].items():
            print(f"  {name:46s} " + "   ".join(f"{key} {m:5.2f} /{p:5.2f}" for key, (m, p) in row.items()))

if __name__ == "__main__":
    main()
