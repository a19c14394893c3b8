"""split, merge, table, show and info stream (issue 19): streamed output equals the in-memory
library functions' output, array for array, and artifacts larger than the memory budget
(FERCLI_MEMORY_BUDGET=64M) go through."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from fercli import split as split_stage
from fercli import tables
from fercli.artifacts import Clips, load_clips, open_clips, save_clips
from fercli.merge import merge
from tests.conftest import fercli
from tests.test_merge import assert_same_arrays

#: Batches of a few clips each: the clips below are ~40 KB, batches at most 64 KiB + change.
SMALL = {"FERCLI_MEMORY_BUDGET": "256k"}


def traced_clips(rng, n, prefix="c", size=(48, 40), classes=("anger", "happy", "sad"), trace=True, **extra) -> Clips:
    lengths = [int(rng.integers(8, 20)) for _ in range(n)]
    seqs = [rng.integers(0, 256, size=(k, *size), dtype=np.uint8) for k in lengths]
    f = int(sum(lengths))
    fields = {}
    if trace:
        transform = np.zeros((f, 2, 3))
        transform[:, 0, 0] = transform[:, 1, 1] = rng.uniform(0.5, 2, f)
        transform[:, :, 2] = rng.uniform(-5, 5, (f, 2))
        fields = dict(landmarks=rng.uniform(0, 40, (f, 68, 2)).astype(np.float32), face_found=rng.random(f) > 0.2,
                      source_frame=np.concatenate([np.arange(k) * 2 for k in lengths]), transform=transform,
                      face_box=rng.uniform(0, 100, (f, 4)).astype(np.float32), face_score=rng.random(f).astype(np.float32),
                      fps=np.full(n, 25.0), face_id=np.arange(n) % 2)
    c = Clips.from_sequences(seqs, [i % len(classes) for i in range(n)], list(classes), [f"S{i // 3}" for i in range(n)],
                             clip_ids=[f"{prefix}{i}" for i in range(n)], sources=[f"{prefix}.mp4"] * n, **fields, **extra)
    c.meta = {"dataset": "synth", "align": {"size": 48}} if trace else {"dataset": "other", "align": {"size": 48}}
    return c


def assert_same(a_path, b_path):
    """Every dataset equal (dtype, shape, bytes), and the meta."""
    assert_same_arrays(a_path, b_path)
    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        assert json.loads(a.attrs["fercli_meta"]) == json.loads(b.attrs["fercli_meta"])


def several_batches(path) -> int:
    with open_clips(str(path), "test") as reader:
        return sum(1 for _ in reader.batches(max_bytes=64 << 10))


def test_merge_streamed_equals_in_memory_merge(tmp_path):
    rng = np.random.default_rng(1)
    a = traced_clips(rng, 9, "a", folds=np.arange(9) % 3, split=np.asarray(["train"] * 9, dtype=object))
    b = traced_clips(rng, 7, "b", trace=False, classes=("Happy", "neutral"),
                     segments=np.asarray(["neutral-peak"] * 7, dtype=object), sequence_ids=np.asarray([f"seq{i}" for i in range(7)], dtype=object))
    b.landmarks = rng.uniform(0, 40, (len(b.frames), 68, 2)).astype(np.float32)
    b.face_found = np.ones(len(b.frames), bool)
    b.meta = dict(a.meta, dataset="other")
    for name, clips in (("a.h5", a), ("b.h5", b)):
        save_clips(str(tmp_path / name), clips, [])
    assert several_batches(tmp_path / "a.h5") > 2
    proc = fercli("merge", tmp_path / "a.h5", tmp_path / "b.h5", "--prefix-ids", "-o", tmp_path / "streamed.h5", env=SMALL)
    assert proc.returncode == 0, proc.stderr.decode()
    parts = [load_clips(str(tmp_path / n), "test")[0] for n in ("a.h5", "b.h5")]
    save_clips(str(tmp_path / "reference.h5"), merge(parts, ["a.h5", "b.h5"], prefix_ids=True), [])
    assert_same(tmp_path / "streamed.h5", tmp_path / "reference.h5")
    # The rules, spelled out: classes joined by name, b's labels remapped, fields b lacks filled.
    got = load_clips(str(tmp_path / "streamed.h5"), "test")[0]
    assert got.class_names == ["anger", "happy", "sad", "neutral"]
    assert np.array_equal(got.labels[9:], [[1, 3][i % 2] for i in range(7)])
    assert list(got.clip_ids[:2]) == ["a:a0", "a:a1"] and list(got.sequence_ids[:1]) == ["a:a0"] and got.sequence_ids[9] == "b:seq0"
    assert np.array_equal(got.folds, np.r_[np.arange(9) % 3, [-1] * 7]) and list(got.split[9:]) == [""] * 7
    assert list(got.segments[:9]) == [""] * 9
    fa = len(a.frames)
    assert np.array_equal(got.source_frame[fa:], np.full(len(b.frames), -1)) and np.isnan(got.face_box[fa:]).all()
    assert np.isnan(got.transform[fa:]).all()  # b was aligned without recording its transforms: unknown
    assert np.isnan(got.fps[9:]).all() and np.array_equal(got.face_id[9:], np.zeros(7))
    assert np.array_equal(got.frames, np.concatenate([a.frames, b.frames]))


def test_split_streamed_equals_in_memory_split(tmp_path):
    rng = np.random.default_rng(2)
    save_clips(str(tmp_path / "in.h5"), traced_clips(rng, 15), [])
    assert several_batches(tmp_path / "in.h5") > 2
    proc = fercli("split", tmp_path / "in.h5", "--folds", "3", "--seed", "4", "-o", tmp_path / "streamed.h5", env=SMALL)
    assert proc.returncode == 0, proc.stderr.decode()
    clips = load_clips(str(tmp_path / "in.h5"), "test")[0]
    save_clips(str(tmp_path / "reference.h5"), split_stage.split(clips, 3, "subject", 4), [])
    assert_same(tmp_path / "streamed.h5", tmp_path / "reference.h5")


def test_table_in_pieces_equals_whole(tmp_path):
    rng = np.random.default_rng(3)
    clips = traced_clips(rng, 5)
    whole = list(tables.frame_table(clips, piece=10**9)[1])
    assert len(whole) == len(clips.frames)
    assert list(tables.frame_table(clips, piece=7)[1]) == whole
    save_clips(str(tmp_path / "c.h5"), clips, [])
    with open_clips(str(tmp_path / "c.h5"), "test") as reader:  # lazy: read from the file, piece by piece
        assert list(tables.frame_table(reader.header, piece=7)[1]) == whole
    bare = traced_clips(rng, 3, trace=False)  # no trace: source_frame counts within each clip
    rows = list(tables.frame_table(bare, piece=4)[1])
    assert [r[9] for r in rows] == [t for k in bare.lengths for t in range(k)]


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A clips artifact of 80 MB of frames decoded (a few hundred KB on disk)."""
    path = tmp_path_factory.mktemp("large") / "large.h5"
    n, length, side = 50, 28, 240
    frames = np.zeros((n * length, side, side), np.uint8)
    frames[:, ::16, ::16] = 7
    clips = Clips(frames=frames, offsets=np.arange(n + 1, dtype=np.int64) * length, labels=np.arange(n) % 2,
                  class_names=["happy", "sad"], subjects=np.asarray([f"S{i % 10}" for i in range(n)], dtype=object),
                  clip_ids=np.asarray([f"c{i}" for i in range(n)], dtype=object), sources=np.asarray(["v.mp4"] * n, dtype=object),
                  face_found=np.ones(n * length, bool), meta={"dataset": "synth"})
    save_clips(str(path), clips, [])
    assert frames.nbytes > 64 << 20
    return path


