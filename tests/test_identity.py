"""Identities (fercli.identity): face descriptors keep a returning face's id, and
``split --by identity`` keeps every person in one fold, on two real people that
installed packages ship (scikit-image's astronaut, matplotlib's Grace Hopper)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fercli import align, artifacts, identity, split, synth
from fercli.artifacts import Clips


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    import cv2
    import matplotlib
    from skimage import data

    folder = tmp_path_factory.mktemp("faces")
    cv2.imwrite(str(folder / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    hopper = cv2.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    cv2.imwrite(str(folder / "grace_hopper.png"), hopper)
    return str(folder)


def person(clips: Clips) -> np.ndarray:
    """Per clip, which photograph synth warped (the real person)."""
    return np.array(["hopper" if "grace_hopper" in s else "astronaut" for s in clips.sources])


def test_descriptors_tell_the_two_people_apart(two_faces):
    clips = synth.synthesize(subjects=4, classes=["happy", "surprise"], frames=(6, 8), faces=two_faces, motion="mild", seed=0)
    d = identity.clip_descriptors(clips)
    dist = identity.distance(d[:, None], d[None])
    who = person(clips)
    same, other = who[:, None] == who[None], who[:, None] != who[None]
    np.fill_diagonal(same, False)
    assert dist[same].max() < identity.SAME_FACE < dist[other].min()
    labels = identity.cluster(d)
    assert len(set(labels.tolist())) == 2 and all(len(set(labels[who == p].tolist())) == 1 for p in ("astronaut", "hopper"))


def test_split_by_identity_never_puts_a_person_in_two_folds(two_faces, tmp_path):
    clips = synth.synthesize(subjects=6, classes=["happy", "surprise"], frames=(6, 8), faces=two_faces, seed=3)
    # No subject ids (e.g. videos from the web): every clip is its own "subject".
    clips.subjects = np.array([str(c) for c in clips.clip_ids], dtype=object)
    out = split.split(clips, 2, "identity", seed=0)
    who = person(clips)
    for p in ("astronaut", "hopper"):
        assert len(set(out.folds[who == p].tolist())) == 1, p
    assert out.meta["identities"]["identities"] == 2 and sorted(out.meta["identities"]["sizes"]) == [6, 6]
    assert "inferred" in out.meta["folds"]["identities"]
    # By subject the same clips would leak: each person in both folds.
    leak = split.split(clips, 2, "subject", seed=0)
    assert any(len(set(leak.folds[who == p].tolist())) > 1 for p in ("astronaut", "hopper"))
    # The partition record a model keeps says the identities were inferred.
    from fercli.protocol import partition

    path = tmp_path / "folds.h5"
    artifacts.save_clips(str(path), out, [])
    loaded, ident, _ = artifacts.load_clips(str(path), "train")
    record = partition.plan([partition.DataSet(loaded, ident, loaded.labels)], loaded.class_names, fold=0)
    assert "by identity" in record.data[0].fold_source and "inferred" in record.data[0].fold_source


def test_a_face_that_leaves_and_returns_keeps_its_id(two_faces):
    """astronaut, 40 empty frames (beyond the 30 a lost face used to be kept), a cut to
    Grace Hopper, a cut back to the astronaut: two ids, the astronaut's kept."""
    clips = synth.synthesize(subjects=2, classes=["happy", "surprise"], frames=(10, 10), faces=two_faces, seed=0)
    who = person(clips)
    a1, a2 = np.flatnonzero(who == "astronaut")[:2]
    h1 = np.flatnonzero(who == "hopper")[0]
    empty = np.full((40, *clips.frames.shape[1:]), int(np.median(clips.clip(a1)[0])), np.uint8)
    video = np.concatenate([clips.clip(a1), empty, clips.clip(h1), clips.clip(a2)])
    options = align.AlignOptions(size=48, faces="all")
    tracker = align.make_tracker(options)
    ids = []
    for frame in video:
        ids.append([s.face_id for s in tracker(frame)])
    seen = lambda lo, hi: {i for f in ids[lo:hi] for i in f}  # noqa: E731
    first, hopper, back = seen(0, 10), seen(50, 60), seen(60, 70)
    assert len(first) == 1 and len(hopper) == 1 and len(back) == 1, ids
    assert first == back and first != hopper
    assert not seen(12, 48)  # nobody in the empty frames
    # Without descriptors (today's rule) the astronaut would come back as someone new.
    plain = align.MultiFaceTracker(tracker.detector, tracker.predictor, reidentify=False)
    old = [[s.face_id for s in plain(frame)] for frame in video]
    assert {i for f in old[60:70] for i in f} != {i for f in old[0:10] for i in f}
