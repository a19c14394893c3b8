"""fercli.synth: determinism, options, --faces, and that dlib sees what we say we drew."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from fercli import faces, synth
from fercli.errors import FercliError


def small(**kw):
    args = dict(subjects=2, classes=["happy", "surprise"], frames=(4, 6), size=(160, 120), seed=5)
    args.update(kw)
    return synth.synthesize(**args)


def test_same_seed_identical_different_seed_differs():
    a, b, c = small(), small(), small(seed=6)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.landmarks, b.landmarks)
    assert a.landmarks.tobytes() == b.landmarks.tobytes()
    assert not (a.frames.shape == c.frames.shape and np.array_equal(a.frames, c.frames))
    assert not (a.landmarks.shape == c.landmarks.shape and np.allclose(a.landmarks, c.landmarks))


def test_shapes_and_metadata():
    clips = synth.synthesize(subjects=3, clips_per_class=2, classes=["sadness", "anger"], frames=(3, 5), size=(96, 80), seed=1)
    clips.validate()
    assert clips.n_clips == 3 * 2 * 2
    assert clips.frames.shape[1:] == (80, 96) and clips.frames.dtype == np.uint8
    assert np.all((clips.lengths >= 3) & (clips.lengths <= 5))
    assert clips.class_names == ["sadness", "anger"]  # the order asked for
    assert sorted(set(clips.labels.tolist())) == [0, 1]
    assert list(dict.fromkeys(clips.subjects)) == ["S001", "S002", "S003"]
    assert len(set(clips.clip_ids)) == clips.n_clips
    assert clips.landmarks.shape == (len(clips.frames), 68, 2)
    # ground truth lies inside the frame, the face is a sensible size
    assert np.all(clips.landmarks >= 0) and np.all(clips.landmarks[..., 0] < 96) and np.all(clips.landmarks[..., 1] < 80)
    iod = faces.interocular(clips.landmarks)
    assert np.all((iod > 0.12 * 80) & (iod < 0.25 * 80))
    assert clips.face_found.all()
    color = synth.synthesize(subjects=1, classes=["happy"], frames=(2, 2), size=(64, 48), color=True)
    assert color.frames.shape == (2, 48, 64, 3)


def test_default_classes_are_ck_plus_order():
    clips = synth.synthesize(subjects=1, frames=(2, 2), size=(64, 48))
    assert clips.class_names == ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    assert clips.labels.tolist() == list(range(7))


def test_class_subset_keeps_the_shared_clips_identical():
    """A subject's clip of a class depends on (seed, subject, class) only."""
    full = synth.synthesize(subjects=2, classes=["fear", "happy", "surprise"], frames=(3, 4), size=(80, 64), seed=3)
    sub = synth.synthesize(subjects=2, classes=["happy"], frames=(3, 4), size=(80, 64), seed=3)
    for i in range(sub.n_clips):
        j = [k for k in range(full.n_clips) if full.subjects[k] == sub.subjects[i] and full.class_names[full.labels[k]] == "happy"][0]
        assert np.array_equal(sub.clip(i), full.clip(j))


