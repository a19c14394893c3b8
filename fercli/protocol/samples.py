"""How clips become samples: the model's classes, frame picks, labels, uint8 arrays,
and the one uint8 -> float conversion (thesis 3.2.2-3.2.3, 4.3.1, 5.3.1).

Every stage that feeds a model (train, evaluate, prune, export, live) goes through
this module, so a sample is made the same way wherever it is made.

Classes (:func:`choose_classes`): the data's classes joined by name
(:mod:`fercli.protocol.join`), or the ``--classes`` list.  On the chapter-4 path --
``--frame first-last`` or clips cut by ``resample --ckplus-split`` -- the default
is the thesis's seven, neutral + the six basic expressions (4.2.4.3: "a length of
7"): CK+'s contempt is left out unless ``--classes`` names it (``--classes all``
keeps every class of the data), and 'neutral' is added when the data lacks it.

Samples (:class:`SampleSpec` says how, :func:`build_samples` does it):

- ``image`` (N, C, H, W): one frame per sample.  ``frame='last'`` takes the peak
  (last) frame of a clip (3.2.2-3.2.3); ``'first-last'`` the first and the last
  three frames of each *whole* sequence as neutral / peak samples (4.3.1) --
  refused on ``--ckplus-split`` clips, whose first frames are not their
  sequence's onset (a peak->peak clip starts at the apex); ``'all'`` every frame
  with its clip's label.  One-frame clips (FER2013, CIFAR-10) are used as they are.
- ``clip`` (N, T, C, H, W): fixed-length clips (``fercli resample -n T``), or
  resampled here to ``frames`` evenly spaced frames (nearest; first and last kept).
- ``xt`` / ``yt`` / ``xy`` (N, M, 1, h, w): LBP-TOP code maps (``fercli lbptop``).

Arrays stay uint8 until a batch is on the device: :func:`to_float` is the one
conversion to [0, 1] (pixels and LBP codes alike, / 255).

Data larger than memory: :class:`SampleReader` numbers the samples of a set of clips
without reading a frame (labels, owning clip, per-sample layout) and builds any of
them on demand with :func:`build_samples`, a piece of clips at a time (train's
streamed loads, evaluate); with a lazily opened artifact only those clips' frames
are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from fercli.artifacts import Clips, concat_ranges
from fercli.errors import FercliError
from fercli.images import resize_frames, to_channels
from fercli.protocol.join import class_key, join_class_names, labels_onto

PLANE_INPUTS = ("xt", "yt", "xy")
FRAME_MODES = ("last", "first-last", "all")
TASKS = ("expression", "identity")
#: 4.3.1: the first and last 3 frames of each sequence.
FIRST_LAST_FRAMES = 3
#: 4.2.4.3: neutral + six basic expressions; CK+'s contempt is not one of them.
CHAPTER4_LEFT_OUT = ("contempt",)
NEUTRAL = "neutral"


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class SampleSpec:
    """How clips become one model's inputs (recorded in the model as ``extra.data_prep``)."""

    input_names: tuple[str, ...]
    channels: int
    frame: str = "last"
    frames: Optional[int] = None
    size: Optional[tuple[int, int]] = None
    task: str = "expression"

    def as_json(self) -> dict:
        return {"input_names": list(self.input_names), "channels": self.channels, "frame": self.frame, "frames": self.frames,
                "size": list(self.size) if self.size else None, "task": self.task}

    @classmethod
    def from_json(cls, d: dict, model=None, config: Optional[dict] = None) -> "SampleSpec":
        """From a model's ``data_prep`` (the model fills what an old record lacks)."""
        d = dict(d or {})
        names = tuple(d.get("input_names") or (model.inputs if model is not None else ("image",)))
        if d.get("channels"):
            channels = int(d["channels"])
        elif model is not None and ({"image", "clip"} & set(names)):
            channels = model.frame_shape()[0]
        else:
            channels = int((config or {}).get("in_channels", 1))
        size = d.get("size")
        return cls(names, channels, d.get("frame") or "last", d.get("frames"), tuple(size) if size else None, d.get("task") or "expression")

    @classmethod
    def for_model(cls, model, frame: str = "last", frames: Optional[int] = None, size: Optional[tuple[int, int]] = None,
                  task: str = "expression") -> "SampleSpec":
        names = tuple(model.inputs)
        channels = model.frame_shape()[0] if {"image", "clip"} & set(names) else 1
        return cls(names, channels, frame, frames, tuple(size) if size else None, task)

    @staticmethod
    def check_options(frame: str, task: str) -> None:
        if frame not in FRAME_MODES:
            raise FercliError(f"--frame must be last, first-last or all, not '{frame}'")
        if task not in TASKS:
            raise FercliError(f"--task must be 'expression' or 'identity', not '{task}'")

    def check(self, clips: Clips, name: str) -> None:
        """Refuse data this spec cannot make honest samples of, with a sentence."""
        self.check_options(self.frame, self.task)
        if self.frame == "first-last" and "image" in self.input_names and clips.is_segmented:
            raise FercliError(
                f"--frame first-last takes the first and last {FIRST_LAST_FRAMES} frames of each whole sequence (thesis 4.3.1), "
                f"but {name} holds --ckplus-split clips (a peak->peak clip starts at the apex): "
                "give the static CNN the artifact the split was made from")


