"""Head-pose accuracy of ``align`` (fercli.pose) against synth's exact pose.

    python bench/bench_pose.py [--subjects 4] [--motion mild strong] [--focal F]

Renders ``synth --motion LEVEL`` clips (the true rotation per frame is in the
artifact's ``head_pose``), aligns them as ``fercli align`` does (dlib landmarks,
PnP against the 3-D mean face, OpenFace's default camera unless ``--focal``) and
prints, per level, the error of the estimated rotation: the geodesic angle between
the true and the estimated head rotation (mean, p95, max) and the mean absolute
error of each Euler angle, in degrees, over frames with |yaw| <= 45 degrees
(synth's yaw stays under 24 + drift).  Figures are on synth data.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def pose_errors(truth: np.ndarray, estimate: np.ndarray) -> dict:
    """Errors (degrees) of (F, 6) estimated poses against the (F, 6) truth's rotations."""
    from fercli import pose

    ok = np.isfinite(estimate[:, 3:]).all(1) & np.isfinite(truth[:, 3:]).all(1)
    t, e = truth[ok, 3:].astype(np.float64), estimate[ok, 3:].astype(np.float64)
    geo = np.degrees(pose.angle_between(t, e))
    axis = np.degrees(np.abs(np.angle(np.exp(1j * (e - t)))))
    return {"frames": int(ok.sum()), "missing": int((~ok).sum()), "mean": float(geo.mean()), "p95": float(np.percentile(geo, 95)),
            "max": float(geo.max()), "rx": float(axis[:, 0].mean()), "ry": float(axis[:, 1].mean()), "rz": float(axis[:, 2].mean()),
            "yaw_range": [float(np.degrees(t[:, 1]).min()), float(np.degrees(t[:, 1]).max())]}


def aligned_errors(subjects: int, motion: str, focal=None, classes=("happy", "surprise"), frames=(12, 16), seed=0) -> dict:
    from fercli import align, pose, synth

    clips = synth.synthesize(subjects=subjects, classes=list(classes), frames=frames, seed=seed, motion=motion)
    out, _ = align.align(clips, align.AlignOptions(size=64, focal=focal))
    # align keeps every frame (--missing hold), in order: row for row with synth's truth
    assert len(out.frames) == len(clips.frames)
    truth = clips.head_pose
    keep = np.abs(np.degrees(truth[:, 4])) <= 45
    found = out.face_found.astype(bool)
    result = pose_errors(truth[keep & found], out.head_pose[keep & found])
    # The same fit on synth's exact landmarks: what the 3-D mean face and the camera
    # model cost by themselves (identity shape variation, orthographic render).
    exact = pose.head_poses(clips.landmarks.astype(np.float64), *clips.frames.shape[2:0:-1], focal)
    result["exact_landmarks_mean"] = pose_errors(truth[keep], exact[keep])["mean"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--motion", nargs="+", default=["none", "mild", "strong"])
    ap.add_argument("--focal", type=float, default=None)
    args = ap.parse_args()
    for level in args.motion:
        t0 = time.perf_counter()
        r = aligned_errors(args.subjects, level, args.focal)
        print(f"synth --motion {level:6s} {r['frames']:4d} frames (yaw {r['yaw_range'][0]:+.1f}..{r['yaw_range'][1]:+.1f} deg): "
              f"rotation error mean {r['mean']:.2f} deg, p95 {r['p95']:.2f}, max {r['max']:.2f}; "
              f"|error| pitch {r['rx']:.2f}, yaw {r['ry']:.2f}, roll {r['rz']:.2f} deg; "
              f"from exact landmarks mean {r['exact_landmarks_mean']:.2f} deg "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
