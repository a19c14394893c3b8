"""`fercli align` streamed clip by clip (issue 19): the same arrays as `align()` of all
the clips in memory, batch by batch, with workers, shards, every face, and for a clip
longer than a batch (tracked in runs of frames, cropped in a second pass)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import fercli
from face_video import face_clips

from fercli import artifacts
from fercli.align import AlignOptions, align
from fercli.align_stream import align_artifact


@pytest.fixture(scope="module")
def clips_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "faces.h5"
    artifacts.save_clips(str(path), face_clips(lengths=(4, 3, 5, 2, 3), blank={1: [0, 1, 2], 2: [2]}), [])
    return path


def _loaded(path) -> artifacts.Clips:
    return artifacts.load_clips(str(path), "test")[0]


def _same(a: artifacts.Clips, b: artifacts.Clips) -> None:
    for spec in artifacts.CLIP_FIELDS:
        x, y = getattr(a, spec.name), getattr(b, spec.name)
        assert (x is None) == (y is None), spec.name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, spec.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), spec.name
    assert np.array_equal(a.offsets, b.offsets) and a.class_names == b.class_names and a.meta == b.meta


def _in_memory(path, tmp_path, options: AlignOptions, shard=None):
    clips = _loaded(path)
    out, stats = align(clips, options, shard)
    artifacts.save_clips(str(tmp_path / "memory.h5"), out, [])
    return _loaded(tmp_path / "memory.h5"), stats


def _streamed(path, tmp_path, options: AlignOptions, max_bytes: int, index=None):
    with artifacts.open_clips(str(path), "align") as reader:
        from fercli.align import aligned_meta

        with artifacts.clip_writer(str(tmp_path / "streamed.h5"), [], aligned_meta(reader.meta, options)) as writer:
            stats = align_artifact(reader, writer, options, index, max_bytes=max_bytes)
    return _loaded(tmp_path / "streamed.h5"), stats


ONE_FRAME = 200 * 200 * 3


@pytest.mark.parametrize("options, max_bytes", [
    (AlignOptions(), 4 * ONE_FRAME),                       # batches of one or two clips
    (AlignOptions(missing="drop", workers=2), 6 * ONE_FRAME),  # the pool lives across batches
    (AlignOptions(missing="interpolate"), 3 * ONE_FRAME),  # clips of 4 and 5 frames: longer than a batch
])
def test_streamed_align_equals_align_in_memory(clips_file, tmp_path, options, max_bytes):
    memory, mstats = _in_memory(clips_file, tmp_path, options)
    streamed, sstats = _streamed(clips_file, tmp_path, options, max_bytes)
    _same(memory, streamed)
    assert sstats == mstats


def test_a_clip_longer_than_a_batch_is_aligned_in_runs_as_in_memory(clips_file, tmp_path):
    # Runs of 2 frames: every clip goes through the two passes, each face written in parts.
    for options in (AlignOptions(), AlignOptions(missing="drop", transform="auto"), AlignOptions(align=False, gray=False)):
        memory, mstats = _in_memory(clips_file, tmp_path, options)
        streamed, sstats = _streamed(clips_file, tmp_path, options, 2 * ONE_FRAME)
        _same(memory, streamed)
        assert sstats == mstats


@pytest.fixture(scope="module")
def group_file(tmp_path_factory):
    """Two subjects side by side in one clip, and a second clip of them."""
    from fercli.synth import synthesize

    group = synthesize(size=(480, 180), faces_per_frame=2, subjects=2, classes=["happy"], frames=(5, 5), seed=5, motion="mild")
    path = tmp_path_factory.mktemp("group") / "group.h5"
    artifacts.save_clips(str(path), group, [])
    return path


def test_every_face_streamed_and_in_runs_equals_in_memory(group_file, tmp_path):
    options = AlignOptions(faces="all")
    memory, mstats = _in_memory(group_file, tmp_path, options)
    assert len(memory) >= 2
    frame = 480 * 180 * 3
    for max_bytes in (6 * frame, 2 * frame):  # one clip per batch; runs of 2 frames
        streamed, sstats = _streamed(group_file, tmp_path, options, max_bytes)
        _same(memory, streamed)
        assert sstats == mstats


def test_cli_shard_and_workers_stream_what_align_gives(clips_file, tmp_path):
    memory, _ = _in_memory(clips_file, tmp_path, AlignOptions(), shard=(1, 2))
    out = tmp_path / "shard.h5"
    proc = fercli("align", clips_file, "--shard", "1/2", "--workers", "2", "-o", out, check=True,
                  env={"FERCLI_MEMORY_BUDGET": "1M"})  # batches of 256 KiB: one clip each, the longer ones in runs
    assert b"faces found" in proc.stderr
    _same(memory, _loaded(out))


def test_cli_aligns_an_artifact_larger_than_the_memory_budget(tmp_path):
    # 80 frames of 640x480 colour: 70 MiB decoded, more than the 64 MiB budget; the
    # longest clip is more than a batch (16 MiB), aligned in runs.
    clips = face_clips(lengths=(16, 16, 16, 32), size=(640, 480))
    assert clips.frames.nbytes > 64 << 20
    artifacts.save_clips(str(tmp_path / "big.h5"), clips, [])
    out = tmp_path / "aligned.h5"
    fercli("align", tmp_path / "big.h5", "--size", "32", "-o", out, check=True, env={"FERCLI_MEMORY_BUDGET": "64M"})
    memory, _ = align(clips, AlignOptions(size=32))
    streamed = _loaded(out)
    assert np.array_equal(streamed.frames, memory.frames) and np.array_equal(streamed.landmarks, memory.landmarks)
    assert np.array_equal(streamed.offsets, memory.offsets)
