"""`fercli align` (thesis 3.2.2): registration geometry, tracking, missing faces, shards, workers, CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, assert_user_error, fercli
from face_video import face_clips

from fercli import artifacts, faces
from fercli.align import AlignOptions, align, shard_indices
from fercli.geometry import template
from fercli.errors import FercliError


@pytest.fixture(scope="module")
def clips():
    return face_clips(lengths=(8, 6, 7))


@pytest.fixture(scope="module")
def aligned(clips):
    return align(clips, AlignOptions())


@pytest.fixture(scope="module")
def clips_file(tmp_path_factory, clips):
    path = tmp_path_factory.mktemp("align") / "faces.h5"
    artifacts.save_clips(str(path), clips, [])
    return path


def test_eye_centres_land_on_the_template(aligned):
    out, stats = aligned
    assert out.frames.shape == (21, 64, 64) and out.frames.dtype == np.uint8
    assert out.landmarks.shape == (21, 68, 2) and out.face_found.all()
    want_l, want_r = faces.eye_centres(template(64))
    got_l, got_r = faces.eye_centres(out.landmarks.astype(np.float64))
    # Affine on eyes + nose tip is exact on the points it registers.
    assert np.abs(got_l - want_l).max() < 0.01 and np.abs(got_r - want_r).max() < 0.01
    assert np.abs(out.landmarks[:, 30] - template(64)[30]).max() < 0.01
    # The template itself puts the eyes level, 24.6 px apart at 64 px.
    assert abs(want_l[1] - want_r[1]) < 1e-9 and 24 < want_r[0] - want_l[0] < 25


def test_landmarks_match_ground_truth_and_tracking_saves_detections(aligned, clips):
    out, stats = aligned
    # The input's landmarks are the truth carried through each frame's warp.
    assert stats.gt_error_iod_pct is not None and stats.gt_error_iod_pct < 3.0
    assert stats.found == 21 and stats.missing == 0
    # Detector on the first frame of each clip only (clips shorter than 10 frames).
    assert stats.detections == 3


def test_registered_image_content_is_the_face(aligned, clips):
    """Eyes are darker than the cheeks under them in the registered crop: the pixels follow the landmarks."""
    out, _ = aligned
    l, r = faces.eye_centres(template(64))
    f = out.frames.astype(float)
    eyes = f[:, int(l[1]), int(l[0])] + f[:, int(r[1]), int(r[0])]
    cheeks = f[:, int(l[1]) + 10, int(l[0])] + f[:, int(r[1]) + 10, int(r[0])]
    assert (eyes < cheeks).all()


def test_similarity_and_colour_and_size(clips):
    out, _ = align(clips.select([0]), AlignOptions(size=96, gray=False, transform="similarity"))
    assert out.frames.shape == (8, 96, 96, 3)
    l, r = faces.eye_centres(out.landmarks.astype(np.float64))
    tl, tr = faces.eye_centres(template(96))
    # Least squares over three points: near, not exact.
    assert np.abs(l - tl).max() < 2.0 and np.abs(r - tr).max() < 2.0
    assert out.meta["size"] == 96 and out.meta["color"] is True


def test_no_align_crops_the_square_detection_box(clips):
    out, stats = align(clips.select([0]), AlignOptions(align=False, size=48))
    assert out.frames.shape == (8, 48, 48) and out.meta["aligned"] is False
    # Unregistered: the eyes move with the head, but the face stays in the middle.
    l, r = faces.eye_centres(out.landmarks.astype(np.float64))
    mid = (l + r) / 2
    assert np.all(np.abs(mid[:, 0] - 24) < 6) and np.all((mid[:, 1] > 8) & (mid[:, 1] < 26))
    assert np.ptp(l[:, 1] - r[:, 1]) > 1.0  # the 12 degree head roll is not undone


@pytest.mark.parametrize("mode", ["hold", "interpolate", "drop"])
def test_missing_frames(mode):
    clips = face_clips(lengths=(7, 5), blank={0: [3, 4], 1: [0, 1, 2, 3, 4]})
    out, stats = align(clips, AlignOptions(missing=mode))
    assert stats.found == 5 and stats.missing == 7
    assert stats.dropped_clips == ["c1"] and len(out) == 1 and list(out.clip_ids) == ["c0"]
    if mode == "drop":
        assert len(out.frames) == 5 and out.face_found.all()
        return
    assert len(out.frames) == 7
    assert out.face_found.tolist() == [True, True, True, False, False, True, True]
    lm = out.landmarks.astype(np.float64)
    if mode == "hold":
        # Previous frame's landmarks and transform: same crop coordinates.
        assert np.allclose(lm[3], lm[2]) and np.allclose(lm[4], lm[2])
    else:
        # A blend between frames 2 and 5: in crop coordinates the registered points
        # of a blend of two registrations stay at the template.
        raw2, raw5 = clips.landmarks[2], clips.landmarks[5]
        assert not np.allclose(lm[3], lm[2], atol=1e-3) or np.allclose(raw2, raw5)
        want = faces.eye_centres(template(64))[0]
        assert np.abs(faces.eye_centres(lm[3])[0] - want).max() < 0.05


def test_nothing_found_is_an_error():
    clips = face_clips(lengths=(3,), blank={0: [0, 1, 2]})
    with pytest.raises(FercliError, match="no face was found"):
        align(clips, AlignOptions())


def test_redetect_every_frame_agrees_with_tracking(clips):
    sub = clips.select([0])
    tracked, st1 = align(sub, AlignOptions())
    naive, st2 = align(sub, AlignOptions(redetect_every=1))
    assert st1.detections == 1 and st2.detections == 8
    iod = faces.interocular(naive.landmarks.astype(np.float64))
    diff = np.linalg.norm(tracked.landmarks - naive.landmarks, axis=-1).mean(-1) / iod
    assert diff.mean() < 0.03


def test_tracker_notices_a_lost_face():
    from face_video import face_frames

    frames, _ = face_frames(6)
    frames = frames.mean(axis=3).astype(np.uint8)
    frames[3] = 0
    from fercli.tracking import make_tracker

    tracker = make_tracker(AlignOptions())
    states = [tracker(f) for f in frames]
    assert [s.found for s in states] == [True, True, True, False, True, True]
    assert [s.detected for s in states] == [True, False, False, True, True, False]


def test_workers_give_identical_output(clips):
    one, _ = align(clips, AlignOptions(workers=1))
    two, _ = align(clips, AlignOptions(workers=2))
    assert np.array_equal(one.frames, two.frames) and np.array_equal(one.landmarks, two.landmarks)
    assert list(one.clip_ids) == list(two.clip_ids)


def test_shard_blocks_partition_in_order():
    for n in (1, 5, 16, 17):
        for k in (1, 3, 4, 16):
            parts = [shard_indices(n, (i, k)) for i in range(k)]
            assert np.array_equal(np.concatenate(parts), np.arange(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_cli_shards_concatenate_to_the_whole(clips_file, tmp_path):
    whole = tmp_path / "whole.h5"
    fercli("align", clips_file, "-o", whole, check=True)
    parts = []
    for i in range(2):
        p = tmp_path / f"part{i}.h5"
        proc = fercli("align", clips_file, "--shard", f"{i}/2", "-o", p, check=True)
        assert b"faces found" in proc.stderr
        parts.append(artifacts.load_clips(str(p), "test")[0])
    full = artifacts.load_clips(str(whole), "test")[0]
    assert [c for p in parts for c in p.clip_ids] == list(full.clip_ids)
    assert np.array_equal(np.concatenate([p.frames for p in parts]), full.frames)
    lineage = artifacts.load_clips(str(tmp_path / "part1.h5"), "test")[2]
    assert lineage[-1]["stage"] == "align" and lineage[-1]["parameters"]["shard"] == "1/2"
    # `fercli merge` of the shards in order gives the unsharded output back.
    merged = tmp_path / "merged.h5"
    fercli("merge", tmp_path / "part0.h5", tmp_path / "part1.h5", "-o", merged, check=True)
    back = artifacts.load_clips(str(merged), "test")[0]
    assert list(back.clip_ids) == list(full.clip_ids) and np.array_equal(back.frames, full.frames)
    assert np.array_equal(back.landmarks, full.landmarks) and np.array_equal(back.offsets, full.offsets)


def test_cli_pipe_align_into_resample(clips_file, tmp_path):
    out = tmp_path / "piped.h5"
    cmd = f"{sys.executable} -m fercli align {clips_file} --size 32 -o - | {sys.executable} -m fercli resample -n 10 - -o {out}"
    proc = subprocess.run(cmd, shell=True, capture_output=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr.decode()
    result, _, lineage = artifacts.load_clips(str(out), "test")
    assert result.frames.shape == (30, 32, 32) and result.lengths.tolist() == [10, 10, 10]
    assert [e["stage"] for e in lineage] == ["align", "resample"]


def test_cli_user_errors(clips_file, tmp_path):
    out = tmp_path / "x.h5"
    assert_user_error(fercli("align", clips_file, "--detector", "opencv-dnn", "-o", out), "--detector-model")
    assert_user_error(fercli("align", clips_file, "--detector", "yunet", "--detector-model", tmp_path / "nope.onnx", "-o", out), "does not exist")
    assert_user_error(fercli("align", clips_file, "--missing", "guess", "-o", out), "--missing")
    assert_user_error(fercli("align", clips_file, "--shard", "2/2", "-o", out), "--shard")
    gray = tmp_path / "gray.h5"
    artifacts.save_clips(str(gray), face_clips(lengths=(2,), gray=True), [])
    assert_user_error(fercli("align", gray, "--color", "-o", out), "--gray")
    blank = tmp_path / "blank.h5"
    artifacts.save_clips(str(blank), face_clips(lengths=(2,), blank={0: [0, 1]}), [])
    assert_user_error(fercli("align", blank, "-o", out), "no face")
    assert not out.exists()


def test_opencv_dnn_detector_reads_ssd_rows(tmp_path):
    """The opencv-dnn path on a hand-made ONNX graph emitting SSD rows [_, _, score, x0, y0, x1, y1]."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    rows = np.array([[[[0, 1, 0.9, 0.25, 0.2, 0.6, 0.7], [0, 1, 0.3, 0.0, 0.0, 0.5, 0.5]]]], np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["m"], keepdims=1),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])),
        helper.make_node("Mul", ["m", "zero"], ["m0"]),
        helper.make_node("Constant", [], ["rows"], value=helper.make_tensor("r", TensorProto.FLOAT, rows.shape, rows.ravel())),
        helper.make_node("Add", ["rows", "m0"], ["detections"]),
    ]
    graph = helper.make_graph(nodes, "ssd", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 300, 300])],
                              [helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, 1, 2, 7])])
    path = tmp_path / "ssd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    det = faces.make_detector("opencv-dnn", str(path))
    found = det(np.zeros((100, 200), np.uint8))
    # One row above the 0.5 threshold, scaled to the 200x100 image.
    assert len(found) == 1
    box, score = found[0]
    assert np.allclose(box, (50, 20, 120, 70), atol=1e-3) and abs(score - 0.9) < 1e-6
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    with pytest.raises(FercliError, match="cannot read"):
        faces.make_detector("opencv-dnn", str(bad))


