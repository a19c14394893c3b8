"""Temporal normalisation of clips: a fixed number of frames (thesis 3.2.2, 4.2.7, 4.3.1).

Thesis 3.2.2 normalises every sequence "to a specific number of frames" (10 in
chapter 3); 4.3.1 down- or up-samples CK+ clips to 5 frames.  The first and
last frames are always kept: in CK+-style sequences they are the neutral onset
and the expression peak, the two frames the labels are about.

Positions ``t_j = j (L-1)/(N-1)``, ``j = 0..N-1``, on the input's frame axis:

* ``linear``: blend of the two neighbouring frames (rounded to uint8); landmarks
  blended with the same weights; ``face_found`` only if both neighbours had one.
* ``nearest``: the frame at ``round(t_j)`` (halves round up), so only original
  frames appear.

A clip of one frame has nothing to interpolate between and no onset/peak pair:
resampling refuses it with a sentence rather than inventing motion by repetition
(static images belong to the static CNN, not to sequence models).

``ckplus_split`` makes the three clips of 4.2.7 per sequence: neutral->peak (the
whole sequence resampled), neutral->neutral (the first ``part`` frames; 4.3.1
takes "the first and last 3 frames ... as neutral and peak") and peak->peak (the
last ``part`` frames), each resampled to N frames (so 3-frame parts are
upsampled, as 4.3.1's "downsampling or upsampling into 5 frames" says).  Each
output clip records which part it is (``segments``) and the id of the sequence
it was cut from (``sequence_ids``): the experiment protocol keeps the three clips
of a sequence together and never takes a segment's first frames for the
sequence's neutral onset (see :mod:`fercli.protocol.samples`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.progress import ProgressFn, report

METHODS = ("linear", "nearest")
#: Clip-id suffixes and kinds of the three 4.2.7 clips, in output order.
CKPLUS_PARTS = ("neutral-peak", "neutral-neutral", "peak-peak")


def sample_plan(length: int, n: int, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, w) so that output j = (1 - w[j]) * in[lo[j]] + w[j] * in[hi[j]]."""
    t = np.linspace(0.0, length - 1.0, n) if n > 1 else np.zeros(1)
    if method == "nearest":
        idx = np.minimum(np.floor(t + 0.5).astype(np.int64), length - 1)
        return idx, idx, np.zeros(n)
    lo = np.floor(t).astype(np.int64)
    lo = np.minimum(lo, length - 1)
    hi = np.minimum(lo + 1, length - 1)
    w = t - lo
    # Exact ends (linspace can land a hair off): first and last frames untouched.
    w[np.isclose(w, 0.0, atol=1e-9)] = 0.0
    return lo, hi, w


def _resample_arrays(frames: np.ndarray, landmarks: Optional[np.ndarray], found: Optional[np.ndarray], trace: dict[str, np.ndarray],
                     n: int, method: str):
    lo, hi, w = sample_plan(len(frames), n, method)
    shape = (n,) + (1,) * (frames.ndim - 1)
    wf = w.reshape(shape).astype(np.float32)
    blended = (1.0 - wf) * frames[lo].astype(np.float32) + wf * frames[hi].astype(np.float32)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    lm = None
    if landmarks is not None:
        wl = w.reshape(n, 1, 1)
        lm = ((1.0 - wl) * landmarks[lo] + wl * landmarks[hi]).astype(landmarks.dtype)
    ff = None
    if found is not None:
        ff = found[lo] & np.where(w > 0, found[hi], True)
    return out, lm, ff, _resample_trace(trace, lo, hi, w)


