"""Clips -> uint8 arrays by model input name, labels, and train/test partitions.

The one training engine (thesis 3.2-3.3, 4.3.1, 5.3.1) feeds every model from the
same code: a model declares its forward inputs (``fercli.models.registry``) and
this module builds one uint8 array per input name.  Conversion to float and
augmentation happen later, on the device, per batch (``augment.py``), so the
data sets of the thesis (thousands of small faces) live whole in device memory.

- ``image`` (N, C, H, W): one frame per sample.  ``frame='last'`` takes the peak
  (last) frame of a sequence as in 3.2.2-3.2.3; ``'first-last'`` takes the first
  and the last three frames as neutral / peak samples as in 4.3.1 (needs a
  'neutral' class); ``'all'`` every frame with its clip's label.  One-frame clips
  (FER2013, CIFAR-10) are used as they are.
- ``clip`` (N, T, C, H, W): fixed-length clips (``fercli resample -n T``), or
  resampled here to ``frames`` evenly spaced frames.
- ``xt`` / ``yt`` / ``xy`` (N, M, 1, h, w): LBP-TOP code maps (``fercli lbptop``).

Partitions: subject-independent folds (``clips.folds`` written by ``fercli
split``, or computed with ``fercli.split.assign_folds``) or the official split
(see :data:`TRAIN_PARTS`, :data:`TEST_PARTS`, :data:`VAL_PARTS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from fercli.artifacts import Clips
from fercli.errors import FercliError

# Official partitions, compared in lower case.  FER2013's 'PublicTest' is its
# validation part and 'PrivateTest' its test part (the thesis reports the latter);
# a data set with only train/val (e.g. AFEW 'Train'/'Val') is tested on 'val'.
TRAIN_PARTS = {"train", "training"}
TEST_PARTS = {"test", "testing", "privatetest"}
VAL_PARTS = {"val", "valid", "validation", "publictest"}

PLANE_INPUTS = ("xt", "yt", "xy")


# --------------------------------------------------------------------------- data sets


def concat_clips(parts: Sequence[Clips], names: Sequence[str]) -> Clips:
    """Concatenate several data artifacts (cross-database training, Table 4.1).

    Class names are reconciled by name (case-insensitive; the first spelling
    wins), labels remapped to the union; optional arrays are kept only when every
    part has them.
    """
    if len(parts) == 1:
        return parts[0]
    shapes = {p.frame_shape for p in parts}
    if len(shapes) > 1:
        raise FercliError(f"the data artifacts have different frame shapes ({', '.join('x'.join(map(str, s)) for s in sorted(shapes))}): give --size to resize them all")
    classes: list[str] = []
    index: dict[str, int] = {}
    for p in parts:
        for c in p.class_names:
            if c.lower() not in index:
                index[c.lower()] = len(classes)
                classes.append(c)
    labels, seqs_offsets = [], []
    for p in parts:
        remap = np.asarray([index[c.lower()] for c in p.class_names] + [-1], dtype=np.int64)
        labels.append(remap[p.labels])  # label -1 (unlabelled) maps to the trailing -1
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for p in parts:
        offsets.append(p.offsets[1:] + base)
        base += int(p.offsets[-1])
    def cat(attr: str, fill=None):
        values = [getattr(p, attr) for p in parts]
        if all(v is not None for v in values):
            return np.concatenate(values)
        return None
    split = None
    if any(p.split is not None for p in parts):
        split = np.concatenate([p.split if p.split is not None else np.asarray([""] * len(p), dtype=object) for p in parts])
    planes, plane_offsets = {}, None
    keys = [set(p.planes) for p in parts]
    if all(keys) and all(k == keys[0] for k in keys) and len({p.planes[next(iter(keys[0]))].shape[1:] for p in parts}) == 1:
        planes = {k: np.concatenate([p.planes[k] for p in parts]) for k in keys[0]}
        po, b = [np.zeros(1, np.int64)], 0
        for p in parts:
            po.append(p.plane_offsets[1:] + b)
            b += int(p.plane_offsets[-1])
        plane_offsets = np.concatenate(po)
    # Subjects of different data sets never coincide: prefix with the source name
    # so subject-independent folds stay subject-independent across databases.
    subjects = np.concatenate([np.asarray([f"{n}:{s}" for s in p.subjects], dtype=object) for p, n in zip(parts, names)])
    return Clips(
        frames=np.concatenate([p.frames for p in parts]),
        offsets=np.concatenate(offsets),
        labels=np.concatenate(labels),
        class_names=classes,
        subjects=subjects,
        clip_ids=np.concatenate([p.clip_ids for p in parts]),
        sources=np.concatenate([p.sources for p in parts]),
        split=split,
        folds=cat("folds"),
        planes=planes,
        plane_offsets=plane_offsets,
        meta=dict(parts[0].meta),
    )


def task_labels(clips: Clips, task: str) -> tuple[np.ndarray, list[str]]:
    """Per-clip labels and class names for ``task`` ('expression' | 'identity')."""
    if task == "expression":
        return clips.labels.copy(), list(clips.class_names)
    if task == "identity":
        # 4.2.6 stage 1: face identities as classes (VGGFace in the thesis).
        names = sorted(set(map(str, clips.subjects.tolist())))
        lookup = {s: i for i, s in enumerate(names)}
        return np.asarray([lookup[str(s)] for s in clips.subjects], dtype=np.int64), names
    raise FercliError(f"--task must be 'expression' or 'identity', not '{task}'")


# --------------------------------------------------------------------------- partitions


@dataclass
class Partition:
    """Clip indices of one experiment: train on ``train``, report on ``test``."""

    name: str  # 'fold 3', 'official split', 'all data'
    fold: Optional[int]
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def fold_assignment(clips: Clips, n_folds: int, seed: int) -> tuple[np.ndarray, str]:
    """Per-clip fold ids: from the artifact (``fercli split``) or computed by subject."""
    if clips.folds is not None and np.any(clips.folds >= 0):
        return np.asarray(clips.folds, dtype=np.int64), "artifact"
    try:
        from fercli.split import assign_folds
    except ImportError:
        raise FercliError("the data has no folds: run fercli split first") from None
    folds = np.asarray(assign_folds(clips, n_folds, by="subject", seed=seed), dtype=np.int64)
    return folds, f"computed: {n_folds} folds by subject, seed {seed}"


def official_parts(split: Optional[np.ndarray]) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(train, val, test) clip indices of the official split, or None without one."""
    if split is None:
        return None
    low = np.asarray([str(s).lower() for s in split], dtype=object)
    train = np.flatnonzero(np.isin(low, list(TRAIN_PARTS)))
    val = np.flatnonzero(np.isin(low, list(VAL_PARTS)))
    test = np.flatnonzero(np.isin(low, list(TEST_PARTS)))
    if not len(train):
        return None
    if not len(test):  # train/val data sets are tested on val
        test, val = val, np.zeros(0, np.int64)
    return train, val, test