# --------------------------------------------------------------------------- tracking moving heads


@pytest.fixture(scope="module")
def moving():
    from fercli.synth import synthesize

    return synthesize(subjects=1, classes=["happy", "surprise"], frames=(40, 40), size=(320, 240), seed=2, motion="strong")


def _per_frame_detection(frames):
    return [faces.landmarks_in_frame(f) for f in frames]


def test_tracker_holds_moving_heads_like_per_frame_detection(moving, monkeypatch):
    """On turning, shifting, blurred, briefly occluded heads the tracked landmarks stay
    as close to per-frame detection as issue 13 asks (2 % IOD mean, 4 % p95; the
    floor between two dlib fits in slightly different boxes is ~1.3 %), while the
    predictor runs on a fraction of the frames and the detector on a tenth."""
    from fercli import tracking as align_module
    from fercli.tracking import make_tracker

    refs = [_per_frame_detection(moving.clip(i)) for i in range(len(moving))]
    calls = []
    predict = align_module.faces.predict_landmarks
    monkeypatch.setattr(align_module.faces, "predict_landmarks", lambda *a: calls.append(1) or predict(*a))
    tracker = make_tracker(AlignOptions())
    diffs, truth_err, ref_err = [], [], []
    occluded = moving.meta["synth"]["occluded"]
    for i, ref in enumerate(refs):
        frames = moving.clip(i)
        truth = moving.landmarks[moving.offsets[i]:moving.offsets[i + 1]].astype(np.float64)
        tracker.reset()
        states = [tracker(f) for f in frames]
        first, last = occluded.get(moving.clip_ids[i], (-1, -1))
        for t, (s, r) in enumerate(zip(states, ref)):
            if first <= t <= last:
                continue
            assert s.found, f"clip {i} frame {t} lost outside the occlusion"
            iod = faces.interocular(truth[t])
            truth_err.append(np.linalg.norm(s.landmarks - truth[t], axis=1).mean() / iod)
            # Frames where per-frame detection itself is off the face (a false
            # detection) say nothing about the tracker.
            if r is not None and np.linalg.norm(r - truth[t], axis=1).mean() / iod < 0.1:
                diffs.append(np.linalg.norm(s.landmarks - r, axis=1).mean() / iod)
                ref_err.append(np.linalg.norm(r - truth[t], axis=1).mean() / iod)
    diffs = np.array(diffs) * 100
    assert diffs.mean() < 2.0 and np.percentile(diffs, 95) < 4.0, (diffs.mean(), np.percentile(diffs, 95))
    assert np.mean(truth_err) < np.mean(ref_err) + 0.005  # as close to the truth as detecting every frame
    n = len(moving.frames)
    assert tracker.detections <= n // 5  # every 10th frame, plus searches after the occlusion
    # Flow carried the landmarks on some frames, never on more than 2 in a row (the
    # predictor also refits the jaw and mouth on carried frames where only they moved
    # unlike the rigid points, issue 22: turning heads' chins do, so more calls than 0.6 n).
    assert n / 3 - len(moving) <= len(calls) < 0.75 * n


