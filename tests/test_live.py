"""`fercli live` (thesis 4.2.7, Fig 4.3): headless JSON windows, frames without faces, sources, recording."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_user_error, fercli
from face_video import face_frames

from fercli import artifacts
from fercli.errors import FercliError


def _write_video(path, frames, fps=25):
    import cv2

    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()


def _model(path, arch="cnn-gru"):
    from fercli.models import registry

    if arch == "cnn-gru":
        config = {"backbone": "mobilenet-v3-small", "backbone_config": {"in_channels": 3, "input_size": 64}, "input": "probs", "fc": 0, "frames": 5}
    else:
        config = {"in_channels": 1, "input_size": 48}
    model, cfg = registry.build(arch, 3, config)
    record = artifacts.ModelRecord(arch, cfg, registry.state_to_numpy(model), ["happy", "sadness", "neutral"])
    artifacts.save_model(str(path), record, [])
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    frames, _ = face_frames(23, size=(320, 240))
    frames[7] = 0
    frames[8] = 0
    _write_video(d / "clip.mp4", frames)
    return d, _model(d / "live.h5")


def test_headless_one_json_line_per_window_and_no_face_frames(setup):
    d, model = setup
    rec = d / "overlay.mp4"
    proc = fercli("live", model, "--source", d / "clip.mp4", "--headless", "--record", rec, check=True)
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    # 23 frames: four windows of 5, then the flushed partial window of 3.
    assert [x["frames"] for x in lines] == [[0, 4], [5, 9], [10, 14], [15, 19], [20, 22]]
    assert [x["window"] for x in lines] == [5, 5, 5, 5, 3]
    # Frames 7 and 8 are black: the second window saw a face in 3 of its frames.
    assert [x["face_found"] for x in lines] == [5, 3, 5, 5, 3]
    for x in lines:
        assert x["label"] in ("happy", "sadness", "neutral")
        assert abs(sum(x["probabilities"].values()) - 1) < 1e-3
        assert x["label"] == max(x["probabilities"], key=x["probabilities"].get)
    assert lines[1]["time"] == pytest.approx(9 / 25, abs=1e-3)
    err = proc.stderr.decode()
    assert "23 frames, 5 windows" in err and "p50" in err and "p95" in err and "cnn" in err and "gru" in err
    import cv2

    cap = cv2.VideoCapture(str(rec))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 23 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320


def test_session_windows_without_faces_have_no_label(setup, tmp_path):
    """Stage level, on an image folder: a frame model, blank frames in a row, window of 2."""
    import cv2

    from fercli import live

    d, _ = setup
    frames, _ = face_frames(5, size=(240, 200))
    frames[2:4] = 0
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), f[..., ::-1])
    (tmp_path / "notes.txt").write_text("not an image")
    record, _, _ = artifacts.load_model(str(_model(tmp_path / "frame.h5", "mobilenet-v3-small")), "test")
    session = live.LiveSession(record, live.LiveOptions(window=2, engine="torch"))
    assert session.channels == 1 and session.size == 48 and not session.sequence
    timings = live.Timings()
    results = list(live.run(session, live.open_source(str(tmp_path)), timings))
    windows = [r.window for r in results if r.window is not None]
    assert [(w.start, w.end, w.face_found) for w in windows] == [(0, 1, 2), (2, 3, 0), (4, 4, 1)]
    assert windows[1].label is None and windows[1].probabilities is None
    assert windows[0].label is not None
    # A frame model's window label is the mean of its frames' distributions.
    mean = np.mean([r.probs for r in results[:2]], axis=0)
    assert np.allclose(list(windows[0].probabilities.values()), mean, atol=1e-4)
    assert results[-1].frame is None and results[2].found is False and results[2].probs is None
    assert timings.summary()["frames"] == 5 and timings.summary()["windows"] == 3


def test_bad_sources_and_options(setup, tmp_path):
    d, model = setup
    assert_user_error(fercli("live", model, "--source", tmp_path / "missing.mp4", "--headless"), "does not exist")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    assert_user_error(fercli("live", model, "--source", tmp_path / "broken.mp4", "--headless"), "cannot open")
    assert_user_error(fercli("live", model, "--source", tmp_path, "--headless"), "no images")
    assert_user_error(fercli("live", model, "--source", d / "clip.mp4", "--headless", "--window", "0"), "--window")
    proc = fercli("live", model, "--source", d / "clip.mp4", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert_user_error(proc, "--headless")


def test_onnx_engine_matches_torch(setup, tmp_path):
    """The onnxruntime engine (default when installed) gives the torch engine's numbers."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from fercli import live

    d, model = setup
    record, _, _ = artifacts.load_model(str(model), "test")
    runs = {}
    for engine in ("torch", "onnx"):
        session = live.LiveSession(record, live.LiveOptions(engine=engine))
        assert session.engine == engine
        runs[engine] = list(live.run(session, live.open_source(str(d / "clip.mp4")), max_frames=12))
    for a, b in zip(runs["torch"], runs["onnx"]):
        assert a.found == b.found and (a.window is None) == (b.window is None)
        if a.probs is not None:
            assert np.abs(a.probs - b.probs).max() < 1e-4
        if a.window is not None and a.window.probabilities:
            pa, pb = a.window.probabilities, b.window.probabilities
            assert max(abs(pa[k] - pb[k]) for k in pa) < 1e-3