def partitions(clips: Clips, fold: Optional[int], all_folds: bool, n_folds: int, seed: int, val: float = 0.0) -> tuple[list[Partition], dict]:
    """The experiments to run and how their parts were chosen (for the record).

    ``val`` > 0 holds out that fraction of the training subjects as a validation
    part (reported per epoch, never trained on).
    """
    labelled = np.flatnonzero(clips.labels >= 0)
    info: dict = {}
    out: list[Partition] = []
    if fold is not None or all_folds:
        ids, source = fold_assignment(clips, n_folds, seed)
        present = sorted(int(k) for k in np.unique(ids[labelled]) if k >= 0)
        info = {"scheme": "folds", "fold_source": source, "folds_present": present, "n_folds": n_folds, "fold_seed": seed}
        wanted = present if all_folds else [fold]
        for k in wanted:
            if k not in present:
                raise FercliError(f"--fold {k} is not in the data (its folds are {', '.join(map(str, present))})")
            test = labelled[ids[labelled] == k]
            train = labelled[(ids[labelled] != k) & (ids[labelled] >= 0)]
            out.append(Partition(f"fold {k}", k, train, test))
    else:
        parts = official_parts(clips.split)
        if parts is not None:
            tr, va, te = (np.intersect1d(p, labelled) for p in parts)
            info = {"scheme": "official split", "mapping": {"train": sorted(TRAIN_PARTS), "val": sorted(VAL_PARTS), "test": sorted(TEST_PARTS)}}
            out.append(Partition("official split", None, tr, te, va))
        else:
            info = {"scheme": "all data (no test part)"}
            out.append(Partition("all data", None, labelled, np.zeros(0, np.int64)))
    if val > 0:
        for p in out:
            subjects = np.unique(clips.subjects[p.train].astype(str))
            rng = np.random.default_rng(seed + 7919)
            chosen = rng.choice(subjects, size=max(1, int(round(val * len(subjects)))), replace=False)
            mask = np.isin(clips.subjects[p.train].astype(str), chosen)
            p.val, p.train = p.train[mask], p.train[~mask]
        info["val_fraction"] = val
    for p in out:
        if not len(p.train):
            raise FercliError(f"{p.name} leaves no labelled clips to train on")
    return out, info


# --------------------------------------------------------------------------- arrays


def _to_channels(frames: np.ndarray, channels: int) -> np.ndarray:
    """(F, H, W[, 3]) uint8 -> (F, C, H, W) uint8 with C = ``channels``."""
    if frames.ndim == 3:
        frames = frames[:, None]
    else:
        frames = np.moveaxis(frames, -1, 1)
    have = frames.shape[1]
    if have == channels:
        return np.ascontiguousarray(frames)
    if have == 1 and channels == 3:
        return np.repeat(frames, 3, axis=1)
    if have == 3 and channels == 1:
        # ITU-R 601 luma, assuming RGB order (what fercli ingest stores).
        gray = frames[:, 0] * 0.299 + frames[:, 1] * 0.587 + frames[:, 2] * 0.114
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[:, None]
    raise FercliError(f"cannot turn {have}-channel frames into {channels} channels")