BUDGET = {"FERCLI_MEMORY_BUDGET": "64M"}


def test_split_and_merge_of_an_artifact_larger_than_the_budget(large, tmp_path):
    proc = fercli("split", large, "--folds", "5", "-o", tmp_path / "split.h5", env=BUDGET)
    assert proc.returncode == 0, proc.stderr.decode()
    proc = fercli("merge", large, tmp_path / "split.h5", "--prefix-ids", "-o", tmp_path / "merged.h5", env=BUDGET)
    assert proc.returncode == 0, proc.stderr.decode()
    with h5py.File(tmp_path / "merged.h5") as f, h5py.File(large) as g:
        assert f["frames"].shape[0] == 2 * g["frames"].shape[0]
        assert np.array_equal(f["frames"][-1], g["frames"][-1])
        assert np.array_equal(f["fold"][:50], np.full(50, -1))
        assert set(f["fold"][50:].tolist()) == set(range(5))


def test_table_info_show_of_an_artifact_larger_than_the_budget(large, tmp_path):
    proc = fercli("table", large, "-o", tmp_path / "t.csv", env=BUDGET)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 50 * 28 + 1
    proc = fercli("info", large, "--json", env=BUDGET)
    assert proc.returncode == 0, proc.stderr.decode()
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 50 * 28 and summary["face_found_rate"] == 1.0
    proc = fercli("show", large, "--clips", "2", "--frames", "3", "-o", tmp_path / "sheet.png", env=BUDGET)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "sheet.png").stat().st_size > 1000


@pytest.mark.parametrize("stage", ["split", "merge"])
def test_a_damaged_clip_mid_stream_leaves_no_output_and_is_named(tmp_path, stage):
    rng = np.random.default_rng(5)
    clips = traced_clips(rng, 12)
    save_clips(str(tmp_path / "in.h5"), clips, [])
    with h5py.File(tmp_path / "in.h5", "r+") as f:  # NaN landmarks in clip c7 only, found when it is read
        lm = f["landmarks"]
        lm[int(clips.offsets[7])] = np.nan
    args = ["--folds", "2"] if stage == "split" else []
    proc = fercli(stage, tmp_path / "in.h5", *args, "-o", tmp_path / "out.h5", env=SMALL)
    assert proc.returncode == 2 and "c7" in proc.stderr.decode() and "Traceback" not in proc.stderr.decode(), proc.stderr.decode()
    assert not (tmp_path / "out.h5").exists()
