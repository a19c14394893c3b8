"""Clip by clip from an importer to an artifact (issue 19; thesis 2.1 for the
datasets, 3.2.2 for why frames keep their size and colour).

Every importer is a :class:`Plan`: what its folder walk found (the report so
far), its fixed choices (class names, default colour, padding, metadata) and a
generator of :class:`Decoded` clips, each holding one clip's frames (a video's
are decoded only as they are asked for).  :func:`run` drives the generator into
a clip writer (``artifacts.clip_writer`` for ``fercli ingest ... -o FILE``, or
:class:`MemoryWriter` for the library's ``ingest_*`` functions returning
:class:`~fercli.artifacts.Clips`): many short clips go in one append, a clip
longer than a run (:func:`run_bytes`) in parts, so memory is one run of frames
whatever the size of the data set or of one clip.

An artifact holds one frame shape and one colour, and which depends on every
frame (the largest canvas when padding; colour if any file is colour when the
dataset has no default).  :class:`Layout` is therefore guessed before the first
frame is stored -- from the file headers (:func:`guess_from_images`,
:func:`guess_from_videos`), else from the first clip -- and checked against
every frame.  When a frame does not fit, or the frames end up needing another
layout than the one guessed, or a clip already written in parts turns out to be
skipped (a truncated long video), the output is abandoned, the rest only
surveyed, and the clips decoded once more into what is now known.  So the
arrays are always those of the in-memory path: same canvas, same colour
conversions, same traces, same report.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Iterator, Optional

import numpy as np

from fercli import images
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import FrameOptions, Report, plural, scaled_size

#: Bytes of converted frames gathered before one append (when the artifacts
#: layer does not say): many HDF5 chunks per write, small beside any machine.
RUN_BYTES = 32 << 20


def run_bytes() -> int:
    """The frames one append holds: the artifacts layer's batch size when it has one."""
    from fercli import artifacts

    batch = getattr(artifacts, "batch_bytes", None)
    return int(batch()) if batch is not None else RUN_BYTES


@dataclass
class Decoded:
    """One clip an importer found: its per-clip fields and its frames.

    ``frames`` yields uint8 frames, gray (H, W) or RGB (H, W, 3), scaled by the
    frame options, in order (a list, or a generator decoding them as asked).
    ``finish(count)``, when given, is called once they are exhausted: it returns
    ``(reason, example)`` when the clip must be skipped after all (a truncated
    video), else None, and may fill ``fps`` / ``native_size``, known only once
    the source is open.
    """

    frames: Iterable[np.ndarray]
    label: int
    subject: str
    clip_id: str
    source: str
    split: str = ""
    fps: float = float("nan")
    native_size: Optional[tuple[int, int]] = None
    finish: Optional[Callable[[int], Optional[tuple[str, str]]]] = None
    first: Optional[np.ndarray] = None  # its first frame, once read (the transform's scale)


@dataclass(frozen=True)
class Layout:
    """The frame shape and colour of the artifact being written."""

    color: bool
    width: int
    height: int

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (self.height, self.width, 3) if self.color else (self.height, self.width)


@dataclass
class Plan:
    """An importer's found clips and fixed choices (see the module docstring).

    ``clips(report)`` yields the :class:`Decoded` clips, recording in ``report``
    what it skips while decoding; it may be called more than once.
    ``empty(report)`` is the error when no clip is usable; ``before_store(report,
    labels)`` adds the importer's last notes once every kept clip's label is
    known; ``guess()`` is the layout the file headers predict (None: the first
    clip's).  ``traces``: write the per-frame source traces (source_frame,
    transform, fps); False for ready-made crops (fer2013, cifar10).
    """

    report: Report
    clips: Callable[[Report], Iterator[Decoded]]
    class_names: list[str]
    options: FrameOptions
    where: str
    strict: bool
    empty: Callable[[Report], FercliError]
    default_color: Optional[bool] = None
    pad_by_default: bool = False
    with_split: bool = False
    meta: dict = field(default_factory=dict)
    before_store: Optional[Callable[[Report, list[int]], None]] = None
    guess: Optional[Callable[[], Optional[Layout]]] = None
    traces: bool = True

    @property
    def pad(self) -> bool:
        return self.options.pad or self.pad_by_default

    def fixed_color(self) -> Optional[bool]:
        return self.options.color if self.options.color is not None else self.default_color


