"""fercli split: subject independence, stratification, official splits, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fercli.artifacts import Clips, load_clips, save_clips
from fercli.errors import FercliError
from fercli.split import assign_folds, fold_report
from tests.conftest import assert_user_error, fercli


def make_clips(n_subjects=23, classes=("anger", "happy", "sad", "surprise"), seed=0, split=None):
    """Subjects with uneven clip counts and uneven class mixes (like CK+)."""
    rng = np.random.default_rng(seed)
    labels, subjects = [], []
    for s in range(n_subjects):
        for _ in range(int(rng.integers(1, 7))):
            labels.append(int(rng.choice(len(classes), p=[0.4, 0.3, 0.2, 0.1][: len(classes)])))
            subjects.append(f"S{s:03d}")
    n = len(labels)
    seqs = [np.zeros((1, 4, 4), np.uint8)] * n
    extra = {"split": np.asarray(split(n) if split else [""] * n, dtype=object)} if split else {}
    return Clips.from_sequences(seqs, labels, list(classes), subjects, **extra)


def test_subject_independent_and_stratified():
    clips = make_clips()
    folds = assign_folds(clips, 10, "subject", 0)
    assert set(folds.tolist()) == set(range(10))
    for s in set(clips.subjects.tolist()):
        assert len(set(folds[clips.subjects == s].tolist())) == 1, s
    report = fold_report(clips, folds)
    assert report["subjects_in_several_folds"] == 0
    # Greedy balancing beats a random subject assignment on class spread.
    rng = np.random.default_rng(1)
    subjects = sorted(set(clips.subjects.tolist()))
    random_spreads = []
    for _ in range(20):
        fold_of = dict(zip(subjects, rng.permutation(np.arange(len(subjects)) % 10)))
        rand = np.asarray([fold_of[s] for s in clips.subjects])
        random_spreads.append(sum(fold_report(clips, rand)["class_spread"].values()))
    assert sum(report["class_spread"].values()) < np.median(random_spreads)


def test_deterministic_seeded_and_order_free():
    clips = make_clips()
    a = assign_folds(clips, 5, "subject", 3)
    np.testing.assert_array_equal(a, assign_folds(clips, 5, "subject", 3))
    perm = np.random.default_rng(0).permutation(len(clips))
    np.testing.assert_array_equal(assign_folds(clips.select(perm), 5, "subject", 3), a[perm])
    assert any(not np.array_equal(a, assign_folds(clips, 5, "subject", s)) for s in range(1, 6))


def test_by_clip_is_plain_stratified():
    clips = make_clips(n_subjects=12)
    folds = assign_folds(clips, 4, "clip", 0)
    report = fold_report(clips, folds)
    assert max(report["class_spread"].values()) <= 1
    sizes = [p["clips"] for p in report["per_fold"]]
    assert max(sizes) - min(sizes) <= 1


def test_too_few_subjects():
    clips = make_clips(n_subjects=3)
    with pytest.raises(FercliError, match="only 3 subjects for 10 folds"):
        assign_folds(clips, 10)
    with pytest.raises(FercliError, match="at least 2"):
        assign_folds(clips, 1)


def test_cli_folds_and_lineage(tmp_path):
    src, out = tmp_path / "in.h5", tmp_path / "out.h5"
    clips = make_clips()
    save_clips(str(src), clips, [])
    proc = fercli("split", src, "--folds", "5", "--by", "subject", "--seed", "2", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "5 folds by subject" in proc.stderr.decode()
    got, _, lineage = load_clips(str(out), "test")
    np.testing.assert_array_equal(got.folds, assign_folds(clips, 5, "subject", 2))
    np.testing.assert_array_equal(got.frames, clips.frames)
    assert lineage[-1]["stage"] == "split" and lineage[-1]["parameters"]["folds"] == 5


def test_cli_official_split_kept_or_forced(tmp_path):
    usage = lambda n: ["Training"] * (n - n // 4) + ["PublicTest"] * (n // 4)  # noqa: E731
    clips = make_clips(split=usage)
    src, out = tmp_path / "fer.h5", tmp_path / "out.h5"
    save_clips(str(src), clips, [])
    # no --folds: the official split is reported and kept, no folds
    proc = fercli("split", src, "-o", out)
    assert proc.returncode == 0 and "official split" in proc.stderr.decode()
    got, _, _ = load_clips(str(out), "test")
    assert got.folds is None and list(got.split) == list(clips.split)
    # --folds without --ignore-official: a sentence, nothing written
    out.write_bytes(b"old")
    assert_user_error(fercli("split", src, "--folds", "5", "-o", out), "official split", "--ignore-official")
    assert out.read_bytes() == b"old"
    # forced: folds assigned, the split column stays beside them
    proc = fercli("split", src, "--folds", "5", "--ignore-official", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    got, _, _ = load_clips(str(out), "test")
    assert set(got.folds.tolist()) == set(range(5)) and list(got.split) == list(clips.split)


def test_cli_too_few_subjects(tmp_path):
    src, out = tmp_path / "in.h5", tmp_path / "out.h5"
    save_clips(str(src), make_clips(n_subjects=4), [])
    assert_user_error(fercli("split", src, "--folds", "10", "-o", out), "only 4 subjects for 10 folds")
    assert not out.exists()
