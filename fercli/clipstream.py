"""The per-clip stage loop shared by every clips stage (issue 19).

A stage is a function on an in-memory :class:`~fercli.artifacts.Clips` (any number of
clips) returning the clips it makes; :func:`map_clips` drives it over an artifact a
batch at a time (:meth:`~fercli.artifacts.ClipReader.batches`), appends what it returns
to the output as it goes (:func:`~fercli.artifacts.clip_writer`), reports progress and
names the clips an error comes from.  So a stage's memory is one batch plus its own
buffers, whatever the artifact's size, and its output equals the stage run on all the
clips at once wherever the stage treats clips independently (all of fercli's do).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from fercli.artifacts import Clips, ClipReader, ClipWriter, batch_bytes
from fercli.errors import FercliError
from fercli.progress import ProgressFn, report

StageFn = Callable[[Clips], Clips]


def clip_names(clips: Clips) -> str:
    """The clips of a batch, as an error message names them."""
    ids = [str(c) for c in clips.clip_ids]
    if not ids:
        return "no clips"
    return f"clip '{ids[0]}'" if len(ids) == 1 else f"clips '{ids[0]}' to '{ids[-1]}'"


def map_clips(reader: ClipReader, writer: ClipWriter, fn: StageFn, progress: Optional[ProgressFn] = None,
              index: Optional[Sequence[int] | np.ndarray] = None, max_bytes: Optional[int] = None,
              out_bytes_per_clip: int = 0) -> int:
    """Run ``fn`` over ``reader``'s clips (those of ``index``, in order) a batch at a time,
    appending its results to ``writer``; returns the number of clips read.

    ``out_bytes_per_clip``: what ``fn`` makes of one clip, when that can be more than the
    clip itself (``resample -n 1000``): a batch is then handed over in pieces whose
    output stays within the batch size too."""
    total = len(reader) if index is None else len(index)
    limit = batch_bytes() if max_bytes is None else int(max_bytes)
    per_call = max(1, limit // out_bytes_per_clip) if out_bytes_per_clip > 0 else None
    done = 0
    report(progress, 0, total)
    for positions, batch in reader.batches(index, limit):
        step = per_call or len(batch)
        for lo in range(0, len(batch), step):
            piece = batch if step >= len(batch) else batch.select(np.arange(lo, min(len(batch), lo + step)))
            try:
                out = fn(piece)
            except FercliError as exc:
                raise FercliError(f"{exc} ({clip_names(piece)} of {reader.name})") from exc
            writer.append(out)
            done += len(piece)
            report(progress, done, total)
    return done
