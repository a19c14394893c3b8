"""Face registration (thesis 3.2.2) and the detector + tracker shared with ``live``.

Thesis 3.2.2 locates 68 landmarks, takes "the three landmark points of eyes and
nose" and registers each face "to an average face in an affine transformation",
then keeps "a fixed rectangle around the average face" resized to 64x64 (96x96
in chapter 4, 4.2.7/4.3.1).  Here:

* landmarks: dlib's 68-point shape predictor (an ensemble-of-regression-trees
  model standing in for the thesis's ASM; same 68-point iBUG layout);
* registration points: both eye centres (mean of each eye's six points) and the
  nose tip (point 30), mapped onto :data:`fercli.faces.MEAN_FACE_68`'s;
* transform: ``affine`` (exact 3-point ``cv2.getAffineTransform``, the thesis's
  choice) or ``similarity`` (least squares rotation + uniform scale: never shears
  an expression, at the price of not matching all three points exactly);
* crop: a square of :data:`CROP_SIDE` = 2.6 inter-ocular distances centred at
  (0, :data:`CROP_CENTRE_Y` = 0.7) in mean-face units.  The mean face spans x in
  [-1.07, 1.07] and y from -0.32 (brows) to 1.73 (chin), so the crop keeps about
  0.23 IOD of margin left/right, 0.27 below the chin and 0.28 above the brows
  (part of the forehead): the whole face incl. chin and brows is inside, little
  background.  At 64 px the eyes land at (19.7, 14.8) and (44.3, 14.8).

``no_align`` (chapter 4's unaligned mode, 4.2.7/4.3.4) crops the detector's box
instead, made square and enlarged by :data:`BOX_SCALE`, with no rotation.

Video: faces are found and followed by :mod:`fercli.tracking` (detector now and
then, landmark predictor and optical flow in between); the affines live in
:mod:`fercli.geometry`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from fercli import faces, tracking_options
from fercli.artifacts import Clips, shard_indices
from fercli.geometry import (BOX_SCALE, CROP_CENTRE_Y, CROP_SIDE, apply_matrix, box_matrix, compose, invert,
                             map_points, nose_offset, registration_matrix)
from fercli.errors import FercliError
from fercli.images import frame_to_gray as to_gray
from fercli.progress import ProgressFn, report
from fercli.tracking import FaceState, FaceTracker, MultiFaceTracker, make_tracker
from fercli.tracking_options import SIZE, TRACKER_OPTIONS

MISSING_MODES = ("hold", "interpolate", "drop")
TRANSFORMS = ("affine", "similarity", "auto")
#: ``--transform auto`` registers a clip by similarity when its face's median
#: :func:`nose_offset` exceeds this (inter-ocular distances; ~15 degrees of yaw):
#: the affine would shear that much to put the nose tip on the template's.
AUTO_MAX_NOSE_OFFSET = 0.15
#: ``--faces``: the most confident face per clip, or every face as a clip of its own.
FACE_MODES = ("best", "all")


@dataclass
class AlignOptions:
    size: int = 64
    gray: bool = True
    align: bool = True
    transform: str = "affine"
    detector: str = "hog"
    detector_model: Optional[str] = None
    detector_config: Optional[str] = None
    predictor: Optional[str] = None
    upsample: int = 0
    detect_width: int = 320
    redetect_every: int = 10
    predict_every: int = 3
    faces: str = "best"
    missing: str = "hold"
    workers: int = 1
    focal: Optional[float] = None            # head pose: the camera's focal length in source pixels (None: OpenFace's)

    def check(self) -> None:
        tracking_options.check(self, (SIZE, *TRACKER_OPTIONS))
        if self.missing not in MISSING_MODES:
            raise FercliError(f"--missing must be one of {', '.join(MISSING_MODES)} (got '{self.missing}')")
        if self.transform not in TRANSFORMS:
            raise FercliError(f"--transform must be one of {', '.join(TRANSFORMS)} (got '{self.transform}')")
        if self.faces not in FACE_MODES:
            raise FercliError(f"--faces must be one of {', '.join(FACE_MODES)} (got '{self.faces}')")
        if self.workers < 1:
            raise FercliError(f"--workers must be at least 1 (got {self.workers})")
        if self.focal is not None and not 1.0 <= self.focal <= 1e6:
            raise FercliError(f"--focal must be between 1 and 1000000 pixels (got {self.focal})")

    def parameters(self) -> dict:
        p = dict(self.__dict__)
        p.pop("workers")  # does not change the output
        p.update(crop_side=CROP_SIDE, crop_centre_y=CROP_CENTRE_Y, box_scale=BOX_SCALE)
        return p


# --------------------------------------------------------------------------- one clip


@dataclass
class ClipResult:
    frames: Optional[np.ndarray]       # (T', S, S[, 3]) or None when no face at all
    landmarks: Optional[np.ndarray]    # (T', 68, 2) crop coordinates
    face_found: Optional[np.ndarray]   # (T',)
    kept: Optional[np.ndarray]         # indices of the input frames kept
    found: int = 0
    missing: int = 0
    detections: int = 0
    gt_error: Optional[float] = None   # mean landmark error vs input landmarks, % IOD
    transforms: Optional[np.ndarray] = None  # (T', 2, 3) input-frame -> crop affines (registration)
    boxes: Optional[np.ndarray] = None       # (T', 4) face box x0, y0, x1, y1 in input-frame pixels
    scores: Optional[np.ndarray] = None      # (T',) detector score, NaN where no face was found
    face_id: int = 0                         # which face of the clip (``--faces all``)
    transform: str = ""                      # the registration used (``--transform auto`` picks per clip)


def _fill(values: list[Optional[np.ndarray]], found: np.ndarray, mode: str) -> list[np.ndarray]:
    """Give every missing frame the previous found frame's value (hold) or the linear
    blend of its found neighbours (interpolate); frames before the first found one
    take the first found value (there is nothing earlier to hold)."""
    idx = np.flatnonzero(found)
    out = list(values)
    for t in np.flatnonzero(~found):
        after = idx[np.searchsorted(idx, t)] if np.searchsorted(idx, t) < len(idx) else None
        before = idx[np.searchsorted(idx, t) - 1] if np.searchsorted(idx, t) > 0 else None
        if before is None:
            out[t] = values[after]
        elif after is None or mode == "hold":
            out[t] = values[before]
        else:
            w = (t - before) / (after - before)
            out[t] = (1 - w) * values[before] + w * values[after]
    return out


def track_frames(frames: Iterable[np.ndarray], tracker, on_frame: Optional[Callable[[], None]] = None) -> tuple[list, int]:
    """The tracker's output for each frame of one clip, from a reset tracker, and how
    many frames the detector ran on.  ``on_frame`` is called after each tracked frame
    (progress on long videos)."""
    tracker.reset()
    before = tracker.detections
    per_frame = []
    for f in frames:
        per_frame.append(tracker(f))
        if on_frame is not None:
            on_frame()
    return per_frame, tracker.detections - before


def face_plans(per_frame: list, options: AlignOptions, detections: int, truth: Optional[np.ndarray] = None) -> list[Registration]:
    """The registration of each face of one clip from the tracker's per-frame output:
    one face (``--faces best``: a FaceState per frame) or every face (``--faces all``:
    a list of FaceStates per frame), each spanning the frames from its first to its
    last appearance; none when no face was ever seen.  ``truth`` (one face's
    landmarks, as synth stores) is compared with the face it lies on."""
    if options.faces != "all":
        return [plan_registration(per_frame, options, detections, truth)]
    by_face = [{s.face_id: s for s in states} for states in per_frame]
    ids = sorted({fid for states in by_face for fid in states})
    has_truth = truth is not None and truth.shape == (len(per_frame), 68, 2)
    owner = _truth_owner(by_face, truth) if has_truth and ids else None
    plans = []
    for fid in ids:
        seen = [t for t, states in enumerate(by_face) if fid in states]
        plan = plan_registration([states.get(fid, FaceState(False)) for states in by_face], options,
                                 detections if fid == ids[0] else 0, truth if owner == fid else None, span=(seen[0], seen[-1]))
        plan.result.face_id = fid
        plans.append(plan)
    return plans


def no_face(frames: int, detections: int) -> ClipResult:
    """The result of a clip in which no face was ever seen (``--faces all``)."""
    return ClipResult(None, None, None, None, 0, frames, detections)


def align_clip(frames: np.ndarray, options: AlignOptions, tracker: FaceTracker, truth: Optional[np.ndarray] = None,
               on_frame: Optional[Callable[[], None]] = None) -> ClipResult:
    """Track, register and crop one clip (thesis 3.2.2); see the module docstring.
    ``on_frame`` is called after each tracked frame (progress on long videos)."""
    states, detections = track_frames(frames, tracker, on_frame)
    return register_clip(frames, states, options, detections, truth)


def align_faces(frames: np.ndarray, options: AlignOptions, tracker: "MultiFaceTracker", truth: Optional[np.ndarray] = None,
                on_frame: Optional[Callable[[], None]] = None) -> list[ClipResult]:
    """Every face of one clip as its own result (``--faces all``, :func:`face_plans`);
    in between its first and last appearance, frames a face was lost in are filled
    as ``--missing`` says."""
    per_frame, detections = track_frames(frames, tracker, on_frame)
    plans = face_plans(per_frame, dataclasses.replace(options, faces="all"), detections, truth)
    return [cut_crops(frames, p, options) for p in plans] or [no_face(len(frames), detections)]


def _truth_owner(per_frame: list[dict[int, FaceState]], truth: np.ndarray) -> Optional[int]:
    """The face whose landmarks lie on ``truth`` (mean centroid distance under half an
    inter-ocular distance), or None."""
    dist: dict[int, list[float]] = {}
    for states, gt in zip(per_frame, truth.astype(np.float64)):
        iod = max(float(faces.interocular(gt)), 1e-6)
        for fid, s in states.items():
            dist.setdefault(fid, []).append(float(np.hypot(*(s.landmarks.mean(0) - gt.mean(0)))) / iod)
    if not dist:
        return None
    fid = min(dist, key=lambda k: float(np.mean(dist[k])))
    return fid if float(np.mean(dist[fid])) < 0.5 else None


def register_clip(frames: np.ndarray, states: list[FaceState], options: AlignOptions, detections: int = 0,
                  truth: Optional[np.ndarray] = None, span: Optional[tuple[int, int]] = None) -> ClipResult:
    """Register and crop the frames of one face given its per-frame tracker states;
    ``span`` (first, last) limits the output to those frames (one face of several)."""
    return cut_crops(frames, plan_registration(states, options, detections, truth, span), options)


@dataclass
class Registration:
    """What :func:`plan_registration` decides for one face of one clip, before any crop
    is cut: small per-frame values (affines, landmarks, boxes), so a clip too long for
    memory can be tracked in one pass over its frames and cropped in a second."""
    result: ClipResult                 # counts, gt_error, transform; no frames yet
    kept: np.ndarray                   # input frames of the output, in order
    found: np.ndarray                  # (T,) a face was found in input frame t
    mats: list                         # per input frame: input -> crop affine (filled), None where not kept
    lms: list                          # per input frame: landmarks in input pixels (filled)
    boxes: list                        # per input frame: face box (filled)
    scores: np.ndarray                 # (T,) detector score, NaN where no face was found


def plan_registration(states: list[FaceState], options: AlignOptions, detections: int = 0,
                      truth: Optional[np.ndarray] = None, span: Optional[tuple[int, int]] = None) -> Registration:
    """The registration of one face from its per-frame tracker states (thesis 3.2.2):
    the transform of every output frame, missing frames filled as ``--missing`` says."""
    n = len(states)
    found = np.array([s.found for s in states], dtype=bool)
    first, last = span if span is not None else (0, n - 1)
    inside = np.zeros(n, bool)
    inside[first:last + 1] = True
    result = ClipResult(None, None, None, None, int(found.sum()), int((~found & inside).sum()), detections)
    scores = np.array([s.score if s.found else np.nan for s in states], np.float32)
    if not found.any():
        return Registration(result, np.zeros(0, np.int64), found, [], [], [], scores)
    if truth is not None and truth.shape == (n, 68, 2):
        det = np.stack([s.landmarks for s, f in zip(states, found) if f])
        gt = truth[found].astype(np.float64)
        iod = np.maximum(faces.interocular(gt), 1e-6)
        result.gt_error = float((np.linalg.norm(det - gt, axis=-1).mean(-1) / iod).mean() * 100)
    size = options.size
    kind = options.transform
    if kind == "auto":
        offset = float(np.median([nose_offset(s.landmarks) for s in states if s.found]))
        kind = "similarity" if offset > AUTO_MAX_NOSE_OFFSET else "affine"
    result.transform = kind
    if options.align:
        mats = [registration_matrix(s.landmarks, size, kind) if s.found else None for s in states]
    else:
        mats = [box_matrix(s.box, size) if s.found else None for s in states]
    lms = [s.landmarks if s.found else None for s in states]
    boxes = [np.asarray(s.box, np.float64) if s.found else None for s in states]
    if options.missing == "drop":
        kept = np.flatnonzero(found)
    else:
        kept = np.arange(first, last + 1)
        mats = _fill(mats, found, options.missing)
        lms = _fill(lms, found, options.missing)
        boxes = _fill(boxes, found, options.missing)
    return Registration(result, kept, found, mats, lms, boxes, scores)


def cut_crops(frames: np.ndarray, plan: Registration, options: AlignOptions, start: int = 0) -> ClipResult:
    """The crops of ``plan``'s output frames among ``frames``, input frames ``start`` to
    ``start + len(frames) - 1`` of the clip (all of it, or one run of a long clip);
    the result's ``kept`` counts from ``start``.  No face at all: ``frames`` is None."""
    import cv2

    result = dataclasses.replace(plan.result)
    if not plan.found.any():
        return result
    size = options.size
    kept = plan.kept[(plan.kept >= start) & (plan.kept < start + len(frames))]
    out_frames, out_lms = [], []
    for t in kept:
        src = to_gray(frames[t - start]) if options.gray else frames[t - start]
        out_frames.append(cv2.warpAffine(np.ascontiguousarray(src), plan.mats[t], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        out_lms.append(apply_matrix(plan.mats[t], plan.lms[t]))
    if not len(kept):  # a run of a long clip without frames of this face
        return result
    result.frames = np.stack(out_frames)
    result.landmarks = np.stack(out_lms).astype(np.float32)
    result.face_found = plan.found[kept]
    result.kept = kept - start
    result.transforms = np.stack([plan.mats[t] for t in kept])
    result.boxes = np.stack([plan.boxes[t] for t in kept]).astype(np.float32)
    result.scores = plan.scores[kept]
    return result


# --------------------------------------------------------------------------- whole artifact


@dataclass
class AlignStats:
    clips_in: int = 0
    clips_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    found: int = 0
    missing: int = 0
    detections: int = 0
    dropped_clips: list[str] = field(default_factory=list)
    gt_error_iod_pct: Optional[float] = None
    similarity_clips: int = 0                # clips --transform auto registered by similarity
    # Running sums of the landmark error (% IOD x found frames) and of its frames, added
    # clip by clip in clip order: the same figure batch by batch as all at once.
    gt_error_sum: float = field(default=0.0, repr=False)
    gt_error_frames: int = field(default=0, repr=False)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def count(self, clip_id: str, results: Sequence[ClipResult], options: AlignOptions, dropped: Optional[bool] = None) -> None:
        """Add one input clip's results (one, or one per face); ``dropped``: it had no
        face at all (default: no result has frames)."""
        if all(r.frames is None for r in results) if dropped is None else dropped:
            self.dropped_clips.append(clip_id)
        for r in results:
            self.similarity_clips += r.transform == "similarity" and options.transform == "auto"
            self.found += r.found
            self.missing += r.missing
            self.detections += r.detections
            if r.gt_error is not None:
                self.gt_error_sum += r.gt_error * r.found
                self.gt_error_frames += r.found
        if self.gt_error_frames:
            self.gt_error_iod_pct = round(self.gt_error_sum / max(1, self.gt_error_frames), 3)

    def check_found(self) -> None:
        """No face in any clip is an error (the output would be empty)."""
        if not self.clips_out:
            where = f" (first: {', '.join(self.dropped_clips[:3])})" if self.dropped_clips else ""
            raise FercliError(f"no face was found in any of the {self.clips_in} clips{where}: try --upsample 1 or another --detector")


def aligned_meta(meta: dict, options: AlignOptions) -> dict:
    """The output's ``fercli_meta``: the input's, and how it was aligned (the same for
    every clip, so a stage written batch by batch writes it once)."""
    return {**meta, "align": options.parameters(), "size": options.size, "aligned": bool(options.align),
            "color": not options.gray,
            "landmarks": "detected (dlib 68-point predictor), crop pixels; source pixels through 'transform'"}


def _trace(clips: Clips, chosen: np.ndarray, results: Sequence[ClipResult], focal: Optional[float] = None,
           frame_base: int = 0, source_size: Optional[tuple[float, float]] = None) -> dict[str, np.ndarray]:
    """Trace arrays of the aligned frames (see :class:`fercli.artifacts.Clips`): each
    registration composed with the input's own source -> frame transform, so the
    stored transform always starts from the source video; boxes mapped back to
    source pixels; source frame indices of the kept frames; the head pose of each
    frame's landmarks in source pixels (:mod:`fercli.pose`, the camera centred on
    the source video).  A run of a long clip (``clips`` holding its frames from
    ``frame_base`` on) gives the source video's size its first kept frame had."""
    from fercli import pose

    to_input = clips.source_transform()
    transforms, boxes, source_frame, poses = [], [], [], []
    for i, r in zip(chosen.tolist(), results):
        rows = clips.offsets[i] + r.kept
        inner = to_input[rows]
        transforms.append(compose(r.transforms, inner))
        boxes.append(_boxes_to_source(r.boxes, inner))
        source_frame.append(clips.source_frame[rows] if clips.source_frame is not None else r.kept + frame_base)
        src_w, src_h = source_size if source_size is not None else source_video_size(inner[0], clips.frames.shape)
        poses.append(pose.head_poses(map_points(invert(transforms[-1]), r.landmarks.astype(np.float64)), src_w, src_h, focal))
    return {"transform": np.concatenate(transforms), "face_box": np.concatenate(boxes).astype(np.float32),
            "face_score": np.concatenate([r.scores for r in results]), "source_frame": np.concatenate(source_frame).astype(np.int64),
            "head_pose": np.concatenate(poses)}


def source_video_size(to_input: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[float, float]:
    """The source video's (width, height): the corner of a frame (``frame_shape``: the
    frames array's) mapped back by its (2, 3) source -> frame affine (ingest only scales)."""
    h, w = frame_shape[1:3]
    src_w, src_h = np.abs(invert(to_input[None])[0, :, :2] @ [w, h])
    return src_w, src_h


def _boxes_to_source(boxes: np.ndarray, to_input: np.ndarray) -> np.ndarray:
    """(F, 4) boxes in input-frame pixels -> the source pixels' bounding boxes."""
    x0, y0, x1, y1 = (boxes[:, k].astype(np.float64) for k in range(4))
    corners = np.stack([np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x0, y1], -1), np.stack([x1, y1], -1)], 1)
    back = map_points(invert(to_input), corners)
    return np.concatenate([back.min(1), back.max(1)], axis=1)


def assemble(clips: Clips, owners: np.ndarray, results: Sequence[ClipResult], options: AlignOptions,
             frame_base: int = 0, source_size: Optional[tuple[float, float]] = None) -> Clips:
    """The aligned Clips of ``results`` (each with frames; ``owners``: its clip in
    ``clips``).  Every per-clip array of the input carries over (labels, ids, folds,
    segments, fps...; with --faces all once per face, ids suffixed); LBP-TOP planes
    and histograms described the old frames and are dropped."""
    # Only the per-clip values and small per-frame fields of the input are kept: select
    # none of its pixels (they are replaced by the crops).
    base = dataclasses.replace(clips, frames=clips.frames[:, :0]).select(owners)
    clip_ids, face_id, subjects = base.clip_ids, base.face_id, base.subjects
    if options.faces == "all":
        clip_ids = np.array([f"{cid}#face{r.face_id}" for cid, r in zip(base.clip_ids, results)], dtype=object)
        face_id = np.array([r.face_id for r in results], dtype=np.int64)
        # Faces of one clip keep its subject; with none recorded, each face is its own.
        subjects = np.array([str(s) or str(c) for s, c in zip(base.subjects, clip_ids)], dtype=object)
    frames = np.concatenate([r.frames for r in results])
    offsets = np.zeros(len(results) + 1, dtype=np.int64)
    np.cumsum([len(r.frames) for r in results], out=offsets[1:])
    return dataclasses.replace(
        base, frames=frames, offsets=offsets, class_names=list(clips.class_names),
        landmarks=np.concatenate([r.landmarks for r in results]),
        face_found=np.concatenate([r.face_found for r in results]),
        planes={}, plane_offsets=None, histograms=None, meta=aligned_meta(clips.meta, options),
        clip_ids=clip_ids, face_id=face_id, subjects=subjects,
        **_trace(clips, owners, results, options.focal, frame_base, source_size),
    )


# --------------------------------------------------------------------------- worker processes
#
# --workers N runs clips in N processes started by a fork server (a clean
# single-threaded process that imported this module and loaded the default
# landmark model once, :mod:`fercli.align_preload`): forking the CLI process
# itself, whose OpenCV/OpenMP thread pools may hold locks at that moment, is
# the classic multiprocessing hang.  Workers ignore SIGINT/SIGTERM (Ctrl-C
# reaches the whole process group); the parent kills them on any exception,
# including the Interrupted of its own signal handler, so a stop is one
# sentence and never a hang.  Each clip is tracked from a reset tracker, so the
# output does not depend on which worker ran which clip: it is byte-identical
# to --workers 1.  The pool is started once per run and fed batch after batch
# (:func:`align_batches`).

#: This process's worker state: the options and the tracker (built once per worker).
_JOB: dict[str, Any] = {}


def _work_frames(frames: np.ndarray, truth: Optional[np.ndarray], on_frame: Optional[Callable[[], None]] = None) -> list[ClipResult]:
    """The results of one input clip: one, or one per face with ``--faces all``."""
    tracker = _JOB.get("tracker")
    if tracker is None:
        tracker = _JOB["tracker"] = make_tracker(_JOB["options"])
    if isinstance(tracker, MultiFaceTracker):
        return align_faces(frames, _JOB["options"], tracker, truth, on_frame)
    return [align_clip(frames, _JOB["options"], tracker, truth, on_frame)]


def _init_worker(options: AlignOptions) -> None:
    import signal

    # The parent decides when to stop; a worker never prints a traceback for Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _JOB.clear()
    _JOB["options"] = options


class _Done:
    """A result computed at once (one worker): what a future gives."""

    def __init__(self, value: list[ClipResult]):
        self.value = value

    def result(self) -> list[ClipResult]:
        return self.value


class _Pool:
    """Clips aligned in this process (``workers`` 1) or in ``workers`` processes, started
    when the block is entered and stopped when it is left (killed on any exception)."""

    def __init__(self, options: AlignOptions, workers: int, on_frame: Callable[[], None]):
        self.options, self.workers, self.on_frame = options, workers, on_frame
        self.executor = None

    @property
    def inline(self) -> bool:
        return self.workers <= 1

    def __enter__(self) -> "_Pool":
        if self.inline:
            _JOB.clear()
            _JOB["options"] = self.options
            return self
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["fercli.align_preload"])
        _start_quiet_forkserver()
        self.executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self.options,))
        return self

    def submit(self, frames: np.ndarray, truth: Optional[np.ndarray]):
        if self.inline:
            return _Done(_work_frames(frames, truth, self.on_frame))
        return self.executor.submit(_work_frames, frames, truth)

    def __exit__(self, kind, exc, tb) -> None:
        if self.inline:
            _JOB.clear()
        elif kind is None:
            self.executor.shutdown(wait=True)
        else:
            _stop(self.executor)


