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
box, detector score, fps) is carried over, an input without it filling in what
it does know (its own transform: identity unless it was aligned) or the
'unknown' value (-1 source frame, NaN): every optional field of the schema
(:data:`~fercli.artifacts.CLIP_FIELDS`) some input has is in the output, with
the field's ``fill`` (or :data:`DERIVED_FILLS`) for the inputs that lack it.

The rules are decided from the inputs' per-clip arrays before any frame is read
(:func:`plan_merge`); ``fercli merge`` then streams every input in order into one
output, a batch of clips at a time (:func:`write_merged`), so its memory does not
grow with the inputs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from fercli.artifacts import CLIP_FIELDS, OPTIONAL_FIELDS, ClipReader, Clips, ClipWriter
from fercli.clipstream import map_clips
from fercli.errors import FercliError
from fercli.progress import ProgressFn, report
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


@dataclass
class MergePlan:
    """What a merge does, decided from the inputs' headers before any frame is read:
    the joined class names and each input's label lookup, each input's id namespace
    (None: ids kept), the optional fields of the output and its meta."""

    class_names: list[str]
    lookups: list[np.ndarray]
    prefixes: list[Optional[str]]
    fields: tuple[str, ...]
    meta: dict


#: Fields whose value for an input without them follows from its clips rather than
#: the schema's one ``fill``: its transform is the identity unless it was aligned
#: (:meth:`Clips.source_transform`), its clips are whole sequences of their own ids.
DERIVED_FILLS: dict[str, Callable[[Clips], np.ndarray]] = {
    "transform": lambda c: c.source_transform(),
    "sequence_ids": lambda c: c.sequences,
}
#: A field the output has whenever another one is there (a cut-up clip names its sequence).
IMPLIED_FIELDS = {"segments": "sequence_ids"}


def plan_merge(headers: Sequence[Clips], names: Sequence[str], prefix_ids: bool = False,
               stems: Optional[Sequence[str]] = None) -> MergePlan:
    """Check the inputs and decide the merge (see the module docstring for the rules).

    ``headers`` need only their per-clip arrays in memory (a
    :attr:`~fercli.artifacts.ClipReader.header`); ``names`` name the inputs in
    messages; ``stems`` (default: from ``names``) are the ``--prefix-ids`` namespaces.
    """
    if not headers:
        raise FercliError("merge needs at least one input artifact")
    stems = list(stems) if stems is not None else [stem(n) for n in names]
    check_compatible(headers, names)
    class_names, lookups = join_class_names([h.class_names for h in headers])
    prefixes: list[Optional[str]] = list(stems) if prefix_ids else [None] * len(headers)
    owner: dict[str, int] = {}
    for k, (header, prefix) in enumerate(zip(headers, prefixes)):
        for c in _namespaced(header.clip_ids, prefix):
            j = owner.setdefault(str(c), k)
            if j != k:
                hint = "give the inputs distinct file names" if prefix_ids else "use --prefix-ids to namespace them by file name"
                raise FercliError(f"clip id '{c}' is in both {names[j]} and {names[k]}: {hint}")
    present = {spec.name for spec in OPTIONAL_FIELDS if any(getattr(h, spec.name) is not None for h in headers)}
    present |= {IMPLIED_FIELDS[n] for n in present if n in IMPLIED_FIELDS}
    for spec in OPTIONAL_FIELDS:
        lacking = [name for h, name in zip(headers, names) if getattr(h, spec.name) is None]
        if spec.name in present and lacking and spec.fill is None and spec.name not in DERIVED_FILLS:
            raise FercliError(f"cannot merge: {lacking[0]} has no '{spec.dataset}' and the other inputs do")
    fields = tuple(spec.name for spec in OPTIONAL_FIELDS if spec.name in present)
    return MergePlan(class_names, lookups, prefixes, fields, merge_meta(headers))


def _namespaced(values: np.ndarray, prefix: Optional[str]) -> np.ndarray:
    return values if prefix is None else np.asarray([f"{prefix}:{c}" for c in values], dtype=object)