# --------------------------------------------------------------------------- classes and labels


@dataclass
class ClassChoice:
    names: list[str]
    rule: str
    left_out: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"rule": self.rule, "left_out": self.left_out, "added": self.added}


def choose_classes(datasets: Sequence[Clips], task: str = "expression", frame: str = "last",
                   requested: Optional[Sequence[str]] = None) -> ClassChoice:
    """The model's classes for training on ``datasets`` (see the module docstring).

    ``requested``: the ``--classes`` names (``['all']``: every class of the data).
    """
    if task == "identity":
        # 4.2.6 stage 1: face identities as classes (VGGFace in the thesis).
        names = sorted({str(s) for c in datasets for s in c.subjects})
        return ClassChoice(names, "identity: one class per subject (4.2.6)")
    joined, _ = join_class_names([c.class_names for c in datasets])
    chapter4 = frame == "first-last" or any(c.is_segmented for c in datasets)
    want_neutral = frame == "first-last"
    if requested and [class_key(r) for r in requested] != ["all"]:
        have = {class_key(c): c for c in joined}
        if want_neutral or any(c.is_segmented for c in datasets):
            have.setdefault(NEUTRAL, NEUTRAL)
        unknown = [r for r in requested if class_key(r) not in have]
        if unknown:
            raise FercliError(f"--classes names {', '.join(unknown)}, which the data does not have (it has {', '.join(joined)})")
        names = list(dict.fromkeys(have[class_key(r)] for r in requested))
        if want_neutral and NEUTRAL not in map(class_key, names):
            raise FercliError("--frame first-last labels each sequence's first frames 'neutral': add neutral to --classes")
        left = [c for c in joined if class_key(c) not in set(map(class_key, names))]
        return ClassChoice(names, "--classes", left, [c for c in names if class_key(c) not in map(class_key, joined)])
    names = list(joined)
    left: list[str] = []
    rule = "every class of the data"
    if requested:  # --classes all
        rule = "--classes all: every class of the data"
    elif chapter4:
        left = [c for c in names if class_key(c) in CHAPTER4_LEFT_OUT]
        names = [c for c in names if class_key(c) not in CHAPTER4_LEFT_OUT]
        rule = "chapter 4 (4.2.4.3): neutral + the six basic expressions"
    added = []
    if want_neutral and NEUTRAL not in map(class_key, names):
        names.append(NEUTRAL)
        added.append(NEUTRAL)
    return ClassChoice(names, rule, left, added)