def test_predict_every_1_runs_the_predictor_on_every_frame(moving, monkeypatch):
    from fercli import tracking as align_module
    from fercli.tracking import make_tracker

    calls = []
    predict = align_module.faces.predict_landmarks
    monkeypatch.setattr(align_module.faces, "predict_landmarks", lambda *a: calls.append(1) or predict(*a))
    tracker = make_tracker(AlignOptions(predict_every=1))
    frames = moving.clip(0)[:20]
    states = [tracker(f) for f in frames]
    assert all(s.found for s in states)
    assert len(calls) >= len(frames)
    with pytest.raises(FercliError, match="--predict-every"):
        AlignOptions(predict_every=0).check()


# --------------------------------------------------------------------------- every face (--faces all)


@pytest.fixture(scope="module")
def pair():
    """Two subjects side by side (synth --faces-per-frame 2) and, for the truth of
    both faces, the same subjects rendered alone at the tile size."""
    from fercli.synth import synthesize

    kw = dict(subjects=2, classes=["happy"], frames=(14, 14), seed=5, motion="mild")
    group = synthesize(size=(640, 240), faces_per_frame=2, **kw)
    single = synthesize(size=(320, 240), **kw)
    truth = np.stack([single.landmarks[:14], single.landmarks[14:] + [320, 0]], axis=1).astype(np.float64)  # (F, 2, 68, 2)
    return group, truth