def resize_frames(frames: np.ndarray, size: Optional[tuple[int, int]]) -> np.ndarray:
    """Resize (F, H, W[, 3]) uint8 frames to ``size`` = (w, h); no-op when equal."""
    if size is None or (frames.shape[2], frames.shape[1]) == tuple(size):
        return frames
    import cv2

    shrinking = size[0] < frames.shape[2]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = np.empty((len(frames), size[1], size[0], *frames.shape[3:]), np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, tuple(size), interpolation=interp).reshape(out.shape[1:])
    return out


@dataclass
class Samples:
    """Model-ready uint8 arrays (one per input name), labels, and the owning clip."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    clip_index: np.ndarray

    def __len__(self) -> int:
        return int(len(self.labels))


def build_samples(
    clips: Clips,
    index: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    input_names: Sequence[str],
    channels: int,
    frame: str = "last",
    frames: Optional[int] = None,
    size: Optional[tuple[int, int]] = None,
) -> Samples:
    """uint8 arrays for clips ``index`` in the layout of each input name."""
    index = np.asarray(index, dtype=np.int64)
    arrays: dict[str, np.ndarray] = {}
    sample_labels = labels[index]
    owner = index
    lengths = clips.lengths[index]
    starts = clips.offsets[index]
    for name in input_names:
        if name == "image":
            if frame == "last":
                picks = [np.asarray([s + n - 1]) for s, n in zip(starts, lengths)]
                labs = [np.asarray([l]) for l in sample_labels]
            elif frame == "all":
                picks = [np.arange(s, s + n) for s, n in zip(starts, lengths)]
                labs = [np.full(n, l) for n, l in zip(lengths, sample_labels)]
            elif frame == "first-last":
                lower = [c.lower() for c in class_names]
                if "neutral" not in lower:
                    raise FercliError("--frame first-last labels the first frames 'neutral', but the data has no 'neutral' class")
                neutral = lower.index("neutral")
                picks, labs = [], []
                for s, n, l in zip(starts, lengths, sample_labels):
                    if n == 1:  # a still image is its own peak
                        picks.append(np.asarray([s]))
                        labs.append(np.asarray([l]))
                        continue
                    k = max(1, min(3, n // 2))  # 4.3.1: first and last 3 frames
                    picks.append(np.r_[np.arange(s, s + k), np.arange(s + n - k, s + n)])
                    labs.append(np.r_[np.full(k, neutral), np.full(k, l)])
            else:
                raise FercliError(f"--frame must be last, first-last or all, not '{frame}'")
            pick = np.concatenate(picks) if picks else np.zeros(0, np.int64)
            new_labels = np.concatenate(labs).astype(np.int64) if labs else np.zeros(0, np.int64)
            owner = np.repeat(index, [len(p) for p in picks]) if picks else index[:0]
            sample_labels_img = new_labels
            arrays[name] = _to_channels(resize_frames(clips.frames[pick], size), channels)
        elif name == "clip":
            if frames:
                # On-the-fly resampling: evenly spaced frame indices (nearest), the
                # first and last frame always kept (neutral onset .. peak).
                pos = [s + np.rint(np.linspace(0, n - 1, frames)).astype(np.int64) for s, n in zip(starts, lengths)]
                pick = np.concatenate(pos) if pos else np.zeros(0, np.int64)
                t = frames
            else:
                if len(lengths) and not np.all(lengths == lengths[0]):
                    raise FercliError(f"this model needs fixed-length clips but they have {lengths.min()}..{lengths.max()} frames: run fercli resample -n N first (or give --frames N)")
                t = int(lengths[0]) if len(lengths) else 1
                pick = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)]) if len(starts) else np.zeros(0, np.int64)
            x = _to_channels(resize_frames(clips.frames[pick], size), channels)
            arrays[name] = x.reshape(len(index), t, *x.shape[1:])
        elif name in PLANE_INPUTS:
            if name not in clips.planes:
                have = ", ".join(sorted(clips.planes)) or "none"
                raise FercliError(f"this model needs LBP-TOP '{name}' code maps (the data has {have}): run fercli lbptop first")
            po = clips.plane_offsets
            counts = po[index + 1] - po[index]
            if len(counts) and not np.all(counts == counts[0]):
                raise FercliError(f"the '{name}' code maps differ in number per clip ({counts.min()}..{counts.max()})")
            m = int(counts[0]) if len(counts) else 1
            pick = np.concatenate([np.arange(po[i], po[i + 1]) for i in index]) if len(index) else np.zeros(0, np.int64)
            maps = clips.planes[name][pick]
            arrays[name] = maps.reshape(len(index), m, 1, *maps.shape[1:])
        else:
            raise FercliError(f"the engine cannot feed a model input named '{name}'")
    if "image" in arrays:
        if len(input_names) > 1:
            raise FercliError("a model cannot take single frames together with other inputs")
        return Samples(arrays, sample_labels_img, owner)
    return Samples(arrays, sample_labels.astype(np.int64), index)