def as_merged(plan: MergePlan, k: int, clips: Clips) -> Clips:
    """Clips of input ``k`` (in memory: a batch, or all of them) as the merged artifact
    holds them: labels remapped to the joined classes, ids namespaced, every field of
    the output present (the schema's ``fill`` where the input lacks it), merged meta."""
    counts = {"clip": len(clips), "frame": len(clips.frames)}
    values: dict[str, Any] = {}
    for spec in OPTIONAL_FIELDS:
        value = getattr(clips, spec.name) if spec.name in plan.fields else None
        if value is None and spec.name in plan.fields:
            derive = DERIVED_FILLS.get(spec.name)
            value = derive(clips) if derive is not None else np.full((counts[spec.per], *spec.shape), spec.fill, dtype=spec.memory)
        values[spec.name] = value
    if values["sequence_ids"] is not None:
        values["sequence_ids"] = _namespaced(values["sequence_ids"], plan.prefixes[k])
    return dataclasses.replace(clips, labels=remap_labels(clips.labels, plan.lookups[k]), class_names=list(plan.class_names),
                               clip_ids=_namespaced(clips.clip_ids, plan.prefixes[k]), meta=dict(plan.meta), **values)


def merge(parts: Sequence[Clips], names: Sequence[str], prefix_ids: bool = False, stems: Optional[Sequence[str]] = None) -> Clips:
    """Concatenate in-memory ``parts`` in order (see the module docstring for the rules);
    ``fercli merge`` streams the same clips (:func:`write_merged`)."""
    plan = plan_merge(parts, names, prefix_ids, stems)
    out = concat([as_merged(plan, k, part) for k, part in enumerate(parts)])
    out.validate("merged clips")
    return out


def write_merged(readers: Sequence[ClipReader], writer: ClipWriter, plan: MergePlan,
                 progress: Optional[ProgressFn] = None) -> None:
    """Stream every input in order into ``writer``, a batch of clips at a time."""
    total = sum(len(r) for r in readers)
    done = 0
    for k, reader in enumerate(readers):
        def step(d: int, _: int, base: int = done) -> None:
            report(progress, base + d, total)
        map_clips(reader, writer, lambda batch, k=k: as_merged(plan, k, batch), step)
        done += len(reader)
    if writer.n_clips == 0:  # no clips at all: an empty artifact of the first input's layout
        writer.append(as_merged(plan, 0, readers[0].read(np.zeros(0, np.int64))))


def concat(parts: Sequence[Clips]) -> Clips:
    """In-memory clips of the same layout (fields, classes), one after another."""
    lengths = [p.lengths for p in parts]
    offsets = np.zeros(sum(len(p) for p in parts) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lengths) if lengths else [], out=offsets[1:])
    first = parts[0]
    values: dict[str, Any] = {}
    for spec in CLIP_FIELDS:
        if spec.name == "frames":
            values["frames"] = _concat_frames(parts)
        elif getattr(first, spec.name) is not None:
            values[spec.name] = np.concatenate([getattr(p, spec.name) for p in parts])
    planes: dict[str, np.ndarray] = {}
    plane_offsets = None
    if first.planes:
        planes = {key: np.concatenate([p.planes[key] for p in parts]) for key in first.planes}
        plane_offsets = np.zeros(len(offsets), dtype=np.int64)
        np.cumsum(np.concatenate([np.diff(p.plane_offsets) for p in parts]), out=plane_offsets[1:])
    return Clips(offsets=offsets, class_names=list(first.class_names), planes=planes, plane_offsets=plane_offsets,
                 meta=dict(first.meta), **values)


def _concat_frames(parts: Sequence[Clips]) -> np.ndarray:
    # An input without clips may carry a placeholder frame shape; it adds no frames.
    shaped = [p.frames for p in parts if len(p)] or [parts[0].frames]
    return np.concatenate(shaped)