def _in_source(out: "artifacts.Clips", i: int) -> np.ndarray:
    from fercli.geometry import invert, map_points

    s = slice(out.offsets[i], out.offsets[i + 1])
    return map_points(invert(out.source_transform()[s]), out.landmarks[s].astype(np.float64))


def test_faces_all_tracks_both_faces_of_a_group_video(pair):
    group, truth = pair
    out, stats = align(group, AlignOptions(faces="all"))
    assert list(out.clip_ids) == [f"{group.clip_ids[0]}#face0", f"{group.clip_ids[0]}#face1"]
    assert list(out.face_id) == [0, 1] and list(out.subjects) == [group.subjects[0]] * 2
    assert stats.clips_out == 2 and stats.found == 28 and stats.missing == 0
    for k in range(2):
        # Face 0 is the left one; each clip's landmarks, mapped back to the video's
        # pixels, lie on its own face's truth.
        assert list(out.source_frame[out.offsets[k]:out.offsets[k + 1]]) == list(range(14))
        err = np.linalg.norm(_in_source(out, k) - truth[:, k], axis=-1).mean(-1) / faces.interocular(truth[:, k])
        assert err.mean() < 0.06 and err.max() < 0.1, (k, err.mean(), err.max())
    # Without a recorded subject each face is its own.
    anonymous = artifacts.Clips(**{**group.__dict__, "subjects": np.array([""], dtype=object)})
    assert list(align(anonymous, AlignOptions(faces="all"))[0].subjects) == list(out.clip_ids)
    # The default still follows one face, the most confident.
    best, _ = align(group, AlignOptions())
    assert len(best) == 1 and best.face_id is None


