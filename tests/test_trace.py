"""Frames traced to their source video (source frame, transform, box, score, fps) through
ingest, align, resample and merge, and `fercli table` of clips (issue 14)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from conftest import assert_user_error, fercli
from face_video import face_clips

from fercli import artifacts, faces
from fercli.align import AlignOptions, align
from fercli.geometry import compose, invert, map_points

FPS = 25.0


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A synth video (clips one after another) and its artifact with ground-truth landmarks."""
    d = tmp_path_factory.mktemp("trace")
    fercli("synth", "--subjects", "2", "--classes", "happy,surprise", "--frames", "6:8", "--size", "320x240",
           "--video", d / "v.mp4", "--fps", str(FPS), "-o", d / "s.h5", check=True)
    return d


def _rows(proc) -> list[dict]:
    return list(csv.DictReader(io.StringIO(proc.stdout.decode())))


def _points(rows: list[dict]) -> np.ndarray:
    """(N, 68, 2) landmarks of table rows (x_i, y_i columns)."""
    return np.array([[[float(r[f"x_{i}"]), float(r[f"y_{i}"])] for i in range(68)] for r in rows])


def _error_iod(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points - truth, axis=-1).mean(-1) / faces.interocular(truth)


def test_table_round_trips_a_synth_video_in_source_coordinates(video):
    """synth --video -> ingest video (scaled 1.5x) -> align -> table: landmarks land on synth's
    ground truth in the video's own pixels, every frame traced to its index and time."""
    d = video
    truth, _, _ = artifacts.load_clips(str(d / "s.h5"), "test")
    n = len(truth.frames)
    fercli("ingest", "video", d / "v.mp4", "--resize", "480x360", "--label", "happy", "--subject", "s01", "-o", d / "big.h5", check=True)
    fercli("align", d / "big.h5", "--size", "64", "-o", d / "a.h5", check=True)
    rows = _rows(fercli("table", d / "a.h5", check=True))
    assert len(rows) == n
    assert list(rows[0])[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]
    assert [int(r["source_frame"]) for r in rows] == list(range(n))
    assert [int(r["frame"]) for r in rows] == list(range(1, n + 1))  # OpenFace counts from 1
    assert [float(r["timestamp"]) for r in rows] == pytest.approx([k / FPS for k in range(n)], abs=1e-3)
    assert {(r["label"], r["subject"], r["source"], r["status"], r["success"]) for r in rows} == {("happy", "s01", str(d / "v.mp4"), "detected", "1")}
    assert all(float(r["confidence"]) > 0 for r in rows)
    # Crop landmarks mapped back through registration and the ingest scale: the predictor's
    # own error against the truth (a wrong composition would be off by the 1.5x scale).
    err = _error_iod(_points(rows), truth.landmarks.astype(np.float64))
    assert err.mean() < 0.06 and err.max() < 0.12
    # The face box is in the same pixels and holds the face.
    pts = truth.landmarks
    x, y, w, h = (np.array([float(r[k]) for r in rows]) for k in ("face_x", "face_y", "face_width", "face_height"))
    cx, cy = pts[:, 30, 0], pts[:, 30, 1]  # nose tip
    assert np.all((x < cx) & (cx < x + w) & (y < cy) & (cy < y + h)) and 60 < np.median(w) < 200

    # The synth artifact's own table (ground truth) lines up row for row with the video's.
    synth_rows = _rows(fercli("table", d / "s.h5", check=True))
    assert [r["source_frame"] for r in synth_rows] == [r["source_frame"] for r in rows]
    assert np.allclose(_points(synth_rows), truth.landmarks, atol=1e-3)


def test_source_frames_after_missing_drop_and_hold(video, tmp_path):
    d = video
    fercli("ingest", "video", d / "v.mp4", "--label", "happy", "-o", tmp_path / "v.h5", check=True)
    clips, _, _ = artifacts.load_clips(str(tmp_path / "v.h5"), "test")
    blank = [5, 6, 17]
    clips.frames[blank] = 0
    artifacts.save_clips(str(tmp_path / "blank.h5"), clips, [])
    n = len(clips.frames)

    fercli("align", tmp_path / "blank.h5", "--missing", "drop", "-o", tmp_path / "drop.h5", check=True)
    rows = _rows(fercli("table", tmp_path / "drop.h5", "--format", "csv", check=True))
    survivors = [k for k in range(n) if k not in blank]
    assert [int(r["source_frame"]) for r in rows] == survivors
    assert [float(r["timestamp"]) for r in rows] == pytest.approx([k / FPS for k in survivors], abs=1e-3)
    assert {r["status"] for r in rows} == {"detected"}

    fercli("align", tmp_path / "blank.h5", "--missing", "hold", "-o", tmp_path / "hold.h5", check=True)
    lines = fercli("table", tmp_path / "hold.h5", "--format", "jsonl", check=True).stdout.decode().splitlines()
    held = [json.loads(line) for line in lines]
    assert [r["source_frame"] for r in held] == list(range(n))
    assert [r["status"] for r in held] == ["held" if k in blank else "detected" for k in range(n)]
    assert [r["success"] for r in held] == [0 if k in blank else 1 for k in range(n)]
    assert all(r["confidence"] is None for r in held if r["status"] == "held")
    # A held frame repeats the last found frame's source landmarks.
    assert held[5]["x_30"] == held[4]["x_30"] and held[6]["y_8"] == held[4]["y_8"]

    # resample keeps the source frame of the nearer input frame.
    fercli("resample", tmp_path / "drop.h5", "-n", "5", "--method", "nearest", "-o", tmp_path / "r.h5", check=True)
    picked = [int(r["source_frame"]) for r in _rows(fercli("table", tmp_path / "r.h5", check=True))]
    assert picked == [survivors[i] for i in np.linspace(0, len(survivors) - 1, 5).round().astype(int)]


