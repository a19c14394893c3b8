"""`fercli resample` (thesis 3.2.2, 4.2.7, 4.3.1): exact sampling, ends kept, the CK+ three-way split."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_user_error, fercli

from fercli import artifacts
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.temporal import ckplus_split, resample, sample_plan


def make(lengths=(7, 12, 3), landmarks=True):
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 256, size=(n, 6, 5), dtype=np.uint8) for n in lengths]
    total = sum(lengths)
    extra = {}
    if landmarks:
        extra["landmarks"] = rng.normal(size=(total, 68, 2)).astype(np.float32)
        found = np.ones(total, bool)
        found[1] = False
        extra["face_found"] = found
    return Clips.from_sequences(seqs, labels=[1, 2, 1], class_names=["Neutral", "happy", "sad"], subjects=["a", "b", "c"],
                                clip_ids=["x", "y", "z"], folds=np.array([0, 1, 2]), **extra)


@pytest.mark.parametrize("method", ["linear", "nearest"])
def test_same_length_is_identity(method):
    clips = make(lengths=(5, 5, 5))
    out = resample(clips, 5, method)
    assert np.array_equal(out.frames, clips.frames)
    assert np.array_equal(out.landmarks, clips.landmarks) and np.array_equal(out.face_found, clips.face_found)


@pytest.mark.parametrize("method", ["linear", "nearest"])
@pytest.mark.parametrize("n", [2, 4, 10, 20])
def test_first_and_last_kept(method, n):
    clips = make()
    out = resample(clips, n, method)
    assert out.lengths.tolist() == [n, n, n]
    for i in range(3):
        src, dst = clips.clip(i), out.clip(i)
        assert np.array_equal(dst[0], src[0]) and np.array_equal(dst[-1], src[-1])
    assert list(out.clip_ids) == ["x", "y", "z"] and out.folds.tolist() == [0, 1, 2]
    assert out.meta["frames_per_clip"] == n


def test_nearest_picks_only_original_frames_in_order():
    clips = make()
    out = resample(clips, 5, "nearest")
    for i in range(3):
        src, dst = clips.clip(i), out.clip(i)
        picks = [next(k for k in range(len(src)) if np.array_equal(src[k], f)) for f in dst]
        assert picks == sorted(picks)
    # 12 frames -> 5: positions 0, 2.75, 5.5, 8.25, 11 -> 0, 3, 6, 8, 11
    assert sample_plan(12, 5, "nearest")[0].tolist() == [0, 3, 6, 8, 11]


def test_linear_blends_neighbours_with_rounding():
    frames = np.array([[[0]], [[100]], [[255]]], dtype=np.uint8)
    clips = Clips.from_sequences([frames], [0], ["a"], ["s"])
    out = resample(clips, 5, "linear")
    # positions 0, .5, 1, 1.5, 2
    assert out.frames[:, 0, 0].tolist() == [0, 50, 100, 178, 255]


def test_linear_landmarks_and_face_found_follow_the_frames():
    clips = make(lengths=(3, 3, 3))
    out = resample(clips, 5, "linear")
    lm = clips.landmarks
    assert np.allclose(out.landmarks[1], (lm[0] + lm[1]) / 2, atol=1e-6)
    # frame 1 of clip 0 has no face: both blends touching it are not found either
    assert out.face_found[:5].tolist() == [True, False, False, False, True]


def test_one_frame_clips_are_refused():
    clips = make(lengths=(4, 1, 3))
    with pytest.raises(FercliError, match="single frame.*first: y"):
        resample(clips, 5)
    with pytest.raises(FercliError, match="at least 2"):
        resample(make(), 1)


def test_ckplus_split_three_clips_per_sequence():
    clips = make(lengths=(7, 12, 3))
    out = ckplus_split(clips, 5, "linear", part=3)
    assert len(out) == 9 and out.lengths.tolist() == [5] * 9
    assert list(out.clip_ids[:3]) == ["x/neutral-peak", "x/neutral-neutral", "x/peak-peak"]
    # 'Neutral' already exists (index 0): reused, case-insensitively.
    assert out.class_names == ["Neutral", "happy", "sad"]
    assert out.labels.tolist() == [1, 0, 1, 2, 0, 2, 1, 0, 1]
    assert list(out.subjects) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    y = clips.clip(1)
    np_, nn, pp = out.clip(3), out.clip(4), out.clip(5)
    assert np.array_equal(np_[0], y[0]) and np.array_equal(np_[-1], y[-1])  # the whole sequence
    assert np.array_equal(nn[0], y[0]) and np.array_equal(nn[-1], y[2])      # its first 3 frames, upsampled
    assert np.array_equal(pp[0], y[-3]) and np.array_equal(pp[-1], y[-1])    # its last 3 frames
    assert np.array_equal(nn[2], y[1])                                        # 3 -> 5: the middle frame exact


def test_ckplus_split_adds_neutral_class_when_missing():
    clips = make()
    clips.class_names = ["anger", "happy", "sad"]
    out = ckplus_split(clips, 4)
    assert out.class_names == ["anger", "happy", "sad", "neutral"]
    assert out.labels[1::3].tolist() == [3, 3, 3]


def test_planes_refused(tiny_clips):
    tiny_clips.planes = {"xt": np.zeros((4, 2, 2), np.uint8)}
    tiny_clips.plane_offsets = np.array([0, 1, 2, 3, 4])
    with pytest.raises(FercliError, match="before lbptop"):
        resample(tiny_clips, 3)


def test_cli(tmp_path):
    src = tmp_path / "in.h5"
    artifacts.save_clips(str(src), make(), [])
    out = tmp_path / "out.h5"
    proc = fercli("resample", src, "-n", "5", "--ckplus-split", "--method", "nearest", "-o", out, check=True)
    assert b"3 clips -> 9 clips" in proc.stderr
    result, _, lineage = artifacts.load_clips(str(out), "test")
    assert len(result) == 9 and lineage[-1]["parameters"] == {"n": 5, "method": "nearest", "ckplus_split": True, "part": 3}
    assert_user_error(fercli("resample", src, "-n", "5", "--method", "cubic", "-o", out), "--method")
    bad = tmp_path / "short.h5"
    artifacts.save_clips(str(bad), make(lengths=(1, 2, 2), landmarks=False), [])
    assert_user_error(fercli("resample", bad, "-n", "5", "-o", tmp_path / "o2.h5"), "single frame")
    assert not (tmp_path / "o2.h5").exists()


def test_ckplus_split_records_segments_and_keeps_unlabelled_onsets_unlabelled():
    clips = make()
    clips.labels[1] = -1  # a sequence without an emotion label (most of CK+'s 593)
    out = ckplus_split(clips, 4)
    assert list(out.segments[:3]) == ["neutral-peak", "neutral-neutral", "peak-peak"]
    assert list(out.sequence_ids) == [c for c in clips.clip_ids for _ in range(3)]
    assert out.labels[3:6].tolist() == [-1, -1, -1]  # nothing says its onset is a neutral->expression one
    with pytest.raises(FercliError, match="already split"):
        ckplus_split(out, 4)
