"""`fercli align` over an artifact clip by clip (thesis 3.2.2; issue 19).

Memory is one batch of clips (:meth:`~fercli.artifacts.ClipReader.batches`) plus the
crops, whatever the artifact's size: the batches go through
:func:`fercli.align.align_batches` (one worker pool for the whole run) and each
batch's aligned clips are appended to the output as they come.  A clip larger than
a batch (an hour of video as one clip) is read in runs of frames twice: once to
track its faces through one tracker (the per-frame results are small), once to cut
the crops, written to the output run by run.  The output equals
:func:`fercli.align.align` of all the clips at once.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from fercli.align import (AlignOptions, AlignStats, _prepared, align_batches, assemble, check_colour, check_models, cut_crops,
                          face_plans, frame_ticker, no_face, source_video_size, track_frames)
from fercli.artifacts import ClipReader, ClipWriter, batch_bytes
from fercli.progress import ProgressFn
from fercli.tracking import make_tracker


def align_artifact(reader: ClipReader, writer: ClipWriter, options: AlignOptions, index: Optional[np.ndarray] = None,
                   progress: Optional[ProgressFn] = None, max_bytes: Optional[int] = None) -> AlignStats:
    """Align clips ``index`` (default all) of ``reader`` into ``writer``, in order;
    ``max_bytes``: the bulk bytes of one batch (default :func:`batch_bytes`)."""
    options.check()
    check_models(options)
    index = np.arange(len(reader)) if index is None else np.asarray(index, dtype=np.int64)
    stats = AlignStats(clips_in=len(index), frames_in=int(reader.header.lengths[index].sum()))
    check_colour(tuple(reader.header.frames.shape), options)  # before any work
    limit = batch_bytes() if max_bytes is None else int(max_bytes)
    tick = frame_ticker(progress, stats.frames_in)
    long = np.flatnonzero(reader.clip_bytes(index) > limit)
    # Stretches of clips that fit a batch (one worker pool each: one in the usual
    # case), split by the clips longer than a batch.
    start = 0
    for stop in [*long.tolist(), len(index)]:
        if stop > start:
            stretch = index[start:stop]
            for out in align_batches((batch for _, batch in reader.batches(stretch, limit)), options, stats, len(stretch), tick):
                writer.append(out)
        if stop < len(index):
            _align_long(reader, writer, int(index[stop]), options, stats, limit, tick)
        start = stop + 1
    stats.check_found()
    return stats


def _align_long(reader: ClipReader, writer: ClipWriter, i: int, options: AlignOptions, stats: AlignStats,
                limit: int, tick) -> None:
    """Clip ``i``, longer than a batch: tracked in one pass over its runs of frames
    (through one tracker, as :func:`fercli.align.align_clip` / ``align_faces`` do),
    its crops cut in a second pass per face and written run by run."""
    truth_runs: list[np.ndarray] = []

    def frames() -> Iterator[np.ndarray]:
        for part in reader.clip_runs(i, limit):
            part = _prepared(part, options)
            if part.landmarks is not None:
                truth_runs.append(part.landmarks)
            yield from part.frames

    per_frame, detections = track_frames(frames(), make_tracker(options), lambda: tick(1))
    truth = np.concatenate(truth_runs) if truth_runs else None
    plans = face_plans(per_frame, options, detections, truth)
    if not plans:
        stats.count(str(reader.header.clip_ids[i]), [no_face(len(per_frame), detections)], options)
        return
    del per_frame
    stats.count(str(reader.header.clip_ids[i]), [p.result for p in plans], options, dropped=not any(p.found.any() for p in plans))
    for plan in plans:
        if plan.found.any():
            _write_crops(reader, writer, i, plan, options, stats, limit)


def _write_crops(reader: ClipReader, writer: ClipWriter, i: int, plan, options: AlignOptions, stats: AlignStats,
                 limit: int) -> None:
    """One face of long clip ``i``: its crops cut run by run, appended as parts of one clip."""
    start, source_size = 0, None
    for part in reader.clip_runs(i, limit):
        part = _prepared(part, options)
        result = cut_crops(part.frames, plan, options, start)
        if result.frames is not None:
            if source_size is None:  # the source video's size at the face's first frame, as in memory
                source_size = source_video_size(part.source_transform()[result.kept[0]], part.frames.shape)
            writer.append_part(assemble(part, np.zeros(1, np.int64), [result], options, start, source_size))
            stats.frames_out += len(result.frames)
        start += len(part.frames)
    writer.end_clip()
    stats.clips_out += 1