@dataclass
class BlockPlan:
    """An importer whose frames come ready-made in one layout (FER2013, CIFAR-10):
    ``blocks(report)`` yields whole clips (an in-memory Clips each), ``empty(report)``
    is the error when none is usable."""

    report: Report
    blocks: Callable[[Report], Iterator[Clips]]
    layout: Layout
    where: str
    strict: bool
    empty: Callable[[Report], FercliError]


@dataclass
class Stored:
    """What :func:`run` wrote (for the CLI's closing line)."""

    layout: Layout
    class_names: list[str]
    n_clips: int
    labelled: int
    n_frames: int


class _Survey:
    """Sizes and colours of every kept frame: what the layout must be."""

    def __init__(self) -> None:
        self.sizes: dict[tuple[int, int], int] = {}
        self.any_color = False

    def add(self, frame: np.ndarray) -> None:
        key = (frame.shape[1], frame.shape[0])
        self.sizes[key] = self.sizes.get(key, 0) + 1
        self.any_color = self.any_color or frame.ndim == 3

    def merge(self, other: "_Survey") -> None:
        for key, n in other.sizes.items():
            self.sizes[key] = self.sizes.get(key, 0) + n
        self.any_color = self.any_color or other.any_color

    def layout(self, plan: Plan, report: Report) -> Layout:
        """The exact layout of these frames (the in-memory rules), noting padding."""
        fixed = plan.fixed_color()
        color = self.any_color if fixed is None else fixed
        if len(self.sizes) > 1:
            listed = ", ".join(f"{w}x{h} ({plural(n, 'frame')})" for (w, h), n in sorted(self.sizes.items(), key=lambda kv: -kv[1])[:4])
            if not plan.pad:
                raise FercliError(
                    f"frames come in {len(self.sizes)} different sizes ({listed}{', ...' if len(self.sizes) > 4 else ''}) but an "
                    "artifact holds one frame size: pass --resize WxH to scale them, or --pad to place them on a common canvas"
                )
            width, height = max(w for w, _ in self.sizes), max(h for _, h in self.sizes)
            report.note(f"padded frames of {len(self.sizes)} sizes ({listed}) top-left onto a {width}x{height} canvas (pixel coordinates unchanged)")
            return Layout(color, width, height)
        if self.sizes:
            (width, height), = self.sizes
            return Layout(color, width, height)
        return Layout(color, 1, 1)


def _first_clip_layout(frames: list[np.ndarray], plan: Plan) -> Layout:
    """The layout one clip's frames suggest (when no header told)."""
    fixed = plan.fixed_color()
    color = any(f.ndim == 3 for f in frames) if fixed is None else fixed
    return Layout(color, max(f.shape[1] for f in frames), max(f.shape[0] for f in frames))


class _Redo(Exception):
    """Stop storing: the output is abandoned and the clips decoded once more."""


def _transform(n: int, first: np.ndarray, native: Optional[tuple[int, int]], options: FrameOptions) -> np.ndarray:
    """(n, 2, 3) source-file -> frame affines of one clip: a scale when ``--resize`` /
    ``--max-side`` changed the size (padding moves nothing), the identity when the
    options cannot have scaled, NaN when a scaled clip's native size is unknown."""
    m = np.zeros((n, 2, 3))
    if native is not None:
        h, w = first.shape[:2]
        m[:, 0, 0], m[:, 1, 1] = w / native[0], h / native[1]
    elif options.resize is not None or options.max_side is not None:
        m[:] = np.nan
    else:
        m[:, 0, 0] = m[:, 1, 1] = 1.0
    return m