def test_faces_all_a_face_that_comes_and_goes_spans_its_own_frames(pair):
    group, truth = pair
    frames = group.frames.copy()
    frames[:4, :, 320:] = frames[0, 0, 330]  # the right face arrives at frame 4 ...
    frames[11:, :, :320] = frames[0, 0, 10]  # ... and the left one leaves after frame 10
    moved = artifacts.Clips(**{**group.__dict__, "frames": frames})
    out, _ = align(moved, AlignOptions(faces="all", missing="hold", redetect_every=3))
    spans = {int(f): list(out.source_frame[out.offsets[i]:out.offsets[i + 1]]) for i, f in enumerate(out.face_id)}
    # New faces are looked for every --redetect-every frames (0, 3, 6, ...): the right
    # one is found at frame 6; a face that leaves is lost at once.
    assert spans[0] == list(range(0, 11)) and spans[1] == list(range(6, 14))
    assert out.face_found.all()


def test_faces_all_in_table_and_cli_errors(pair, tmp_path):
    group, _ = pair
    path = tmp_path / "group.h5"
    artifacts.save_clips(str(path), group, [])
    fercli("align", path, "--faces", "all", "-o", tmp_path / "a.h5", check=True)
    proc = fercli("table", tmp_path / "a.h5", check=True)
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(proc.stdout.decode())))
    assert sorted({(r["face_id"], r["clip_id"].split("#")[1]) for r in rows}) == [("0", "face0"), ("1", "face1")]
    assert_user_error(fercli("align", path, "--faces", "some", "-o", tmp_path / "x.h5"), "--faces must be one of")
    assert not (tmp_path / "x.h5").exists()


# --------------------------------------------------------------------------- --transform auto


def test_nose_offset_measures_how_much_the_affine_would_shear():
    from fercli.geometry import nose_offset

    mean = faces.MEAN_FACE_68 * 40 + [100, 80]
    assert nose_offset(mean) < 1e-9
    turned = mean.copy()
    turned[faces.NOSE_TIP, 0] += 0.2 * 40  # nose tip a fifth of the eye distance sideways
    assert nose_offset(turned) == pytest.approx(0.2)
    rot = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
    assert nose_offset(turned @ rot.T * 1.7) == pytest.approx(0.2)  # independent of roll and scale


def test_transform_auto_keeps_affine_for_frontal_faces_and_uses_similarity_for_turned_ones(clips):
    frontal, stats = align(clips, AlignOptions(transform="auto"))
    affine, _ = align(clips, AlignOptions())
    assert stats.similarity_clips == 0 and np.array_equal(frontal.frames, affine.frames)
    # The rule itself, on given landmarks: a nose tip a quarter of the eye distance
    # sideways (a head turned ~25 degrees) is registered by similarity, rotation and
    # scale only; a frontal one stays affine.
    from fercli.align import register_clip
    from fercli.tracking import FaceState

    frames = np.zeros((3, 200, 200), np.uint8)
    front = faces.MEAN_FACE_68 * 40 + [100, 80]
    turned = front.copy()
    turned[faces.NOSE_TIP, 0] += 0.25 * 40
    for points, kind in ((front, "affine"), (turned, "similarity")):
        states = [FaceState(True, points, (40.0, 40.0, 160.0, 160.0)) for _ in frames]
        r = register_clip(frames, states, AlignOptions(transform="auto"))
        m = r.transforms[:, :, :2]
        assert r.transform == kind
        assert np.allclose(m[:, 0, 0], m[:, 1, 1]) and np.allclose(m[:, 0, 1], -m[:, 1, 0]) or kind == "affine"
    sheared = register_clip(frames, [FaceState(True, turned, (40.0, 40.0, 160.0, 160.0))] * 3, AlignOptions())
    m = sheared.transforms[0, :, :2]
    assert not np.isclose(m[0, 1], -m[1, 0], atol=1e-3)  # the affine shears that face
    with pytest.raises(FercliError, match="--transform must be one of"):
        AlignOptions(transform="shear").check()
