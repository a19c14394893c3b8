"""`fercli align` (thesis 3.2.2): registration geometry, tracking, missing faces, shards, workers, CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, assert_user_error, fercli
from face_video import face_clips

from fercli import artifacts, faces
from fercli.align import AlignOptions, align, shard_indices, template
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
    from fercli.align import make_tracker

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