def test_onnx_engine_runs_the_cnn_once_per_frame_for_feature_sequences(setup, monkeypatch):
    """A cnn-gru on feature sequences (SF): the onnx CNN half gives the GRU's vector and the
    shown distribution from one pass; torch never runs the backbone beside it."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from fercli import live
    from fercli.models import registry

    d, _ = setup
    config = {"backbone": "mobilenet-v3-small", "backbone_config": {"in_channels": 3, "input_size": 64}, "input": "features", "frames": 5}
    model, cfg = registry.build("cnn-gru", 3, config)
    record = artifacts.ModelRecord("cnn-gru", cfg, registry.state_to_numpy(model), ["happy", "sadness", "neutral"])
    runs = {}
    for engine in ("torch", "onnx"):
        session = live.LiveSession(record, live.LiveOptions(engine=engine))
        calls = []
        if engine == "onnx":  # from here on, a torch pass through the backbone would be a second CNN run
            monkeypatch.setattr(session.model.backbone, "forward", lambda *a, **k: calls.append(1))
        runs[engine] = list(live.run(session, live.open_source(str(d / "clip.mp4")), max_frames=6))
        assert calls == []
    found = [r for r in runs["onnx"] if r.probs is not None]
    assert found and all(abs(float(r.probs.sum()) - 1) < 1e-4 for r in found)
    for a, b in zip(runs["torch"], runs["onnx"]):
        if a.probs is not None:
            assert np.abs(a.probs - b.probs).max() < 1e-4


def _csv(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_one_row_per_frame_with_window_labels(setup, tmp_path):
    d, model = setup
    out = tmp_path / "frames.csv"
    proc = fercli("live", model, "--source", d / "clip.mp4", "--headless", "--csv", out, check=True)
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert all(x["face_id"] == 0 for x in lines)
    rows = _csv(out)
    from fercli.tables import LANDMARK_COLUMNS, OPENFACE_COLUMNS

    assert list(rows[0])[:5] == OPENFACE_COLUMNS and set(LANDMARK_COLUMNS) <= set(rows[0])
    assert [int(r["frame"]) for r in rows] == list(range(1, 24)) and [int(r["source_frame"]) for r in rows] == list(range(23))
    assert {r["face_id"] for r in rows} == {"0"}
    # Frames 7 and 8 (0-based) are black.
    assert [r["success"] for r in rows] == ["0" if k in (7, 8) else "1" for k in range(23)]
    assert rows[7]["face_x"] == "" and float(rows[6]["face_width"]) > 40 and rows[6]["x_30"] != ""
    assert float(rows[5]["timestamp"]) == pytest.approx(5 / 25, abs=1e-3)
    # The window label sits on the frame that completes it, the last one's on the last frame.
    labelled = [int(r["source_frame"]) for r in rows if r["label"]]
    assert labelled == [4, 9, 14, 19, 22]
    for r, line in zip([rows[k] for k in labelled], lines):
        assert r["label"] == line["label"] and int(r["window_start"]) == line["frames"][0]
        assert abs(float(r["p_happy"]) - line["probabilities"]["happy"]) < 1e-6
    assert_user_error(fercli("live", model, "--source", d / "clip.mp4", "--headless", "--csv", "-"), "--csv needs a file name")


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    """A synth video of two faces side by side, 12 frames."""
    d = tmp_path_factory.mktemp("two")
    fercli("synth", "--subjects", "2", "--classes", "happy", "--frames", "12:12", "--size", "640x240", "--color",
           "--faces-per-frame", "2", "--video", d / "two.mp4", "-o", d / "two.h5", check=True)
    return d / "two.mp4"


def test_faces_all_labels_every_face(two_faces, tmp_path):
    """Two faces side by side: a label per face per window, face ids in JSON and CSV."""
    model = _model(tmp_path / "m.h5")
    proc = fercli("live", model, "--source", two_faces, "--headless", "--faces", "all", "--csv", tmp_path / "f.csv", check=True)
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [(x["frames"], x["face_id"]) for x in lines] == [([0, 4], 0), ([0, 4], 1), ([5, 9], 0), ([5, 9], 1), ([10, 11], 0), ([10, 11], 1)]
    assert all(x["label"] and x["face_found"] == x["window"] for x in lines)
    rows = _csv(tmp_path / "f.csv")
    assert [(int(r["frame"]), int(r["face_id"])) for r in rows] == [(k, f) for k in range(1, 13) for f in (0, 1)]
    left = [float(r["face_x"]) for r in rows if r["face_id"] == "0"]
    right = [float(r["face_x"]) for r in rows if r["face_id"] == "1"]
    assert max(left) < 320 <= min(right)  # face 0 is the left one, and stays it
    assert [r["frame"] for r in rows if r["label"]] == ["5", "5", "10", "10", "12", "12"]
    # OpenFace's head pose per face: in front of the camera, nearly frontal (synth yaw within +-25 degrees)
    assert all(float(r["pose_Tz"]) > 0 and abs(float(r["pose_Ry"])) < 0.6 for r in rows)
    assert_user_error(fercli("live", model, "--source", two_faces, "--headless", "--faces", "every"), "--faces must be one of")
    # The log as a timeline: one panel per face
    fercli("show", tmp_path / "f.csv", "-o", tmp_path / "t.pdf", check=True)
    assert (tmp_path / "t.pdf").read_bytes()[:4] == b"%PDF"


# --------------------------------------------------------------------------- the pipelined engine


@pytest.mark.parametrize("faces", ["best", "all"])
def test_pipelined_engine_gives_the_one_thread_engines_json_lines_and_csv(setup, two_faces, tmp_path, faces):
    d, model = setup
    video = d / "clip.mp4" if faces == "best" else two_faces
    out = {}
    for flag in ("--pipeline", "--no-pipeline"):
        csv_path = tmp_path / f"{flag}.csv"
        proc = fercli("live", model, "--source", video, "--headless", "--faces", faces, "--csv", csv_path, flag, check=True)
        out[flag] = (proc.stdout, csv_path.read_bytes())
        assert ("pipelined" if flag == "--pipeline" else "one thread") in proc.stderr.decode()
        assert "dropped" not in proc.stderr.decode()  # a file waits: nothing is dropped, nothing said
    assert out["--pipeline"] == out["--no-pipeline"]
    lines = out["--pipeline"][0].decode().splitlines()
    assert len(lines) == (5 if faces == "best" else 6) and all("dropped" not in json.loads(x) for x in lines)


def _onnx_or_torch():
    import importlib.util

    have = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
    return "onnx" if have else "torch"


class _Counting:
    """An onnxruntime session (or the model's backbone) that counts its calls and their batch sizes."""

    def __init__(self, inner):
        self.inner, self.batches = inner, []

    def run(self, names, feeds):
        self.batches.append(len(next(iter(feeds.values()))))
        return self.inner.run(names, feeds)


def test_faces_all_runs_the_cnn_once_per_frame_on_a_batch_of_crops(setup, two_faces):
    """--faces all: one CNN call per frame on all its faces' crops, giving each face what a
    call on its crop alone gives."""
    from fercli import live

    _, model = setup
    record, _, _ = artifacts.load_model(str(model), "test")
    engine = _onnx_or_torch()
    session = live.LiveSession(record, live.LiveOptions(engine=engine, faces="all", pipeline=False))
    if engine == "onnx":
        counting = session._ort_cnn = _Counting(session._ort_cnn)
    else:
        counting = _Counting(None)
        forward = session.model.frame_vectors_and_probs
        session.model.frame_vectors_and_probs = lambda x: (counting.batches.append(len(x)), forward(x))[1]
    results = [r for r in live.run(session, live.open_source(str(two_faces))) if r.frame is not None]
    assert len(results) == 12 and all(len(r.faces) == 2 for r in results)
    assert counting.batches == [2] * 12
    rgb = results[3].frame[..., ::-1]
    for face in results[3].faces:
        state = type("State", (), {"box": face.box, "landmarks": face.landmarks})
        vec, probs = session._cnn([session._crop(rgb, state)])
        assert np.abs(probs[0] - face.probs).max() < 1e-5 and np.abs(vec[0] - face.vector).max() < 1e-5


class _FakeCamera:
    """A live source that never makes its reader wait: ``n`` frames as fast as they are
    asked for, then the end; ``exhausted`` is set when the last one has been taken."""

    live = True
    fps = 30.0

    def __init__(self, frames, n):
        import threading

        self.frames, self.n, self.reads = frames, n, 0
        self.exhausted = threading.Event()
        self.closed = False

    def wait(self):
        pass  # a frame is always there

    def read(self):
        if self.reads >= self.n:
            self.exhausted.set()
            return None
        self.reads += 1
        return self.frames[self.reads % len(self.frames)]

    def close(self):
        self.closed = True


def _camera_session(setup, distinct: int, frames: int, window: int, pipeline: bool):
    """A fake camera giving ``frames`` frames (``distinct`` face frames in turn) and a session
    of the setup's model on it."""
    from fercli import live

    _, model = setup
    record, _, _ = artifacts.load_model(str(model), "test")
    faces, _ = face_frames(distinct, size=(240, 200))
    camera = _FakeCamera(np.ascontiguousarray(faces[..., ::-1]), frames)
    return camera, live.LiveSession(record, live.LiveOptions(engine=_onnx_or_torch(), window=window, pipeline=pipeline))


def test_a_camera_faster_than_the_pipeline_drops_frames_counts_and_reports_them(setup):
    """The consumer takes one result, then waits (an Event the test holds) until the camera
    has given every frame: the pipeline cannot have taken more than its queues and stages
    hold, so the rest were dropped at capture, counted, and said in the windows."""
    from fercli import live, live_pipeline

    camera, session = _camera_session(setup, 6, 200, window=2, pipeline=True)
    timings = live.Timings()
    results = []
    for result in live.run(session, camera, timings, realtime_clock=True):
        results.append(result)
        if len(results) == 1:
            assert camera.exhausted.wait(120)  # hold the consumer until the camera is done
    # In flight at most: one frame in each of the four queues and in each of the three
    # stages behind the capture, beside the one the consumer had.
    bound = 1 + 4 * live_pipeline.QUEUE_SIZE + 3
    processed = [r for r in results if r.frame is not None]
    assert timings.frames == len(processed) <= bound
    assert timings.dropped == 200 - len(processed) >= 200 - bound
    assert [r.index for r in processed] == list(range(len(processed)))  # in order, no gaps
    windows = [w for r in results for w in r.windows]
    assert sum(w.dropped for w in windows) == timings.dropped
    assert all("dropped" in w.as_json() for w in windows)
    assert timings.summary()["dropped"] == timings.dropped and camera.closed


def test_the_one_thread_engine_on_a_camera_drops_nothing(setup):
    from fercli import live

    camera, session = _camera_session(setup, 4, 7, window=3, pipeline=False)
    timings = live.Timings()
    windows = [w for r in live.run(session, camera, timings, realtime_clock=True) for w in r.windows]
    assert timings.frames == 7 and timings.dropped == 0 and [w.dropped for w in windows] == [0, 0, 0]


class _BrokenSource(_FakeCamera):
    live = False

    def read(self):
        if self.reads == 5:
            raise FercliError("frame 5 is unreadable")
        return super().read()


def test_pipelined_engine_hands_a_stage_error_to_the_consumer_and_stops_its_threads(setup):
    import threading

    from fercli import live

    _, model = setup
    record, _, _ = artifacts.load_model(str(model), "test")
    frames, _ = face_frames(3, size=(240, 200))
    session = live.LiveSession(record, live.LiveOptions(engine=_onnx_or_torch(), pipeline=True))
    source = _BrokenSource(np.ascontiguousarray(frames[..., ::-1]), 50)
    got = []
    with pytest.raises(FercliError, match="frame 5 is unreadable"):
        for result in live.run(session, source):
            got.append(result)
    assert len(got) <= 5 and source.closed
    # Stopping early (a user's q) ends every thread of the run.
    gen = live.run(session, _FakeCamera(np.ascontiguousarray(frames[..., ::-1]), 10_000))
    next(gen)
    gen.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("fercli-live")]


def test_the_pipeline_is_the_default_where_two_cpus_are_there(monkeypatch):
    import os

    from fercli import live

    assert live.use_pipeline(True) and not live.use_pipeline(False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert not live.use_pipeline(None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert live.use_pipeline(None)