def check_colour(frame_shape: tuple[int, ...], options: AlignOptions) -> None:
    """``--color`` needs colour frames (``frame_shape``: the frames array's)."""
    if not options.gray and (len(frame_shape) != 4 or frame_shape[-1] == 1):
        raise FercliError("--color needs colour input frames, but these are gray: use --gray")


def _prepared(clips: Clips, options: AlignOptions) -> Clips:
    check_colour(clips.frames.shape, options)
    if clips.frames.ndim == 4 and clips.frames.shape[-1] == 1:
        # (F, H, W, 1) is gray stored with a channel axis.
        clips = Clips(**{**clips.__dict__, "frames": clips.frames[..., 0]})
    return clips


def _truth(clips: Clips, i: int) -> Optional[np.ndarray]:
    return clips.landmarks[clips.offsets[i]: clips.offsets[i + 1]] if clips.landmarks is not None else None


def frame_ticker(progress: Optional[ProgressFn], total: int) -> Callable[[int], None]:
    """tick(n): n more input frames done, reported to ``progress`` (frames, so a single
    long video moves the bar too)."""
    done = [0]

    def tick(n: int = 1) -> None:
        done[0] += n
        report(progress, done[0], total)

    return tick


def align_batches(batches: Iterable[Clips], options: AlignOptions, stats: AlignStats, n_clips: int,
                  tick: Callable[[int], None]) -> Iterator[Clips]:
    """The aligned Clips of each batch of clips, in order (0 clips where every face of
    the batch was dropped); ``stats`` counts as it goes, ``tick`` the frames done.  With ``options.workers`` > 1 the clips are spread over that many
    processes (at most ``n_clips``), started once for all the batches; the next batch
    is handed to them before the previous one's results are gathered, so they never
    wait for the reading."""
    import collections
    from concurrent.futures.process import BrokenProcessPool

    pool = _Pool(options, min(options.workers, n_clips), tick)
    depth = 1 if pool.inline else 2
    pending: collections.deque = collections.deque()

    def gather() -> Clips:
        batch, futures = pending.popleft()
        results = []
        for i, future in enumerate(futures):
            results.append(future.result())
            if not pool.inline:
                tick(int(batch.lengths[i]))
        for cid, rs in zip(batch.clip_ids, results):
            stats.count(str(cid), rs, options)
        owners = np.array([i for i, rs in enumerate(results) for r in rs if r.frames is not None], dtype=np.int64)
        kept = [r for rs in results for r in rs if r.frames is not None]
        if not kept:
            return batch.select(owners)
        out = assemble(batch, owners, kept, options)
        stats.clips_out += len(out)
        stats.frames_out += int(out.offsets[-1])
        return out

    try:
        with pool:
            for batch in batches:
                batch = _prepared(batch, options)
                pending.append((batch, [pool.submit(batch.clip(i), _truth(batch, i)) for i in range(len(batch))]))
                while len(pending) >= depth:
                    yield gather()
            while pending:
                yield gather()
    except BrokenProcessPool:
        raise FercliError(f"an align worker process died (killed, or out of memory?): try fewer --workers than {options.workers}") from None


