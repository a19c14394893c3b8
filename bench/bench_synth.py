"""Speed of `fercli synth`: frames/s end to end, and its warp vs scikit-image's.

    python bench/bench_synth.py            # ~30-60 s on a laptop core

Prints (1) synthesize() frames/s at CK+ size 640x490 gray and colour and at a
test-sized 160x120, and (2) one piecewise-affine warp of a 640x490 frame done
the way synth does it (triangle-id raster + vectorised per-pixel affine +
cv2.remap) against skimage.transform.PiecewiseAffineTransform + warp on the
same landmarks, with the ratio and how much the two results differ.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fercli import synth  # noqa: E402
from fercli.geometry import apply_matrix, compose, invert  # noqa: E402
from fercli.synth.identity import _make_subject  # noqa: E402
from fercli.synth.warp import RING, _pose_matrix, _project, _warp_maps  # noqa: E402

cv2.setNumThreads(1)


def fps(**kw) -> tuple[float, int]:
    synth.synthesize(subjects=1, classes=["happy"], frames=(2, 2), size=kw.get("size", (640, 490)))  # warm caches
    t = time.perf_counter()
    clips = synth.synthesize(**kw)
    dt = time.perf_counter() - t
    return len(clips.frames) / dt, len(clips.frames)


def warp_pair(repeats: int = 3) -> None:
    from skimage.transform import PiecewiseAffineTransform, warp

    w, h = 640, 490
    rng = np.random.default_rng(0)
    subject = _make_subject(0, [synth.astronaut()], rng, (w, h), False, 3)
    shape = subject.neutral + 1.0 * synth.AU_FIELDS[26] + 1.0 * synth.AU_FIELDS[2]
    pose = _pose_matrix(subject.iod, subject.roll, subject.centre)
    dst = np.concatenate([apply_matrix(pose, _project(shape, subject.yaw)), apply_matrix(pose, RING)])
    src = np.concatenate([subject.texture.landmarks, apply_matrix(subject.to_source, RING)])
    global_inv = compose(subject.to_source, invert(pose))
    image = subject.source_rgba[..., 0]

    t = time.perf_counter()
    for _ in range(repeats):
        mx, my = _warp_maps(dst, src, subject.triangles, global_inv, (w, h))
        ours = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    t_ours = (time.perf_counter() - t) / repeats

    t = time.perf_counter()
    for _ in range(repeats):
        # output (frame) coords -> input (photo) coords, as warp() wants
        if hasattr(PiecewiseAffineTransform, "from_estimate"):  # scikit-image >= 0.26
            tform = PiecewiseAffineTransform.from_estimate(dst, src)
        else:
            tform = PiecewiseAffineTransform()
            tform.estimate(dst, src)
        theirs = warp(image, tform, output_shape=(h, w), order=1, preserve_range=True)
    t_sk = (time.perf_counter() - t) / repeats

    # compare inside the anchor ring (skimage leaves pixels outside its hull at cval)
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, np.round(cv2.convexHull(dst.astype(np.float32))[:, 0]).astype(np.int32), 1)
    inside = cv2.erode(hull, np.ones((5, 5), np.uint8)) > 0
    diff = np.abs(ours.astype(np.float64) - theirs)[inside]
    print(f"warp 640x490 (68 landmarks + {len(synth.RING)} anchors, {len(subject.triangles)} triangles), mean of {repeats}:")
    print(f"  synth (OpenCV raster + remap)         {t_ours * 1000:8.1f} ms  {1 / t_ours:8.1f} warps/s")
    print(f"  skimage PiecewiseAffineTransform+warp {t_sk * 1000:8.1f} ms  {1 / t_sk:8.1f} warps/s")
    print(f"  ratio                                 {t_sk / t_ours:8.1f} x faster")
    print(f"  difference inside the hull: mean {diff.mean():.2f}, 99th pct {np.percentile(diff, 99):.1f} gray levels (of 255)")


def main() -> None:
    print("synthesize() end to end (one process, one thread):")
    for label, kw in [
        ("640x490 gray  ", dict(subjects=2, classes=["happy", "fear", "surprise"], frames=(10, 10))),
        ("640x490 colour", dict(subjects=1, classes=["happy", "fear", "surprise"], frames=(10, 10), color=True)),
        ("160x120 gray  ", dict(subjects=3, classes=["happy", "fear", "surprise"], frames=(10, 10), size=(160, 120))),
    ]:
        rate, n = fps(**kw)
        print(f"  {label} {rate:7.1f} frames/s  ({n} frames)")
    warp_pair()


if __name__ == "__main__":
    main()