def test_registration_transform_maps_crops_back_exactly():
    """Landmarks mapped back through the stored transform are the tracker's own full-frame
    landmarks: their error against the truth is the one align reports."""
    clips = face_clips(lengths=(6, 5))
    out, stats = align(clips, AlignOptions())
    assert out.transform.shape == (11, 2, 3) and out.source_frame.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]
    back = map_points(invert(out.transform), out.landmarks.astype(np.float64))
    err = _error_iod(back, clips.landmarks.astype(np.float64))
    assert err.mean() * 100 == pytest.approx(stats.gt_error_iod_pct, abs=2e-3)
    # and the transform is what produced the crop: the template's eyes through it land on the eyes
    assert np.isfinite(out.face_score).all() and (out.face_box[:, 2] > out.face_box[:, 0]).all()
    m = np.array([[[2.0, 0.5, 3.0], [-0.5, 2.0, 1.0]]])
    assert np.allclose(compose(invert(m), m)[0], [[1, 0, 0], [0, 1, 0]])


def test_progress_counts_frames():
    clips = face_clips(lengths=(6, 5))
    calls = []
    align(clips, AlignOptions(), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 11) for k in range(1, 12)]


def test_trace_arrays_round_trip_select_and_validate(tmp_path, tiny_clips):
    f = len(tiny_clips.frames)
    tiny_clips.source_frame = np.arange(f) + 100
    tiny_clips.transform = np.tile(np.array([[0.5, 0, 1], [0, 0.5, 2]]), (f, 1, 1))
    tiny_clips.face_box = np.arange(4 * f, dtype=np.float32).reshape(f, 4)
    tiny_clips.face_score = np.linspace(0, 1, f).astype(np.float32)
    tiny_clips.fps = np.array([30.0, 25.0, np.nan, 30.0])
    path = str(tmp_path / "t.h5")
    artifacts.save_clips(path, tiny_clips, [])
    back, _, _ = artifacts.load_clips(path, "test")
    for name in ("source_frame", "transform", "face_box", "face_score", "fps"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tiny_clips, name))
    sub = back.select([3, 0])
    assert sub.source_frame.tolist() == list(range(112, 118)) + [100, 101, 102]
    assert sub.fps.tolist() == [30.0, 30.0]
    back.transform = back.transform[:-1]
    with pytest.raises(Exception, match="'transform' must be"):
        back.validate()


def test_merge_fills_what_an_input_does_not_trace(tiny_clips):
    from fercli.merge import merge

    traced = tiny_clips.select([0, 1])
    traced.source_frame = np.arange(len(traced.frames))
    traced.fps = np.array([30.0, 30.0])
    plain = tiny_clips.select([2])
    plain.clip_ids = np.array(["other"], dtype=object)
    out = merge([traced, plain], ["a.h5", "b.h5"])
    assert out.source_frame.tolist() == list(range(8)) + [-1] * 4
    assert out.fps[:2].tolist() == [30.0, 30.0] and np.isnan(out.fps[2])
    assert out.transform is None  # nobody recorded one: identity for unregistered frames
    assert np.allclose(out.source_transform()[0], [[1, 0, 0], [0, 1, 0]])


def test_table_of_an_untraced_aligned_artifact_leaves_coordinates_empty(tmp_path):
    """Artifacts aligned before transforms were recorded: source coordinates unknown, not wrong."""
    out, _ = align(face_clips(lengths=(4,)), AlignOptions())
    out.transform = out.source_frame = out.face_box = out.face_score = None
    artifacts.save_clips(str(tmp_path / "old.h5"), out, [])
    rows = _rows(fercli("table", tmp_path / "old.h5", check=True))
    assert len(rows) == 4 and rows[0]["x_0"] == "" and rows[0]["source_frame"] == "0" and rows[0]["status"] == "detected"


def test_table_errors_are_sentences(tmp_path, video):
    assert_user_error(fercli("table", video / "s.h5", "--format", "xlsx"), "--format")
    assert_user_error(fercli("table", video / "v.mp4"), "fercli ingest video")
    assert_user_error(fercli("table", tmp_path / "missing.h5"), "does not exist")


def test_ingest_records_the_resize_as_the_source_transform(tmp_path):
    import cv2

    from fercli.ingest import ingest_images
    from fercli.ingest.common import FrameOptions

    (tmp_path / "happy").mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "happy" / "a.png"), rng.integers(0, 255, (80, 100), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "happy" / "b.png"), rng.integers(0, 255, (40, 50), dtype=np.uint8))
    clips, _ = ingest_images(str(tmp_path), frames=FrameOptions(resize=(50, 40)))
    assert clips.source_frame.tolist() == [0, 0] and np.isnan(clips.fps).all()
    np.testing.assert_allclose(clips.transform, [[[0.5, 0, 0], [0, 0.5, 0]], [[1, 0, 0], [0, 1, 0]]])
    padded, _ = ingest_images(str(tmp_path), frames=FrameOptions(pad=True))
    np.testing.assert_allclose(padded.transform, [[[1, 0, 0], [0, 1, 0]]] * 2)  # top-left placement moves nothing
