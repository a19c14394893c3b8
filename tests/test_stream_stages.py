"""resample and lbptop stream (issue 19): under a memory budget far smaller than the
artifact they run batch by batch, and every array equals the stage run in memory on
all the clips at once."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from fercli import artifacts, lbptop, temporal
from tests.clip_compare import assert_same_clips


def _big(path, n=24, frames=(14, 30), size=(96, 96), seed=1):
    """Clips whose frames are larger than the budget the tests give (compressible noise
    over a gradient keeps the file small)."""
    rng = np.random.default_rng(seed)
    base = np.add.outer(np.arange(size[0]), np.arange(size[1])).astype(np.uint8)
    seqs = [(base[None] + rng.integers(0, 6, (int(k), *size))).astype(np.uint8) for k in rng.integers(*frames, n)]
    c = artifacts.Clips.from_sequences(seqs, rng.integers(0, 3, n), ["anger", "happy", "sad"], [f"s{i % 5}" for i in range(n)])
    c.landmarks = rng.random((len(c.frames), 68, 2)).astype(np.float32) * 90
    c.source_frame = np.concatenate([np.arange(len(s)) for s in seqs]).astype(np.int64)
    artifacts.save_clips(str(path), c, [])
    return c


def _run(tmp_path, *args, budget="1M"):
    env = {**os.environ, "FERCLI_MEMORY_BUDGET": budget, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "fercli", *args], cwd=tmp_path, capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


def _load(path):
    return artifacts.load_clips(str(path), "test")[0]


@pytest.mark.parametrize("split", [False, True])
def test_resample_streams_and_equals_the_in_memory_stage(tmp_path, split):
    clips = _big(tmp_path / "c.h5")
    assert clips.frames.nbytes > 4 << 20  # four times the budget below
    args = ["resample", "c.h5", "-n", "10", "-o", "r.h5", *(["--ckplus-split"] if split else [])]
    _run(tmp_path, *args)
    want = temporal.ckplus_split(clips, 10) if split else temporal.resample(clips, 10)
    assert_same_clips(want, _load(tmp_path / "r.h5"))


def test_lbptop_streams_and_equals_the_in_memory_stage_whole_and_sharded(tmp_path):
    clips = temporal.resample(_big(tmp_path / "c.h5"), 10)
    artifacts.save_clips(str(tmp_path / "r.h5"), clips, [])
    _run(tmp_path, "lbptop", "r.h5", "--histogram", "-o", "l.h5")
    want = lbptop.lbp_top(clips, histogram=True)
    assert_same_clips(want, _load(tmp_path / "l.h5"))
    _run(tmp_path, "lbptop", "r.h5", "--histogram", "--shard", "1/3", "-o", "l1.h5")
    assert_same_clips(want.select(artifacts.shard_indices(len(clips), (1, 3))), _load(tmp_path / "l1.h5"))


def test_a_refused_input_is_refused_before_any_clip_is_coded(tmp_path):
    clips = _big(tmp_path / "c.h5", n=6)
    short = clips.select([0, 1, 2])
    short.frames, short.offsets = short.frames[:3], np.asarray([0, 1, 2, 3])
    short.landmarks, short.source_frame = short.landmarks[:3], short.source_frame[:3]
    artifacts.save_clips(str(tmp_path / "s.h5"), short, [])
    proc = subprocess.run([sys.executable, "-m", "fercli", "lbptop", "s.h5", "-o", "l.h5"], cwd=tmp_path, capture_output=True)
    assert proc.returncode == 2
    assert "3 clip(s) have fewer than the 3 frames LBP-TOP needs" in proc.stderr.decode()
    assert not (tmp_path / "l.h5").exists()


def test_a_damaged_clip_in_the_middle_of_a_stream_leaves_no_output_and_is_named(tmp_path):
    import h5py

    clips = _big(tmp_path / "c.h5")
    victim = 13
    row = int(clips.offsets[victim]) + 1
    with h5py.File(tmp_path / "c.h5", "r") as f:
        ds = f["frames"]
        info = next(ds.id.get_chunk_info(k) for k in range(ds.id.get_num_chunks())
                    if ds.id.get_chunk_info(k).chunk_offset[0] <= row < ds.id.get_chunk_info(k).chunk_offset[0] + ds.chunks[0])
    with open(tmp_path / "c.h5", "r+b") as fh:  # garbage in the middle of one compressed chunk
        fh.seek(info.byte_offset + info.size // 3)
        fh.write(b"\xff\x00garbage\x13" * 8)
    (tmp_path / "r.h5").write_bytes(b"previous")
    proc = subprocess.run([sys.executable, "-m", "fercli", "resample", "c.h5", "-n", "10", "-o", "r.h5"], cwd=tmp_path,
                          capture_output=True, env={**os.environ, "FERCLI_MEMORY_BUDGET": "1M"})
    assert proc.returncode == 2, proc.stderr.decode()
    lines = proc.stderr.decode().strip().splitlines()
    # The first clip whose frames are in the damaged chunk is the one named.
    first = int(np.searchsorted(clips.offsets, info.chunk_offset[0], side="right")) - 1
    assert len(lines) == 1 and "damaged" in lines[0] and f"clip '{clips.clip_ids[first]}', number {first} of" in lines[0], lines
    assert (tmp_path / "r.h5").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5", "r.h5"]