def clip_labels(clips: Clips, class_names: Sequence[str], task: str = "expression") -> np.ndarray:
    """Per clip, the index of its class among the model's ``class_names`` (-1: not one of them).

    ``task='identity'``: the clip's subject is its class.  The ``--ckplus-split`` clips
    of one sequence are used together or not at all: the neutral->neutral clip of a
    sequence whose expression is not a model class (CK+'s contempt under chapter 4's
    seven) is not used either -- as ``--frame first-last`` takes no onset frames from
    such a sequence, so the static CNN and the CNN-GRU see the same sequences.
    """
    if task == "identity":
        lookup = {c: i for i, c in enumerate(class_names)}
        return np.asarray([lookup.get(str(s), -1) for s in clips.subjects], dtype=np.int64)
    labels = labels_onto(clips.class_names, clips.labels, class_names)
    if clips.is_segmented:
        seqs = np.asarray([str(s) for s in clips.sequences], dtype=object)
        expression = np.asarray([str(s) != "neutral-neutral" for s in clips.segments])
        dropped = set(seqs[expression & (labels < 0)].tolist())
        if dropped:
            labels[np.isin(seqs, list(dropped))] = -1
    return labels


# --------------------------------------------------------------------------- samples


@dataclass
class Samples:
    """Model-ready uint8 arrays (one per input name), labels, and the owning clip."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    clip_index: np.ndarray

    def __len__(self) -> int:
        return int(len(self.labels))

    def subset(self, clip_index: np.ndarray) -> "Samples":
        rows = np.flatnonzero(np.isin(self.clip_index, clip_index))
        return Samples({k: v[rows] for k, v in self.inputs.items()}, self.labels[rows], self.clip_index[rows])

    @staticmethod
    def concat(parts: Sequence["Samples"]) -> "Samples":
        parts = [p for p in parts if len(p)] or list(parts[:1])
        names = list(parts[0].inputs)
        shapes = {n: {p.inputs[n].shape[1:] for p in parts} for n in names}
        bad = [n for n, s in shapes.items() if len(s) > 1]
        if bad:
            raise FercliError(f"the data artifacts give '{bad[0]}' inputs of different shapes ({', '.join('x'.join(map(str, s)) for s in sorted(shapes[bad[0]]))}): give --size to resize them all")
        return Samples({n: np.concatenate([p.inputs[n] for p in parts]) for n in names}, np.concatenate([p.labels for p in parts]),
                       np.concatenate([p.clip_index for p in parts]))


def _image_picks(clips: Clips, index: np.ndarray, labels: np.ndarray, class_names: Sequence[str], frame: str):
    """(frame indices, sample labels, owning clip) of the image samples of clips ``index``."""
    starts, lengths, clip_labels_ = clips.offsets[index], clips.lengths[index], labels[index]
    if frame == "last":
        return starts + lengths - 1, clip_labels_.copy(), index.copy()
    if frame == "all":
        return concat_ranges(starts, starts + lengths), np.repeat(clip_labels_, lengths), np.repeat(index, lengths)
    if frame != "first-last":
        raise FercliError(f"--frame must be last, first-last or all, not '{frame}'")
    lower = [class_key(c) for c in class_names]
    if NEUTRAL not in lower:
        raise FercliError("--frame first-last labels the first frames 'neutral', but the model has no 'neutral' class")
    neutral = lower.index(NEUTRAL)
    picks, labs, owner = [], [], []
    for i, s, n, lab in zip(index, starts, lengths, clip_labels_):
        if n == 1:  # a still image is its own peak
            picks.append([s])
            labs.append([lab])
            owner.append([i])
            continue
        k = max(1, min(FIRST_LAST_FRAMES, n // 2))
        picks.append(np.r_[np.arange(s, s + k), np.arange(s + n - k, s + n)])
        labs.append([neutral] * k + [lab] * k)
        owner.append([i] * (2 * k))
    cat = lambda xs: np.concatenate([np.asarray(x, np.int64) for x in xs]) if xs else np.zeros(0, np.int64)  # noqa: E731
    return cat(picks), cat(labs), cat(owner)


def sample_labels(clips: Clips, index: np.ndarray, labels: np.ndarray, class_names: Sequence[str], spec: SampleSpec) -> np.ndarray:
    """The labels :func:`build_samples` would give, without touching a frame (per-class counts)."""
    return sample_owners(clips, index, labels, class_names, spec)[0]


def sample_owners(clips: Clips, index: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                  spec: SampleSpec) -> tuple[np.ndarray, np.ndarray]:
    """(label, owning clip) of every sample :func:`build_samples` would make of clips
    ``index``, in its order (a clip's samples together, clips in ``index`` order), without
    touching a frame."""
    index = np.asarray(index, dtype=np.int64)
    if "image" in spec.input_names:
        return _image_picks(clips, index, labels, class_names, spec.frame)[1:]
    return labels[index].astype(np.int64), index.copy()


def check_layout(clips: Clips, index: np.ndarray, spec: SampleSpec) -> None:
    """Refuse, with a sentence, clips ``index`` that cannot become ``spec``'s inputs
    (lengths and code maps only: no frame is read, so training checks all its data first)."""
    index = np.asarray(index, dtype=np.int64)
    if "image" in spec.input_names and len(spec.input_names) > 1:
        raise FercliError("a model cannot take single frames together with other inputs")
    for name in spec.input_names:
        if name == "clip" and not spec.frames:
            lengths = clips.lengths[index]
            if len(lengths) and not np.all(lengths == lengths[0]):
                raise FercliError(f"this model needs fixed-length clips but they have {lengths.min()}..{lengths.max()} frames: run fercli resample -n N first (or give --frames N)")
        elif name in PLANE_INPUTS:
            if name not in clips.planes:
                have = ", ".join(sorted(clips.planes)) or "none"
                raise FercliError(f"this model needs LBP-TOP '{name}' code maps (the data has {have}): run fercli lbptop first")
            po = clips.plane_offsets
            counts = po[index + 1] - po[index]
            if len(counts) and not np.all(counts == counts[0]):
                raise FercliError(f"the '{name}' code maps differ in number per clip ({counts.min()}..{counts.max()})")
        elif name not in ("image", "clip"):
            raise FercliError(f"the engine cannot feed a model input named '{name}'")


def build_samples(clips: Clips, index: np.ndarray, labels: np.ndarray, class_names: Sequence[str], spec: SampleSpec) -> Samples:
    """uint8 arrays for clips ``index`` in the layout of each of ``spec``'s inputs.

    A pure function of (clips, indices, spec): a reader that streams data larger
    than memory can call it chunk by chunk.
    """
    index = np.asarray(index, dtype=np.int64)
    check_layout(clips, index, spec)
    arrays: dict[str, np.ndarray] = {}
    lengths = clips.lengths[index]
    starts = clips.offsets[index]
    for name in spec.input_names:
        if name == "image":
            pick, sample_labels_, owner = _image_picks(clips, index, labels, class_names, spec.frame)
            arrays[name] = to_channels(resize_frames(clips.frames[pick], spec.size), spec.channels)
            return Samples(arrays, sample_labels_, owner)
        if name == "clip":
            if spec.frames:
                # On-the-fly resampling: evenly spaced frame indices (nearest), the
                # first and last frame always kept (neutral onset .. peak).
                pos = [s + np.rint(np.linspace(0, n - 1, spec.frames)).astype(np.int64) for s, n in zip(starts, lengths)]
                pick = np.concatenate(pos) if pos else np.zeros(0, np.int64)
                t = spec.frames
            else:
                t = int(lengths[0]) if len(lengths) else 1
                pick = concat_ranges(starts, starts + lengths)
            x = to_channels(resize_frames(clips.frames[pick], spec.size), spec.channels)
            arrays[name] = x.reshape(len(index), t, *x.shape[1:])
        else:
            po = clips.plane_offsets
            m = int(po[index[0] + 1] - po[index[0]]) if len(index) else 1
            maps = clips.planes[name][concat_ranges(po[index], po[index + 1])]
            arrays[name] = maps.reshape(len(index), m, 1, *maps.shape[1:])
    return Samples(arrays, labels[index].astype(np.int64), index)


class SampleReader:
    """The samples of clips ``rows`` of one or more data sets, numbered 0..n-1 in the order
    :func:`build_samples` + :meth:`Samples.concat` give them, known without reading a
    frame (labels, owning clip, shapes); :meth:`read` builds just the samples asked for,
    a piece of clips at a time, so data larger than memory is read in loads (train's
    streaming mode, evaluate).  ``sets``: per data set (clips, rows, per-clip labels).
    """

    #: Most samples built at once while reading (bounds the memory of a read beyond its result).
    PIECE_BYTES = 16 << 20

    def __init__(self, sets: Sequence[tuple[Clips, np.ndarray, np.ndarray]], class_names: Sequence[str], spec: SampleSpec):
        self.class_names, self.spec = list(class_names), spec
        self.sets = [(c, np.asarray(r, np.int64), lab) for c, r, lab in sets if len(r)]
        labels, owners, self._pos, self._first, self._count, starts = [], [], [], [], [], [0]
        for clips, rows, lab in self.sets:
            check_layout(clips, rows, spec)  # every clip, before any is read
            y, owner = sample_owners(clips, rows, lab, class_names, spec)
            # position of each sample's clip in ``rows`` (a clip's samples are consecutive, clips in ``rows`` order)
            order = np.argsort(rows, kind="stable")
            pos = order[np.searchsorted(rows, owner, sorter=order)] if len(owner) else np.zeros(0, np.int64)
            count = np.bincount(pos, minlength=len(rows))
            labels.append(y)
            owners.append(owner)
            self._pos.append(pos)
            self._count.append(count)
            self._first.append(np.cumsum(count) - count)
            starts.append(starts[-1] + len(y))
        self._starts = np.asarray(starts, np.int64)
        self.labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        self.clip_index = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        # One clip of every data set: the per-sample layout (and one sentence if they differ).
        probe = Samples.concat([build_samples(c, r[:1], lab, class_names, spec) for c, r, lab in self.sets]) if self.sets else None
        self.shapes = {k: v.shape[1:] for k, v in probe.inputs.items()} if probe is not None else {}
        self.sample_bytes = sum(int(np.prod(s, dtype=np.int64)) for s in self.shapes.values()) + 8  # uint8 inputs + int64 label

    def __len__(self) -> int:
        return int(len(self.labels))

    @property
    def nbytes(self) -> int:
        return len(self) * self.sample_bytes

    def read_all(self) -> Samples:
        return self.read(np.arange(len(self)))

    def read(self, want: np.ndarray) -> Samples:
        """Samples ``want`` (sorted, unique sample numbers) as uint8 arrays, in that order."""
        want = np.asarray(want, np.int64)
        out = {k: np.empty((len(want), *s), np.uint8) for k, s in self.shapes.items()}
        piece = max(1, self.PIECE_BYTES // self.sample_bytes)
        done = 0
        for d, (clips, rows, lab) in enumerate(self.sets):
            lo, hi = np.searchsorted(want, self._starts[d:d + 2])
            local = want[lo:hi] - self._starts[d]
            pos = self._pos[d][local]
            clips_needed, first_needed = np.unique(pos, return_index=True)
            # pieces of whole clips, about ``piece`` samples each
            sizes = self._count[d][clips_needed]
            group = (np.cumsum(sizes) - sizes) // piece
            for part in np.split(np.arange(len(clips_needed)), np.flatnonzero(np.diff(group)) + 1):
                if not len(part):
                    continue
                built = build_samples(clips, rows[clips_needed[part]], lab, self.class_names, self.spec)
                built_first = np.cumsum(sizes[part]) - sizes[part]
                a = int(first_needed[part[0]])
                b = int(first_needed[part[-1] + 1]) if part[-1] + 1 < len(clips_needed) else len(local)
                k = np.searchsorted(clips_needed[part], pos[a:b])
                at = built_first[k] + (local[a:b] - self._first[d][pos[a:b]])
                for name, arr in built.inputs.items():
                    out[name][done:done + (b - a)] = arr[at]
                done += b - a
        return Samples(out, self.labels[want], self.clip_index[want])


def to_float(x):
    """uint8 pixels or LBP codes -> float32 in [0, 1] (a torch tensor or a numpy array)."""
    if isinstance(x, np.ndarray):
        return x.astype(np.float32) / np.float32(255.0)
    return x.float().div_(255.0)