def _start_quiet_forkserver() -> None:
    """Start the fork server with stderr on /dev/null: workers report through their
    results, and a worker cut off while it starts (the parent stopping) must not
    print a traceback under fercli's one sentence."""
    from multiprocessing import forkserver

    try:
        saved = os.dup(2)
    except OSError:
        forkserver.ensure_running()
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            forkserver.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _stop(executor) -> None:
    """Kill the workers (they ignore SIGTERM) and let the executor wind down."""
    processes = list(getattr(executor, "_processes", {}).values())
    for p in processes:
        with contextlib.suppress(Exception):
            p.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(5)


def check_models(options: AlignOptions) -> None:
    """Fail on a missing or bad model file before any work."""
    if options.detector in ("opencv-dnn", "yunet") or options.predictor:
        make_tracker(options)


def align(clips: Clips, options: AlignOptions, shard: Optional[tuple[int, int]] = None,
          progress: Optional[ProgressFn] = None) -> tuple[Clips, AlignStats]:
    """Register every clip's faces (thesis 3.2.2; ``no_align``: 4.2.7's unaligned crops).

    Returns the aligned clips (landmarks in crop coordinates, ``face_found`` per
    frame) and counts.  Clips with no face at all are dropped and listed in the
    stats; if nothing is left that is an error.  (``fercli align`` runs the same
    over an artifact batch by batch: :mod:`fercli.align_stream`.)
    """
    options.check()
    clips = _prepared(clips, options)
    check_models(options)
    index = shard_indices(len(clips), shard)
    stats = AlignStats(clips_in=len(index), frames_in=int(clips.lengths[index].sum()))
    [out] = align_batches([clips.select(index) if shard is not None else clips], options, stats, len(index),
                          frame_ticker(progress, stats.frames_in))
    stats.check_found()
    return out, stats
