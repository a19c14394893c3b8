"""fercli.artifacts.clipio: clips read and written clip by clip (issue 19).

The streamed writer must give the arrays ``save_clips`` gives; the reader must keep
its batches within a byte limit and the memory budget, name a damaged clip, and
standard input must spool to disk (a full disk is one sentence, nothing left)."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from fercli import artifacts
from fercli.errors import FercliError
from tests.clip_compare import assert_same_clips


def _clips(n: int = 40, seed: int = 0, size=(24, 20)) -> artifacts.Clips:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, 255, (int(k), *size), dtype=np.uint8) for k in rng.integers(1, 30, n)]
    c = artifacts.Clips.from_sequences(seqs, rng.integers(-1, 3, n), ["anger", "happy", "sad"], [f"s{i % 7}" for i in range(n)])
    frames = len(c.frames)
    c.landmarks = rng.random((frames, 68, 2)).astype(np.float32)
    c.face_found = rng.random(frames) > 0.3
    c.folds = np.arange(n) % 5
    c.split = np.asarray([("train", "val")[i % 2] for i in range(n)], dtype=object)
    c.transform = np.tile(np.eye(2, 3), (frames, 1, 1))
    c.face_score = rng.random(frames).astype(np.float32)
    c.fps = np.full(n, 25.0)
    c.histograms = rng.random((n, 12)).astype(np.float32)
    c.planes = {"xt": rng.integers(0, 255, (n * 3, 8, 6), dtype=np.uint8)}
    c.plane_offsets = np.arange(n + 1, dtype=np.int64) * 3
    c.meta = {"align": {"size": 24}}
    return c


def test_streamed_writer_equals_the_whole_writer(tmp_path):
    c = _clips()
    artifacts.save_clips(str(tmp_path / "whole.h5"), c, [])
    with artifacts.clip_writer(str(tmp_path / "streamed.h5"), []) as writer:
        for lo in range(0, len(c), 7):
            writer.append(c.select(np.arange(lo, min(len(c), lo + 7))))
    whole = artifacts.load_clips(str(tmp_path / "whole.h5"), "test")[0]
    streamed = artifacts.load_clips(str(tmp_path / "streamed.h5"), "test")[0]
    assert_same_clips(whole, streamed)
    with h5py.File(tmp_path / "streamed.h5") as f:
        assert f["frames"].chunks[1:] == c.frames.shape[1:]  # whole frames per chunk: one frame or clip per read


def test_reader_batches_stay_within_their_bytes_and_cover_every_clip(tmp_path):
    c = _clips()
    artifacts.save_clips(str(tmp_path / "a.h5"), c, [])
    with artifacts.open_clips(str(tmp_path / "a.h5"), "test") as reader:
        limit = 20_000
        seen = []
        for index, batch in reader.batches(max_bytes=limit):
            sizes = reader.clip_bytes(index)
            assert len(index) == 1 or sizes.sum() <= limit
            assert isinstance(batch.frames, np.ndarray)
            seen.extend(index.tolist())
        assert seen == list(range(len(c)))
        with artifacts.clip_writer(str(tmp_path / "b.h5"), [], meta=reader.meta) as writer:
            for _, batch in reader.batches(index=np.arange(5, 17), max_bytes=limit):
                writer.append(batch)
    assert_same_clips(c.select(np.arange(5, 17)), artifacts.load_clips(str(tmp_path / "b.h5"), "test")[0])


def test_a_clip_in_runs_of_frames_is_the_clip(tmp_path):
    c = _clips(n=4)
    c.planes, c.plane_offsets = {}, None
    artifacts.save_clips(str(tmp_path / "a.h5"), c, [])
    with artifacts.open_clips(str(tmp_path / "a.h5"), "test") as reader:
        with artifacts.clip_writer(str(tmp_path / "b.h5"), []) as writer:
            for i in range(len(reader)):
                runs = list(reader.clip_runs(i, max_bytes=4 * 24 * 20))
                assert sum(len(r.frames) for r in runs) == c.lengths[i]
                assert all(len(r.frames) <= 4 for r in runs)
                for part in runs:
                    writer.append_part(part)
                writer.end_clip()
    assert_same_clips(c, artifacts.load_clips(str(tmp_path / "b.h5"), "test")[0])


def test_a_writer_that_fails_leaves_nothing_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous")
    c = _clips(n=6)
    with pytest.raises(FercliError, match="does not match the clips written before it"):
        with artifacts.clip_writer(str(out), []) as writer:
            writer.append(c.select([0, 1]))
            other = c.select([2])
            other.landmarks = None  # another layout half-way through
            writer.append(other)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]


def test_an_empty_stream_is_a_valid_empty_artifact(tmp_path):
    c = _clips(n=3)
    with artifacts.clip_writer(str(tmp_path / "e.h5"), []) as writer:
        writer.append(c.select(np.zeros(0, dtype=np.int64)))
    empty = artifacts.load_clips(str(tmp_path / "e.h5"), "test")[0]
    assert len(empty) == 0 and empty.frames.shape[1:] == c.frames.shape[1:]


def test_a_damaged_clip_in_the_middle_is_named(tmp_path):
    c = _clips(n=12)
    artifacts.save_clips(str(tmp_path / "a.h5"), c, [])
    with h5py.File(tmp_path / "a.h5", "r+") as f:
        lo = int(c.offsets[7])
        f["landmarks"][lo] = np.inf
    with artifacts.open_clips(str(tmp_path / "a.h5"), "test") as reader:
        with pytest.raises(FercliError) as err:
            for _ in reader.batches(max_bytes=10**9):
                pass
    text = str(err.value)
    assert "'landmarks'" in text and "non-finite" in text and f"clip '{c.clip_ids[7]}'" in text


def test_non_finite_histograms_are_refused_as_they_are_read(tmp_path):
    c = _clips(n=5)
    c.histograms[2, 3] = np.nan
    with pytest.raises(FercliError, match="'histograms' holds 1 non-finite"):
        artifacts.save_clips(str(tmp_path / "a.h5"), c, [])
    assert not (tmp_path / "a.h5").exists()


def test_batches_are_limited_by_the_memory_budget(tmp_path, monkeypatch):
    c = _clips(n=10, size=(64, 64))
    artifacts.save_clips(str(tmp_path / "a.h5"), c, [])
    monkeypatch.setenv("FERCLI_MEMORY_BUDGET", "4M")
    assert artifacts.batch_bytes() == 1 << 20  # a quarter of the budget
    with artifacts.open_clips(str(tmp_path / "a.h5"), "test") as reader:
        monkeypatch.setenv("FERCLI_MEMORY_BUDGET", "100k")
        with pytest.raises(FercliError, match="budget"):
            list(reader.batches())


def _fercli(*args, stdin=None, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "fercli", *args], stdin=stdin, capture_output=True, env=env, cwd=cwd)


def test_standard_input_is_spooled_to_a_file_not_memory(tmp_path):
    c = _clips(n=30, size=(48, 48))
    artifacts.save_clips(str(tmp_path / "a.h5"), c, [])
    size = (tmp_path / "a.h5").stat().st_size
    env = {**os.environ, "FERCLI_MEMORY_BUDGET": str(size // 2), "TMPDIR": str(tmp_path / "spool")}
    (tmp_path / "spool").mkdir()
    with open(tmp_path / "a.h5", "rb") as src:
        proc = _fercli("info", "-", stdin=src, env=env)
    # Reading the whole file into memory would be over the budget; a spooled file is not.
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"clips" in proc.stdout
    assert list((tmp_path / "spool").iterdir()) == []


def test_closed_standard_input_is_one_sentence(tmp_path):
    proc = subprocess.run(f"exec {sys.executable} -m fercli info - <&-", shell=True, capture_output=True)
    assert proc.returncode == 2
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fercli: standard input is closed"), err


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_while_spooling_fails_clean(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        artifacts.save_clips(str(tmp_path / "a.h5"), _clips(n=30, size=(48, 48)), [])
        assert (tmp_path / "a.h5").stat().st_size > 64 << 10
        with open(tmp_path / "a.h5", "rb") as src:
            proc = _fercli("info", "-", stdin=src, env={**os.environ, "TMPDIR": str(disk)})
        assert proc.returncode == 2
        err = proc.stderr.decode().strip().splitlines()
        assert len(err) == 1 and "cannot spool standard input" in err[0] and "the disk is full" in err[0], err
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
