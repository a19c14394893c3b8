"""Join 'clips' artifacts: shards of one run, or several databases (thesis 4.2.7, Table 4.1).

Cluster job arrays (``fercli align --shard i/n``, ``fercli lbptop --shard``)
write one artifact per shard; merging them in shard order gives back the
unsharded arrays byte for byte.  Cross-database training (CK+ with Oulu-CASIA,
4.2.7) merges datasets prepared with the same parameters.

Compatibility rules, each refused with a sentence naming the difference:

- same frame shape and colour (``(H, W)`` vs ``(H, W, 3)``);
- the same per-frame data (landmarks, face_found) and per-clip descriptors
  (LBP planes with equal map shapes, histograms of equal width);
- equal values of the *parameter* meta keys (:data:`PARAMETER_KEYS`: alignment,
  size, colour, frames per clip, LBP and histogram parameters), a key missing
  from one input counting as a difference.  Other meta keys describe where
  the data came from (dataset, shard, ...): they are kept when all inputs agree
  and become the list of distinct values in input order when they do not
  (``shard`` is dropped: a merge of shards is no longer a shard).

Class names and ids are joined by the experiment protocol's one rule, the rule
``fercli train A B`` uses (:mod:`fercli.protocol.join`): classes matched
case-insensitively, the first spelling wins, the union in order of first
appearance over the inputs in the order given (so A's classes keep their ids),
labels remapped.  Clip ids must be unique across inputs; ``prefix_ids`` makes
them so as ``<file stem>:<id>`` (original sequence ids likewise).  Subjects are
kept as they are (one subject may span several shards; the lineage says which
data origins the merged subjects come from).  ``split`` and ``folds`` present in
only some inputs are filled with '' (no official partition) and -1
(unassigned); ``--ckplus-split`` segments with '' (a whole sequence).  The
trace of each frame to its source video (source frame index, transform, face
box, detector score, fps) is carried over (:func:`merge_trace`).
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import numpy as np

from fercli.artifacts import CLIP_TRACE_FIELDS, TRACE_FIELDS, Clips
from fercli.errors import FercliError
from fercli.protocol.join import join_class_names, remap_labels

#: Meta keys that are processing parameters: inputs must agree on them.
PARAMETER_KEYS = ("align", "size", "aligned", "color", "frames_per_clip", "lbp", "lbp_histogram")

#: Values computed from other parameters: named last when explaining a difference.
DERIVED_KEYS = ("codes", "map_shape", "margin", "skimage_method", "dim", "bins", "crop_side", "crop_centre_y", "box_scale")

#: Meta keys that only describe one input and make no sense after a merge.
DROPPED_KEYS = ("shard",)


def stem(path: str) -> str:
    if path == "-":
        return "stdin"
    base = os.path.basename(path)
    for ext in (".h5", ".hdf5", ".hdf"):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def check_compatible(parts: Sequence[Clips], names: Sequence[str]) -> None:
    """Raise one sentence for the first difference that makes a merge meaningless."""
    ref, ref_name = parts[0], names[0]
    for part, name in zip(parts[1:], names[1:]):
        pair = f"{ref_name} and {name}"
        if (len(ref) and len(part)) and ref.frame_shape != part.frame_shape:
            what = lambda s: ("x".join(map(str, s[:2])) + (" colour" if len(s) == 3 and s[2] == 3 else " gray"))  # noqa: E731
            raise FercliError(f"cannot merge {pair}: frames of {what(ref.frame_shape)} vs {what(part.frame_shape)}")
        for attr, label in (("landmarks", "landmarks"), ("face_found", "face_found flags")):
            if (getattr(ref, attr) is None) != (getattr(part, attr) is None):
                has, lacks = (ref_name, name) if getattr(ref, attr) is not None else (name, ref_name)
                raise FercliError(f"cannot merge {pair}: {has} has {label} and {lacks} has none")
        if sorted(ref.planes) != sorted(part.planes):
            show = lambda c: ",".join(sorted(c.planes)) or "none"  # noqa: E731
            raise FercliError(f"cannot merge {pair}: LBP-TOP planes {show(ref)} vs {show(part)}")
        for key in ref.planes:
            a, b = ref.planes[key].shape[1:], part.planes[key].shape[1:]
            if (len(ref.planes[key]) and len(part.planes[key])) and a != b:
                raise FercliError(f"cannot merge {pair}: {key} code maps of {a[1]}x{a[0]} vs {b[1]}x{b[0]}")
        if (ref.histograms is None) != (part.histograms is None):
            has, lacks = (ref_name, name) if ref.histograms is not None else (name, ref_name)
            raise FercliError(f"cannot merge {pair}: {has} has LBP-TOP histograms and {lacks} has none")
        if ref.histograms is not None and ref.histograms.shape[1] != part.histograms.shape[1]:
            raise FercliError(f"cannot merge {pair}: histograms of {ref.histograms.shape[1]} vs {part.histograms.shape[1]} values")
        for key in PARAMETER_KEYS:
            in_ref, in_part = key in ref.meta, key in part.meta
            if in_ref != in_part:
                has, lacks = (ref_name, name) if in_ref else (name, ref_name)
                raise FercliError(f"cannot merge {pair}: {has} has '{key}' parameters ({_show(ref.meta.get(key, part.meta.get(key)))}) and {lacks} has none")
            if in_ref and not _same(ref.meta[key], part.meta[key]):
                raise FercliError(f"cannot merge {pair}: different '{key}' parameters ({_difference(ref.meta[key], part.meta[key])})")


def _show(value, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _difference(a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        # Name a chosen parameter before the values derived from it (codes, shapes).
        keys = sorted(set(a) | set(b), key=lambda k: (k in DERIVED_KEYS, k))
        for key in keys:
            if not _same(a.get(key), b.get(key)):
                return f"{key}: {_show(a.get(key), 40)} vs {_show(b.get(key), 40)}"
    return f"{_show(a, 40)} vs {_show(b, 40)}"


def merge_meta(parts: Sequence[Clips]) -> dict:
    out: dict = {}
    keys: list[str] = []
    for part in parts:
        keys += [k for k in part.meta if k not in keys]
    for key in keys:
        if key in DROPPED_KEYS:
            continue
        if key in PARAMETER_KEYS:
            out[key] = parts[0].meta[key]
            continue
        values = []
        for part in parts:
            if key in part.meta and not any(_same(part.meta[key], v) for v in values):
                values.append(part.meta[key])
        out[key] = values[0] if len(values) == 1 else values
    return out


def merge(parts: Sequence[Clips], names: Sequence[str], prefix_ids: bool = False, stems: Optional[Sequence[str]] = None) -> Clips:
    """Concatenate ``parts`` in order (see the module docstring for the rules).

    ``names`` name the inputs in messages; ``stems`` (default: from ``names``)
    are the ``--prefix-ids`` namespaces.
    """
    stems = list(stems) if stems is not None else [stem(n) for n in names]
    if not parts:
        raise FercliError("merge needs at least one input artifact")
    check_compatible(parts, names)

    class_names, lookups = join_class_names([p.class_names for p in parts])
    labels = [remap_labels(part.labels, lookup) for part, lookup in zip(parts, lookups)]

    def namespaced(values: np.ndarray, prefix: str) -> np.ndarray:
        return np.asarray([f"{prefix}:{c}" for c in values], dtype=object) if prefix_ids else values

    ids = [namespaced(part.clip_ids, prefix) for part, prefix in zip(parts, stems)]
    any_segments = any(p.segments is not None for p in parts)
    sequence_ids = [namespaced(part.sequences, prefix) for part, prefix in zip(parts, stems)] if any_segments or any(p.sequence_ids is not None for p in parts) else None
    owner: dict[str, int] = {}
    for k, part_ids in enumerate(ids):
        for c in part_ids:
            j = owner.setdefault(str(c), k)
            if j != k:
                hint = "give the inputs distinct file names" if prefix_ids else "use --prefix-ids to namespace them by file name"
                raise FercliError(f"clip id '{c}' is in both {names[j]} and {names[k]}: {hint}")

    def cat(attr: str, fill=None) -> Optional[np.ndarray]:
        values = [getattr(p, attr) for p in parts]
        if all(v is None for v in values):
            return None
        return np.concatenate([v if v is not None else np.full(len(p), fill, dtype=object if isinstance(fill, str) else np.int64) for v, p in zip(values, parts)])

    frames = _concat_frames(parts)
    offsets = np.zeros(sum(len(p) for p in parts) + 1, dtype=np.int64)
    np.cumsum(np.concatenate([p.lengths for p in parts]) if parts else [], out=offsets[1:])
    planes: dict[str, np.ndarray] = {}
    plane_offsets = None
    if parts[0].planes:
        for key in parts[0].planes:
            planes[key] = np.concatenate([p.planes[key] for p in parts])
        plane_offsets = np.zeros(len(offsets), dtype=np.int64)
        np.cumsum(np.concatenate([np.diff(p.plane_offsets) for p in parts]), out=plane_offsets[1:])
    histograms = np.concatenate([p.histograms for p in parts]) if parts[0].histograms is not None else None
    out = Clips(
        frames=frames,
        offsets=offsets,
        labels=np.concatenate(labels),
        class_names=class_names,
        subjects=np.concatenate([p.subjects for p in parts]),
        clip_ids=np.concatenate(ids),
        sources=np.concatenate([p.sources for p in parts]),
        landmarks=np.concatenate([p.landmarks for p in parts]) if parts[0].landmarks is not None else None,
        face_found=np.concatenate([p.face_found for p in parts]) if parts[0].face_found is not None else None,
        split=cat("split", ""),
        folds=cat("folds", -1),
        segments=cat("segments", ""),
        sequence_ids=np.concatenate(sequence_ids) if sequence_ids is not None else None,
        planes=planes,
        plane_offsets=plane_offsets,
        histograms=histograms,
        meta=merge_meta(parts),
        **merge_trace(parts),
    )
    out.validate("merged clips")
    return out


def merge_trace(parts: Sequence[Clips]) -> dict[str, Optional[np.ndarray]]:
    """Trace arrays (source frame, transform, box, score; fps and face id per clip) of the merged
    clips: kept when any input has them, an input without them filling in what
    it does know (its own transform: identity unless it was aligned) or the
    'unknown' value (-1 source frame, NaN)."""
    out: dict[str, Optional[np.ndarray]] = {}
    for name, (shape, dtype) in TRACE_FIELDS.items():
        if all(getattr(p, name) is None for p in parts):
            continue
        fill = -1 if name == "source_frame" else np.nan
        out[name] = np.concatenate([
            getattr(p, name) if getattr(p, name) is not None
            else p.source_transform() if name == "transform"
            else np.full((len(p.frames), *shape), fill, dtype) for p in parts]).astype(dtype)
    for name, (dtype, fill) in CLIP_TRACE_FIELDS.items():
        if any(getattr(p, name) is not None for p in parts):
            out[name] = np.concatenate([getattr(p, name) if getattr(p, name) is not None else np.full(len(p), fill, dtype)
                                        for p in parts]).astype(dtype)
    return out


def _concat_frames(parts: Sequence[Clips]) -> np.ndarray:
    # An input without clips may carry a placeholder frame shape; it adds no frames.
    shaped = [p.frames for p in parts if len(p)] or [parts[0].frames]
    return np.concatenate(shaped)