def test_clips_ramp_from_neutral_to_apex():
    """Landmarks move away from the first (neutral) frame towards the last (apex)."""
    clips = synth.synthesize(subjects=2, classes=["surprise", "happy", "sadness"], frames=(8, 10), size=(160, 120), seed=2)
    for i in range(clips.n_clips):
        pts = clips.landmarks[clips.offsets[i] : clips.offsets[i + 1]]
        # remove head drift: compare mouth/brows relative to the eyes, in inter-ocular units
        left, right = faces.eye_centres(pts)
        rel = (pts - ((left + right) / 2)[:, None, :]) / faces.interocular(pts)[:, None, None]
        moved = np.linalg.norm(rel - rel[0], axis=2)[:, np.r_[17:27, 48:68]].max(1)
        assert moved[-1] > 0.06, (clips.class_names[clips.labels[i]], moved)
        assert moved[-1] > moved[len(moved) // 2] - 1e-6 > -1


def test_prototypes_and_contempt_is_unilateral():
    assert synth.PROTOTYPES["happy"] == (6, 12) and synth.PROTOTYPES["fear"] == (1, 2, 4, 5, 20, 26)
    field = synth.expression_field("contempt", {12: 1.0, 14: 1.0}, side=0)
    moved = np.linalg.norm(field, axis=1) > 1e-9
    assert moved[48] and not moved[54]
    sym = synth.expression_field("happy", {6: 1.0, 12: 1.0})
    assert np.allclose(sym[faces.MIRROR_68] * [-1, 1], sym)


def test_bad_arguments_are_user_errors():
    for kw, fragment in [
        (dict(classes=["happy", "joy"]), "unknown class 'joy'"),
        (dict(classes=["happy", "happy"]), "twice"),
        (dict(subjects=0), "--subjects"),
        (dict(clips_per_class=0), "--clips-per-class"),
        (dict(frames=(5, 2)), "--frames"),
        (dict(size=(8, 8)), "--size"),
    ]:
        with pytest.raises(FercliError, match=fragment):
            small(**kw)


def test_embedded_astronaut_landmarks_are_dlibs():
    from skimage import data

    pts = synth.detect_landmarks(data.astronaut())
    assert pts is not None
    assert np.abs(pts - synth.ASTRONAUT_68).max() <= 1.0


def test_faces_dir(tmp_path):
    from skimage import data

    folder = tmp_path / "faces"
    folder.mkdir()
    crop = data.astronaut()[0:320, 90:370]
    cv2.imwrite(str(folder / "crop.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    clips = synth.synthesize(subjects=2, classes=["happy"], frames=(3, 3), size=(160, 120), faces=str(folder))
    assert all(s.startswith("synth:crop.png") for s in clips.sources)
    assert clips.frames.shape == (6, 120, 160)
    # an image without a face is refused, naming the file
    cv2.imwrite(str(folder / "wall.png"), data.brick())
    with pytest.raises(FercliError, match="no face in .*wall.png"):
        synth.synthesize(subjects=1, classes=["happy"], frames=(2, 2), size=(64, 48), faces=str(folder))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FercliError, match="no images"):
        synth.synthesize(subjects=1, faces=str(empty))


def test_dlib_finds_the_faces_and_agrees_with_ground_truth():
    """>= 95 % of default-size frames detected; dlib's 68 points match the stored ones."""
    clips = synth.synthesize(subjects=4, classes=list(synth.CK_CLASSES), frames=(4, 5), seed=11)
    assert clips.frames.shape[1:] == (490, 640)
    pick = np.arange(len(clips.frames))[::2]
    assert len(pick) >= 60
    detector, predictor = faces.hog_detector(), faces.shape_predictor()
    found, errors = 0, []
    for i in pick:
        frame, truth = clips.frames[i], clips.landmarks[i]
        boxes = detector(frame, 0)
        if not len(boxes):
            continue
        found += 1
        box = max(boxes, key=lambda r: r.area())
        cx, cy = truth.mean(0)
        assert box.left() <= cx <= box.right() and box.top() <= cy <= box.bottom()
        shape = predictor(frame, box)
        pred = np.array([[p.x, p.y] for p in shape.parts()], float)
        errors.append(np.linalg.norm(pred - truth, axis=1).mean() / faces.interocular(truth))
    assert found / len(pick) >= 0.95, f"detected {found}/{len(pick)}"
    errors = np.array(errors)
    # dlib itself is ~2-3 % of the inter-ocular distance off on real faces
    assert np.median(errors) < 0.05 and errors.max() < 0.10, (np.median(errors), errors.max())


def test_render_video(tmp_path):
    clips = small()
    path = tmp_path / "demo.mp4"
    synth.render_video(clips, str(path), fps=25)
    cap = cv2.VideoCapture(str(path))
    count = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (120, 160, 3)
        count += 1
    cap.release()
    assert count == len(clips.frames)
    assert sorted(os.listdir(tmp_path)) == ["demo.mp4"]  # no temporary left behind
    with pytest.raises(FercliError):
        synth.render_video(clips, str(tmp_path / "x.mp4"), fps=0)


def test_cli_video_and_faces_errors(tmp_path):
    from conftest import assert_user_error, fercli

    out, video = tmp_path / "s.h5", tmp_path / "s.mp4"
    fercli("synth", "--subjects", "1", "--classes", "happy", "--frames", "3:3", "--size", "96x72", "--video", str(video), "--fps", "10",
           "-o", str(out), check=True)
    assert out.exists() and video.stat().st_size > 0
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and round(cap.get(cv2.CAP_PROP_FPS)) == 10
    cap.release()
    assert_user_error(fercli("synth", "--faces", str(tmp_path / "none"), "-o", str(tmp_path / "x.h5")), "not a folder")
    assert_user_error(fercli("synth", "--video", str(tmp_path / "no" / "v.mp4"), "-o", str(tmp_path / "x.h5")), "does not exist")
    assert not (tmp_path / "x.h5").exists()


# --------------------------------------------------------------------------- head motion (--motion)


def _eye_frame(landmarks):
    """Eye midpoint, inter-ocular distance and roll (degrees) per frame."""
    left, right = faces.eye_centres(landmarks.astype(np.float64))
    d = right - left
    return (left + right) / 2, np.hypot(d[:, 0], d[:, 1]), np.degrees(np.arctan2(d[:, 1], d[:, 0]))


def test_motion_none_is_the_still_default_and_moving_clips_are_deterministic():
    still = small(frames=(12, 12))
    assert np.array_equal(still.frames, small(frames=(12, 12), motion="none").frames)
    strong_a, strong_b = small(frames=(12, 12), motion="strong"), small(frames=(12, 12), motion="strong")
    assert np.array_equal(strong_a.frames, strong_b.frames) and np.array_equal(strong_a.landmarks, strong_b.landmarks)
    assert not np.allclose(strong_a.landmarks, still.landmarks)
    assert strong_a.meta["synth"]["motion"] == "strong" and still.meta["synth"]["motion"] == "none"
    with pytest.raises(FercliError, match="--motion must be one of"):
        small(motion="wild")


def test_moving_heads_keep_exact_landmarks():
    """The head turns, shifts, scales and blurs over the clip, and dlib's landmarks on
    the moving frames still agree with the stored ones as on still frames."""
    clips = synth.synthesize(subjects=2, classes=["happy", "surprise"], frames=(36, 36), size=(320, 240), seed=3, motion="strong")
    mid, iod, roll = _eye_frame(clips.landmarks)
    for i in range(len(clips)):
        s = slice(clips.offsets[i], clips.offsets[i + 1])
        travel = np.ptp(mid[s], axis=0).max() / iod[s].mean()
        assert travel > 0.4 and np.ptp(roll[s]) > 3 and iod[s].max() / iod[s].min() > 1.05, (travel, np.ptp(roll[s]))
    occluded = clips.meta["synth"]["occluded"]
    assert set(occluded) <= set(clips.clip_ids) and occluded
    hidden = np.zeros(len(clips.frames), bool)
    for i, cid in enumerate(clips.clip_ids):
        if cid in occluded:
            first, last = occluded[cid]
            assert 0 < first <= last < clips.lengths[i] and last - first < 6
            hidden[clips.offsets[i] + first: clips.offsets[i] + last + 1] = True
    detector, predictor = faces.hog_detector(), faces.shape_predictor()
    errors = []
    for k in np.flatnonzero(~hidden)[::3]:
        frame, truth = clips.frames[k], clips.landmarks[k]
        boxes = detector(frame, 0)
        if len(boxes):
            box = max(boxes, key=lambda r: r.area())
            pred = faces.predict_landmarks(predictor, frame, (box.left(), box.top(), box.right() + 1, box.bottom() + 1))
            errors.append(np.linalg.norm(pred - truth, axis=1).mean() / faces.interocular(truth))
    assert len(errors) >= 0.9 * len(np.flatnonzero(~hidden)[::3])
    errors = np.array(errors)
    assert np.median(errors) < 0.055 and errors.max() < 0.12, (np.median(errors), errors.max())


def test_motion_blur_kernel_is_centred_along_the_motion():
    """Blur must not move the face: the kernel's centroid is its centre, so the
    stored landmarks stay those of mid-exposure."""
    assert synth._blur_kernel(np.array([0.5, 0.5]), 0.5) is None  # under a pixel: sharp
    for v in ([12.0, 0.0], [0.0, -9.0], [7.0, 7.0], [-10.0, 4.0]):
        k = synth._blur_kernel(np.array(v), 0.5)
        assert abs(k.sum() - 1) < 1e-5
        ys, xs = np.mgrid[0:k.shape[0], 0:k.shape[1]]
        c = (k.shape[0] - 1) / 2
        assert abs((k * xs).sum() - c) < 0.05 and abs((k * ys).sum() - c) < 0.05
        # spread along the motion, not across it
        along = np.array(v) / np.hypot(*v)
        proj = (xs - c) * along[0] + (ys - c) * along[1]
        across = (xs - c) * -along[1] + (ys - c) * along[0]
        assert np.sqrt((k * proj ** 2).sum()) > 2 * np.sqrt((k * across ** 2).sum())


def test_cli_motion(tmp_path):
    from conftest import assert_user_error, fercli

    out = tmp_path / "m.h5"
    fercli("synth", "--subjects", "1", "--classes", "happy", "--frames", "6:6", "--size", "96x72", "--motion", "mild",
           "-o", str(out), check=True)
    from fercli import artifacts

    clips, _, lineage = artifacts.load_clips(str(out), "test")
    assert clips.meta["synth"]["motion"] == "mild" and lineage[-1]["parameters"]["motion"] == "mild"
    assert_user_error(fercli("synth", "--motion", "wild", "-o", str(tmp_path / "x.h5")), "--motion must be one of")
    assert not (tmp_path / "x.h5").exists()


def test_faces_per_frame_puts_single_face_clips_side_by_side():
    """A group frame is exactly the subjects' own clips (rendered at the tile size)
    next to each other; the artifact keeps the leftmost face's landmarks."""
    kw = dict(subjects=4, classes=["happy", "fear"], frames=(5, 5), seed=2, motion="mild")
    group = synth.synthesize(size=(300, 120), faces_per_frame=2, **kw)
    single = synth.synthesize(size=(150, 120), **kw)
    assert len(group) == 4 and list(group.subjects) == ["S001+S002", "S001+S002", "S003+S004", "S003+S004"]
    assert group.meta["synth"]["faces_per_frame"] == 2 and group.meta["synth"]["tiles"] == [150, 150]
    # single clips: S001 happy, S001 fear, S002 happy, S002 fear, S003 ...
    for g, (left, right) in enumerate([(0, 2), (1, 3), (4, 6), (5, 7)]):
        assert np.array_equal(group.clip(g), np.concatenate([single.clip(left), single.clip(right)], axis=2))
        assert np.array_equal(group.landmarks[group.offsets[g]:group.offsets[g + 1]], single.landmarks[single.offsets[left]:single.offsets[left + 1]])
    with pytest.raises(FercliError, match="multiple of --faces-per-frame"):
        synth.synthesize(subjects=3, faces_per_frame=2, size=(300, 120), frames=(2, 2))
    with pytest.raises(FercliError, match="too narrow"):
        synth.synthesize(subjects=2, faces_per_frame=2, size=(24, 120), frames=(2, 2))


#: sha256 of frames + landmarks + head_pose of a small clip per motion level, from
#: the code before --motion speech existed: adding speech changed none of them.
_MOTION_DIGESTS = {
    "none": "61cf5595731e5e8178a1ff803a5bfc9f3b375e079682b40f889859dacdce46f8",
    "mild": "ba3ec20559f29fe5b2ee2b8b5d0eab9ae2a08d6617ac1c840f82312c53d969ae",
    "strong": "30be315d6767389e47ebf5516876f58612cb3eac393c5e66e71ac80977e60a23",
}


@pytest.mark.parametrize("motion", sorted(_MOTION_DIGESTS))
def test_other_motions_unchanged_byte_for_byte(motion):
    import hashlib

    clips = synth.synthesize(subjects=1, classes=["surprise"], frames=(14, 14), size=(64, 48), seed=2, motion=motion, color=motion == "strong")
    digest = hashlib.sha256()
    for array in (clips.frames, clips.landmarks, clips.head_pose):
        digest.update(array.tobytes())
    assert digest.hexdigest() == _MOTION_DIGESTS[motion]
    assert "speech_hz" not in clips.meta["synth"]


def _mouth_opening(landmarks):
    """Inner-lip gap (points 62-66) over the inter-ocular distance, per frame."""
    left, right = faces.eye_centres(landmarks.astype(np.float64))
    return np.linalg.norm(landmarks[:, 66] - landmarks[:, 62], axis=1) / np.linalg.norm(right - left, axis=1)


def test_speech_opens_the_mouth_at_the_stated_rate_on_mild_head_motion():
    """--motion speech: the ground-truth mouth opens and closes once per syllable, at
    the clip's stated rate (3-6 Hz at 30 frames/s); the head moves exactly as
    --motion mild, and every landmark the mouth and jaw do not move is mild's."""
    kw = dict(subjects=2, classes=["happy", "sadness"], frames=(90, 90), size=(160, 120), seed=5)
    talk, mild = synth.synthesize(motion="speech", **kw), synth.synthesize(motion="mild", **kw)
    assert np.array_equal(talk.landmarks, synth.synthesize(motion="speech", **kw).landmarks)  # deterministic
    rates = talk.meta["synth"]["speech_hz"]
    assert set(rates) == set(talk.clip_ids) and len(set(rates.values())) == len(rates)
    seconds = 90 / synth.MOTION_FPS
    for i, cid in enumerate(talk.clip_ids):
        s = slice(talk.offsets[i], talk.offsets[i + 1])
        opening = _mouth_opening(talk.landmarks[s])
        peaks = np.count_nonzero((opening[1:-1] > opening[:-2]) & (opening[1:-1] >= opening[2:]))
        assert synth.SPEECH_HZ[0] <= rates[cid] <= synth.SPEECH_HZ[1]
        # within two syllables over the clip (syllable lengths vary by +-20 %)
        assert abs(peaks / seconds - rates[cid]) <= 2 / seconds, (cid, peaks / seconds, rates[cid])
        assert np.ptp(opening) > 0.08  # the jaw really drops
        still = np.ptp(_mouth_opening(mild.landmarks[s]))
        assert still < 0.02, still  # the mild clip's mouth does not talk
    talking = np.abs(synth.AU_FIELDS[26]).sum(1) + np.abs(synth.AU_FIELDS[18]).sum(1) + np.abs(synth.AU_FIELDS[20]).sum(1) > 0
    assert np.array_equal(talk.landmarks[:, ~talking], mild.landmarks[:, ~talking])
    assert np.array_equal(talk.head_pose, mild.head_pose, equal_nan=True)
    assert not np.allclose(talk.landmarks[:, talking], mild.landmarks[:, talking])