class _Store:
    """Converts one pass's frames into the layout and appends them to a writer:
    whole clips gathered into runs of :func:`run_bytes`, a longer clip in parts."""

    def __init__(self, plan: Plan, layout: Layout, writer: Any) -> None:
        self.plan, self.layout, self.writer = plan, layout, writer
        self.frame_bytes = int(np.prod(layout.frame_shape))
        self.run_frames = max(1, run_bytes() // self.frame_bytes)
        self.color_guessed = plan.fixed_color() is None
        self.done: list[tuple[np.ndarray, Decoded, int]] = []   # whole clips waiting: frames, clip, its first frame's index
        self.done_frames = 0
        self.open: list[np.ndarray] = []                        # the clip being read, converted
        self.in_parts = False                                   # some of it went to the writer already
        self.n_clips = self.n_frames = 0
        self._cv2 = None

    def fits(self, frame: np.ndarray) -> bool:
        h, w = frame.shape[:2]
        lay = self.layout
        if self.color_guessed and frame.ndim == 3 and not lay.color:
            return False
        return (w <= lay.width and h <= lay.height) if self.plan.pad else (w, h) == (lay.width, lay.height)

    def add(self, frame: np.ndarray) -> None:
        """One frame of the open clip (the in-memory path's conversions, frame by frame)."""
        color = self.layout.color
        if color and frame.ndim == 2:
            if self._cv2 is None:
                from fercli.ingest.common import _cv2

                self._cv2 = _cv2()
            frame = self._cv2.cvtColor(frame, self._cv2.COLOR_GRAY2RGB)
        elif not color and frame.ndim == 3:
            frame = images.frame_to_gray(frame)
        if frame.shape[:2] != self.layout.frame_shape[:2]:
            canvas = np.zeros(self.layout.frame_shape, np.uint8)  # padding: black outside the frame
            canvas[: frame.shape[0], : frame.shape[1]] = frame
            frame = canvas
        self.open.append(frame)
        if self.done_frames + len(self.open) >= self.run_frames:
            self._flush_done()
            if len(self.open) >= self.run_frames:  # one clip longer than a run: send it in parts
                self._send_part(self.open)
                self.open, self.in_parts = [], True

    def _clips(self, runs: list[tuple[np.ndarray, Decoded, int]]) -> Clips:
        plan = self.plan
        lengths = [len(f) for f, _, _ in runs]
        offsets = np.zeros(len(runs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        clips = [c for _, c, _ in runs]
        out = Clips(
            frames=np.concatenate([f for f, _, _ in runs]) if runs else np.zeros((0, *self.layout.frame_shape), np.uint8),
            offsets=offsets,
            labels=np.asarray([c.label for c in clips], dtype=np.int64),
            class_names=list(plan.class_names),
            subjects=np.asarray([c.subject for c in clips], dtype=object),
            clip_ids=np.asarray([c.clip_id for c in clips], dtype=object),
            sources=np.asarray([c.source for c in clips], dtype=object),
            split=np.asarray([c.split for c in clips], dtype=object) if plan.with_split else None,
            meta=dict(plan.meta),
        )
        if plan.traces:
            out.source_frame = np.concatenate([np.arange(start, start + n, dtype=np.int64) for (_, _, start), n in zip(runs, lengths)]) \
                if runs else np.zeros(0, np.int64)
            out.transform = np.concatenate([self._transform_of(c, n) for c, n in zip(clips, lengths)]) if runs else np.zeros((0, 2, 3))
            out.fps = np.asarray([float(c.fps) for c in clips], dtype=np.float64)
        return out

    def _transform_of(self, clip: Decoded, n: int) -> np.ndarray:
        return _transform(n, clip.first, clip.native_size, self.plan.options)

    def _send_part(self, frames: list[np.ndarray]) -> None:
        clip = self.current
        start = self.open_start
        self.writer.append_part(self._clips([(np.stack(frames), clip, start)]))
        self.open_start += len(frames)

    def _flush_done(self) -> None:
        if self.done:
            self.writer.append(self._clips(self.done))
            self.done, self.done_frames = [], 0

    def begin(self, clip: Decoded) -> None:
        self.current, self.open, self.in_parts, self.open_start = clip, [], False, 0

    def end(self, keep: bool, count: int) -> None:
        """The open clip is complete (``count`` frames): kept (``keep``) or dropped."""
        if not keep:
            if self.in_parts:
                raise _Redo()
            self.open = []
            return
        if self.in_parts:
            if self.open:
                self._send_part(self.open)
            self.writer.end_clip()
        else:
            self.done.append((np.stack(self.open), self.current, 0))
            self.done_frames += len(self.open)
        self.n_clips += 1
        self.n_frames += count
        self.open = []

    def close(self) -> None:
        self._flush_done()


def _pass(plan: Plan, report: Report, layout: Optional[Layout], open_writer: Optional[Callable[[Layout], ContextManager]],
          known_skips: dict[int, tuple[str, str]]) -> tuple[_Survey, list[int], Optional[tuple[contextlib.ExitStack, _Store]],
                                                            dict[int, tuple[str, str]]]:
    """One pass over the clips: stored into a writer (opened with ``layout``, or the
    first clip's) until something does not fit, surveyed throughout.  Returns the
    survey, the kept labels, the open writer and its store (None if storing
    stopped) and the clips skipped after their frames (to skip unread next time)."""
    survey, labels, skips = _Survey(), [], {}
    stack: Optional[contextlib.ExitStack] = None
    store: Optional[_Store] = None
    storing = open_writer is not None

    def stop() -> None:
        nonlocal stack, store, storing
        if stack is not None:
            stack.__exit__(_Redo, _Redo(), None)  # the writer deletes what it wrote
        stack, store, storing = None, None, False

    try:
        for index, clip in enumerate(plan.clips(report)):
            if index in known_skips:
                report.skip(*known_skips[index])
                continue
            frames = clip.frames
            if storing and store is None and layout is None:
                # No header told: the first clip's frames decide (a video's first frame
                # only: it may be too long to hold).
                if isinstance(frames, list):
                    seen_first = frames
                else:
                    seen_first = list(itertools.islice(frames, 1))
                    frames = itertools.chain(seen_first, frames)
                if seen_first:
                    layout = _first_clip_layout(seen_first, plan)
            seen = _Survey()
            count = 0
            if storing and store is not None:
                store.begin(clip)
            for frame in frames:
                if count == 0:
                    clip.first = frame
                    if storing and store is None:
                        stack = contextlib.ExitStack()
                        store = _Store(plan, layout, stack.enter_context(open_writer(layout)))
                        store.begin(clip)
                seen.add(frame)
                count += 1
                if storing:
                    if store.fits(frame):
                        store.add(frame)
                    else:
                        stop()
            verdict = clip.finish(count) if clip.finish is not None else None
            if verdict is None and count == 0:
                verdict = ("empty", clip.source)
            if storing and store is not None and count:
                try:
                    store.end(verdict is None, count)
                except _Redo:
                    stop()
            if verdict is not None:
                report.skip(*verdict)
                skips[index] = verdict
                continue
            survey.merge(seen)
            labels.append(clip.label)
    except BaseException:
        stop()
        raise
    return survey, labels, (stack, store) if storing and stack is not None else None, skips


def run(plan: Plan | BlockPlan, open_writer: Callable[[Layout], ContextManager]) -> tuple[Stored, Report]:
    """Decode ``plan``'s clips into the writer ``open_writer(layout)`` opens.

    Nothing usable, ``--strict`` with skips, or frames of several sizes without
    padding: one sentence, and the writer is abandoned (nothing written).
    """
    if isinstance(plan, BlockPlan):
        return _run_blocks(plan, open_writer)
    start = copy.deepcopy(plan.report)
    layout = plan.guess() if plan.guess is not None else None
    known: dict[int, tuple[str, str]] = {}
    for attempt in range(3):
        report = copy.deepcopy(start)
        survey, labels, opened, skips = _pass(plan, report, layout, open_writer, known)
        try:
            if not labels:
                raise plan.empty(report)
            report.enforce(plan.strict, plan.where)
            if plan.before_store is not None:
                plan.before_store(report, labels)
            exact = survey.layout(plan, report)
            if opened is not None and opened[1].layout == exact:
                stack, store = opened
                store.close()
                stack.close()  # the writer commits
                return Stored(exact, list(plan.class_names), store.n_clips, sum(1 for label in labels if label >= 0), store.n_frames), report
        except BaseException:
            if opened is not None:
                opened[0].__exit__(_Redo, _Redo(), None)
            raise
        if opened is not None:
            opened[0].__exit__(_Redo, _Redo(), None)
        layout, known = exact, skips
    raise AssertionError("ingest: the surveyed layout did not hold on the third pass")  # pragma: no cover


def _run_blocks(plan: BlockPlan, open_writer: Callable[[Layout], ContextManager]) -> tuple[Stored, Report]:
    report = plan.report
    labelled = 0
    with open_writer(plan.layout) as writer:
        for block in plan.blocks(report):
            writer.append(block)
            labelled += int((block.labels >= 0).sum())
        if not writer.n_clips:
            raise plan.empty(report)
        report.enforce(plan.strict, plan.where)
        return Stored(plan.layout, list(block.class_names), writer.n_clips, labelled, writer.n_frames), report


# --------------------------------------------------------------------------- in memory


class MemoryWriter:
    """A clip writer that keeps the clips in memory (the library's ``ingest_*``):
    the same appends as ``artifacts.clip_writer``, then :meth:`clips`."""

    def __init__(self) -> None:
        self.parts: list[Clips] = []
        self.open: list[Clips] = []
        self.held = 0
        self.n_clips = self.n_frames = 0

    def __enter__(self) -> "MemoryWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.parts, self.open = [], []

    def append(self, clips: Clips) -> None:
        from fercli import untrusted

        self.parts.append(clips)
        self.n_clips += clips.n_clips
        self.n_frames += len(clips.frames)
        self.held += clips.frames.nbytes
        if self.held > (64 << 20):  # all of it is held: check as it grows
            untrusted.check_budget(self.held, "the decoded frames need more than")

    def append_part(self, part: Clips) -> None:
        self.open.append(part)

    def end_clip(self) -> None:
        first = self.open[0]
        whole = copy.copy(first)
        whole.frames = np.concatenate([p.frames for p in self.open])
        whole.offsets = np.asarray([0, len(whole.frames)], dtype=np.int64)
        for name in ("source_frame", "transform"):
            if getattr(first, name) is not None:
                setattr(whole, name, np.concatenate([getattr(p, name) for p in self.open]))
        self.open = []
        self.append(whole)

    def clips(self) -> Clips:
        """The clips appended, as one :class:`Clips`."""
        parts, self.parts = self.parts, []
        first = parts[0]
        lengths = np.concatenate([np.diff(p.offsets) for p in parts])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        joined = lambda name: np.concatenate([getattr(p, name) for p in parts]) if getattr(first, name) is not None else None  # noqa: E731
        out = Clips(frames=np.concatenate([p.frames for p in parts]), offsets=offsets, labels=joined("labels"),
                    class_names=first.class_names, subjects=joined("subjects"), clip_ids=joined("clip_ids"),
                    sources=joined("sources"), split=joined("split"), meta=first.meta, source_frame=joined("source_frame"),
                    transform=joined("transform"), fps=joined("fps"))
        out.validate("ingested clips")
        return out


def collect(plan: Plan) -> tuple[Clips, Report]:
    """``(Clips, Report)`` of ``plan`` held in memory (the library's ``ingest_*``)."""
    writer = MemoryWriter()
    _, report = run(plan, lambda layout: writer)
    return writer.clips(), report


# --------------------------------------------------------------------------- guessing the layout


def guess_from_images(paths: Iterable[str], plan: Plan) -> Optional[Layout]:
    """The layout the headers of the image files ``paths`` predict (every frame is
    checked against it anyway); None when no header could be read."""
    from PIL import Image

    sizes: set[tuple[int, int]] = set()
    any_color = False
    for path in paths:
        try:
            with Image.open(path) as img:
                (w, h), mode = img.size, img.mode
        except Exception:  # not an image Pillow reads (or unreadable): the decoder decides
            continue
        sizes.add(scaled_size(int(w), int(h), plan.options))
        any_color = any_color or mode not in ("L", "1", "I", "I;16", "I;16B", "I;16L", "F", "LA")
    return _guessed(sizes, any_color, plan)


def guess_from_videos(paths: Iterable[str], plan: Plan) -> Optional[Layout]:
    """The layout the video containers declare (decoded video frames are colour)."""
    from fercli.ingest.common import declared_size

    sizes = {scaled_size(*size, plan.options) for size in map(declared_size, paths) if size is not None}
    return _guessed(sizes, True, plan)


def _guessed(sizes: set[tuple[int, int]], any_color: bool, plan: Plan) -> Optional[Layout]:
    if not sizes or (len(sizes) > 1 and not plan.pad):
        return None  # nothing known, or an error once every size is counted
    fixed = plan.fixed_color()
    return Layout(any_color if fixed is None else fixed, max(w for w, _ in sizes), max(h for _, h in sizes))


# --------------------------------------------------------------------------- decoding clips


def video_clip(reader: Any, path: str, clip: Decoded, on_frame: Optional[Callable[[], None]] = None) -> Decoded:
    """``clip`` with the frames of the video ``path``, decoded as they are read, and its
    verdict once read: not a video, truncated, or empty (a skip); traced to the file (fps,
    native size) as soon as it is open."""
    from fercli.ingest.common import is_truncated

    state: dict = {}

    def frames() -> Iterator[np.ndarray]:
        for i, frame in enumerate(reader.video(path, state, on_frame=on_frame)):
            if i == 0:  # known once the file is open: before the clip's first part is written
                traced = reader.source_of(path)
                clip.fps, clip.native_size = traced["fps"], traced["native_size"]
            yield frame

    def finish(count: int) -> Optional[tuple[str, str]]:
        declared = state.get("declared", -1)
        if declared < 0:
            return ("unreadable", clip.source)
        if is_truncated(count, declared):
            return ("truncated", f"{clip.source}: {count} of {declared} frames")
        if count == 0:
            return ("empty", clip.source)
        return None

    clip.frames, clip.finish = frames(), finish
    return clip


def image_clips(reader: Any, found: Iterable[tuple[str, Decoded]], report: Report, tick: Callable[[int], None],
                block: int = 64) -> Iterator[Decoded]:
    """One-frame clips of image files: ``found`` pairs a file with its clip; files
    decode in parallel in blocks (so progress still moves); an unreadable one is
    reported under its clip's source."""
    pending: list[tuple[str, Decoded]] = []

    def decoded() -> Iterator[Decoded]:
        for (path, clip), img in zip(pending, reader.images([path for path, _ in pending])):
            if img is None:
                report.skip("unreadable", clip.source)
            else:
                traced = reader.source_of(path)
                clip.frames, clip.fps, clip.native_size = [img], traced["fps"], traced["native_size"]
                yield clip

    for item in found:
        pending.append(item)
        if len(pending) == block:
            yield from decoded()
            tick(len(pending))
            pending = []
    if pending:
        yield from decoded()
        tick(len(pending))