def _resample_trace(trace: dict[str, np.ndarray], lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Trace arrays of the output frames: the source frame (and detector score) of the
    nearer input frame (halves to the later one, as ``nearest``); the source -> frame
    transform and the face box blended with the frames' own weights, so a blended
    frame's landmarks map back to the blend of its neighbours' (exactly for
    ``nearest``, to first order for ``linear``)."""
    nearer = np.where(w < 0.5, lo, hi)
    out = {}
    for name, values in trace.items():
        if name in ("transform", "face_box"):
            wb = w.reshape((-1,) + (1,) * (values.ndim - 1))
            out[name] = ((1.0 - wb) * values[lo] + wb * values[hi]).astype(values.dtype)
        else:
            out[name] = values[nearer]
    return out


def check_input(clips: Clips, n: int, method: str, part: Optional[int] = None) -> None:
    """Refuse what no clip of ``clips`` can be resampled from (``part``: the
    ``--ckplus-split`` checks too).  Needs only the per-clip arrays and the array
    shapes, so a streaming caller checks the whole input before any work."""
    if part is not None:
        if part < 1:
            raise FercliError(f"--part must be at least 1 frame (got {part})")
        if clips.is_segmented:
            raise FercliError("these clips were already split by --ckplus-split: split the whole sequences they were cut from")
    if method not in METHODS:
        raise FercliError(f"--method must be one of {', '.join(METHODS)} (got '{method}')")
    if n < 2:
        raise FercliError(f"-n must be at least 2 so the first and last frames are kept (got {n})")
    if clips.planes or clips.histograms is not None:
        raise FercliError("these clips already carry LBP-TOP planes or histograms, which resampling would invalidate: resample before lbptop")
    if len(clips) == 0:
        raise FercliError("the input has no clips to resample")
    short = np.flatnonzero(clips.lengths < 2)
    if len(short):
        first = ", ".join(str(clips.clip_ids[i]) for i in short[:3])
        raise FercliError(f"{len(short)} clip(s) have a single frame, nothing to resample between (first: {first}); drop them or use them as static images")


def _assemble(clips: Clips, pieces: list[tuple[int, np.ndarray, Optional[np.ndarray], Optional[np.ndarray], dict]],
              labels: np.ndarray, clip_ids: np.ndarray, class_names: list[str], meta: dict,
              segments: Optional[np.ndarray] = None) -> Clips:
    owners = np.array([p[0] for p in pieces], dtype=np.int64)
    base = clips.select(owners)
    frames = np.concatenate([p[1] for p in pieces])
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([len(p[1]) for p in pieces], out=offsets[1:])
    return Clips(
        frames=frames, offsets=offsets, labels=labels, class_names=class_names, subjects=base.subjects,
        clip_ids=clip_ids, sources=base.sources,
        landmarks=np.concatenate([p[2] for p in pieces]) if clips.landmarks is not None else None,
        face_found=np.concatenate([p[3] for p in pieces]) if clips.face_found is not None else None,
        split=base.split, folds=base.folds, meta=meta, fps=base.fps, face_id=base.face_id,
        segments=segments if segments is not None else base.segments,
        # a segment of a segment still shows the same original sequence
        sequence_ids=base.sequences.copy() if segments is not None or base.sequence_ids is not None else None,
        **{name: np.concatenate([p[4][name] for p in pieces]) for name in pieces[0][4]},
    )


def _parts_of(clips: Clips, i: int):
    s, e = clips.offsets[i], clips.offsets[i + 1]
    lm = clips.landmarks[s:e] if clips.landmarks is not None else None
    ff = clips.face_found[s:e] if clips.face_found is not None else None
    trace = clips.trace(slice(s, e))
    if "source_frame" not in trace:  # an artifact from before source frames were recorded: its own frame order
        trace["source_frame"] = np.arange(e - s, dtype=np.int64)
    return clips.frames[s:e], lm, ff, trace


def resample(clips: Clips, n: int, method: str = "linear", progress: Optional[ProgressFn] = None) -> Clips:
    """Every clip to exactly ``n`` frames, first and last kept (thesis 3.2.2 / 4.3.1)."""
    check_input(clips, n, method)
    pieces = []
    for i in range(len(clips)):
        pieces.append((i, *_resample_arrays(*_parts_of(clips, i), n, method)))
        report(progress, i + 1, len(clips))
    meta = {**clips.meta, "frames_per_clip": n, "resample": {"n": n, "method": method}}
    return _assemble(clips, pieces, clips.labels.copy(), clips.clip_ids.copy(), list(clips.class_names), meta)


def ckplus_split(clips: Clips, n: int, method: str = "linear", part: int = 3, progress: Optional[ProgressFn] = None) -> Clips:
    """The three clips of thesis 4.2.7 per sequence, each ``n`` frames.

    neutral->peak keeps the sequence's label; neutral->neutral is labelled
    'neutral' (matched case-insensitively, appended to the class names if
    missing; an unlabelled sequence's neutral onset stays unlabelled, since
    nothing says it is a neutral->expression sequence); peak->peak keeps the
    sequence's label.  Clip ids get the suffixes ``/neutral-peak``,
    ``/neutral-neutral``, ``/peak-peak``; ``segments`` says which part a clip is and
    ``sequence_ids`` the sequence's id.  Parts are the first / last ``part`` frames
    (all of them if the clip is shorter).
    """
    check_input(clips, n, method, part)
    class_names = list(clips.class_names)
    lowered = [c.lower() for c in class_names]
    if "neutral" in lowered:
        neutral = lowered.index("neutral")
    else:
        class_names.append("neutral")
        neutral = len(class_names) - 1
    pieces, labels, ids, kinds = [], [], [], []
    for i in range(len(clips)):
        frames, lm, ff, trace = _parts_of(clips, i)
        k = min(part, len(frames))
        head = slice(0, k)
        tail = slice(len(frames) - k, len(frames))
        onset = neutral if clips.labels[i] >= 0 else -1
        for kind, sl, label in (("neutral-peak", slice(None), clips.labels[i]), ("neutral-neutral", head, onset),
                                ("peak-peak", tail, clips.labels[i])):
            f = frames[sl]
            pieces.append((i, *_resample_arrays(f, None if lm is None else lm[sl], None if ff is None else ff[sl],
                                                {k_: v[sl] for k_, v in trace.items()}, n, method)))
            labels.append(label)
            ids.append(f"{clips.clip_ids[i]}/{kind}")
            kinds.append(kind)
        report(progress, i + 1, len(clips))
    meta = {**clips.meta, "frames_per_clip": n, "resample": {"n": n, "method": method, "ckplus_split": True, "part": part}}
    return _assemble(clips, pieces, np.asarray(labels, dtype=np.int64), np.asarray(ids, dtype=object), class_names, meta,
                     segments=np.asarray(kinds, dtype=object))
