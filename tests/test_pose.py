"""Head pose (fercli.pose): PnP against the 3-D mean face, OpenFace's columns and conventions."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from fercli import align, pose, synth, tables


def test_exact_projection_gives_back_its_pose():
    rng = np.random.default_rng(0)
    for _ in range(10):
        truth = np.r_[rng.normal(0, 60, 2), rng.uniform(350, 1200), rng.uniform(-0.6, 0.6, 3)]
        est = pose.head_pose(pose.project(truth, 640, 480), 640, 480)
        assert np.allclose(est[:3], truth[:3], atol=0.05)
        assert np.degrees(pose.angle_between(est[3:], truth[3:])) < 0.01


def test_axis_conventions_are_openface_s():
    frontal = np.array([0.0, 0.0, 600.0, 0.0, 0.0, 0.0])
    nose = lambda p: pose.project(p, 640, 480)[30] - pose.project(p, 640, 480)[27]  # noqa: E731  nose tip from the bridge
    base = nose(frontal)
    assert nose(frontal + [0, 0, 0, 0, 0.3, 0])[0] < base[0] - 5      # Ry > 0: nose towards the image's left
    assert nose(frontal + [0, 0, 0, 0.3, 0, 0])[1] > base[1] + 5      # Rx > 0: chin down, nose lower in the image
    eyes = pose.project(frontal + [0, 0, 0, 0, 0, 0.3], 640, 480)[[36, 45]]
    assert eyes[1, 1] > eyes[0, 1] + 5                                 # Rz > 0: clockwise in the image
    assert pose.intrinsics(1280, 960)[0, 0] == 1000 and pose.intrinsics(1280, 960)[1, 1] == 1000
    assert np.isnan(pose.head_pose(np.full((68, 2), np.nan), 640, 480)).all()


def test_synth_truth_matches_its_own_landmarks():
    """synth's recorded rotation explains its exact landmarks (a sign or order slip would not)."""
    clips = synth.synthesize(subjects=2, classes=["surprise"], frames=(12, 12), motion="strong", seed=1)
    assert clips.head_pose.shape == (len(clips.frames), 6) and np.isnan(clips.head_pose[:, :3]).all()
    est = pose.head_poses(clips.landmarks.astype(np.float64), 640, 490, focal=20000)  # near-orthographic, like the render
    err = np.degrees(pose.angle_between(est[:, 3:].astype(np.float64), clips.head_pose[:, 3:].astype(np.float64)))
    assert err.mean() < 3.0, err.mean()
    assert np.ptp(np.degrees(clips.head_pose[:, 4])) > 5  # the head does turn


def test_align_estimates_synth_pose_and_table_writes_it(tmp_path):
    clips = synth.synthesize(subjects=2, classes=["happy"], frames=(12, 12), motion="mild", seed=0)
    out, _ = align.align(clips, align.AlignOptions(size=48, focal=20000))
    assert out.head_pose.shape == (len(out.frames), 6) and len(out.frames) == len(clips.frames)
    err = np.degrees(pose.angle_between(out.head_pose[:, 3:].astype(np.float64), clips.head_pose[:, 3:].astype(np.float64)))
    assert err.mean() < 5.0, err.mean()
    assert np.all(out.head_pose[:, 2] > 0)
    path = tmp_path / "frames.csv"
    with open(path, "w", newline="") as f:
        tables.write(tables.frame_table(out), f, "csv")
    rows = list(csv.DictReader(open(path)))
    assert set(pose.POSE_COLUMNS) <= set(rows[0]) and pose.POSE_COLUMNS == tables.POSE_COLUMNS
    assert float(rows[3]["pose_Ry"]) == pytest.approx(float(out.head_pose[3, 4]), abs=1e-4)
    assert float(rows[3]["pose_Tz"]) == pytest.approx(float(out.head_pose[3, 2]), abs=0.1)
