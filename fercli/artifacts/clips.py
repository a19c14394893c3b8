"""The 'clips' kind: image sequences with labels, landmarks, code maps and trace fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import h5py
import numpy as np

from fercli.errors import FercliError
from fercli.artifacts.arrays import read_strings, write_array
from fercli.artifacts.attributes import read_json_attr, write_json_attr
from fercli.artifacts.base import STR, _short
from fercli.artifacts.validation import BULK, LAYOUTS, _check_dataset, _damaged, _json

# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class ClipField:
    """One array of the 'clips' kind: how it is named, stored, checked and filled.

    ``per``: 'clip' (one row per clip) or 'frame' (one row per frame).  ``stored`` is the
    dataset's dtype in the file (``STR`` for text), ``memory`` the dtype it is read as;
    ``shape`` the trailing shape after the row axis (None: any, e.g. the frame size).
    ``fill`` is the value a row gets where an input lacks the field (``merge``; None:
    no fill, the field is kept only when every input has it).  ``finite``: NaN and inf
    are refused when the array is read or written.  ``check`` names the type test of
    the layout check (:func:`fercli.artifacts.validation._check_dataset`).
    """

    name: str
    dataset: str
    per: str
    stored: Any
    memory: Any
    shape: Optional[tuple[int, ...]] = ()
    fill: Any = None
    required: bool = False
    finite: bool = False
    check: str = "number"


#: The 'clips' schema, one row per array (frames and offsets, planes and their offsets
#: are the ragged structure itself and live in :class:`Clips`' own code).  Reading,
#: writing, validating, selecting, merging and streaming loop over this table:
#: adding a field is one row here and one attribute of :class:`Clips`.
CLIP_FIELDS: tuple[ClipField, ...] = (
    ClipField("frames", "frames", "frame", np.uint8, np.uint8, None, required=True, check="uint8"),
    ClipField("labels", "label", "clip", np.int64, np.int64, required=True, check="int"),
    ClipField("subjects", "subject", "clip", STR, object, required=True, check="str"),
    ClipField("clip_ids", "clip_id", "clip", STR, object, required=True, check="str"),
    ClipField("sources", "source", "clip", STR, object, required=True, check="str"),
    ClipField("landmarks", "landmarks", "frame", np.float32, np.float32, (68, 2), finite=True, check="float"),
    ClipField("face_found", "face_found", "frame", np.bool_, np.bool_, fill=False, check="flag"),
    ClipField("split", "split", "clip", STR, object, fill="", check="str"),
    ClipField("folds", "fold", "clip", np.int16, np.int64, fill=-1, check="int"),
    ClipField("segments", "segment", "clip", STR, object, fill="", check="str"),
    ClipField("sequence_ids", "sequence_id", "clip", STR, object, check="str"),
    ClipField("histograms", "histograms", "clip", np.float32, np.float32, None, finite=True),
    # Tracing frames to the source video (docs/design.md): per frame, then per clip.
    ClipField("source_frame", "source_frame", "frame", np.int64, np.int64, fill=-1, check="int"),
    ClipField("transform", "transform", "frame", np.float64, np.float64, (2, 3), fill=np.nan, check="float"),
    ClipField("face_box", "face_box", "frame", np.float32, np.float32, (4,), fill=np.nan, check="float"),
    ClipField("face_score", "face_score", "frame", np.float32, np.float32, fill=np.nan, check="float"),
    # fercli.pose: Tx, Ty, Tz (mm), Rx, Ry, Rz (radians), OpenFace's conventions.
    ClipField("head_pose", "head_pose", "frame", np.float32, np.float32, (6,), fill=np.nan, check="float"),
    ClipField("fps", "fps", "clip", np.float64, np.float64, fill=np.nan, check="float"),
    ClipField("face_id", "face_id", "clip", np.int64, np.int64, fill=0, check="int"),
)
FIELDS_BY_NAME = {f.name: f for f in CLIP_FIELDS}
_TRACE_NAMES = ("source_frame", "transform", "face_box", "face_score", "head_pose")
#: Optional per-frame arrays that trace frames to their source video: name ->
#: (shape after the frame axis, stored dtype).  See :class:`Clips`.
TRACE_FIELDS: dict[str, tuple[tuple[int, ...], Any]] = {n: (FIELDS_BY_NAME[n].shape, FIELDS_BY_NAME[n].stored) for n in _TRACE_NAMES}
#: Optional per-clip trace arrays: name -> (stored dtype, the value of a clip that does not say).
CLIP_TRACE_FIELDS: dict[str, tuple[Any, Any]] = {n: (FIELDS_BY_NAME[n].stored, FIELDS_BY_NAME[n].fill) for n in ("fps", "face_id")}
#: The optional fields (every row but the four every clip has and the frames).
OPTIONAL_FIELDS = tuple(f for f in CLIP_FIELDS if not f.required)


def check_finite(values: Any, spec: ClipField, name: str) -> None:
    """Refuse NaN or inf in a field the schema needs finite (one sentence naming it)."""
    if spec.finite and isinstance(values, np.ndarray) and values.size and values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            raise FercliError(f"{name}: '{spec.dataset}' holds {int(bad.sum())} non-finite value(s) (NaN or inf) where the "
                              f"schema needs finite numbers")


# --------------------------------------------------------------------------- clips


@dataclass
class Clips:
    """A set of image sequences (a single image is a clip of one frame).

    Frames are stored ragged: ``frames[offsets[i]:offsets[i+1]]`` is clip ``i``,
    so variable-length and fixed-length sequences share one layout.

    Optional per-frame data: ``landmarks`` (F, 68, 2) in frame pixel coordinates,
    ``face_found`` (F,).  Optional per-clip data: ``split`` (official partition,
    e.g. 'train'/'val'/'test', '' for none), ``folds`` (int, -1 = unassigned),
    ``segments`` and ``sequence_ids`` for clips cut from a longer sequence
    (``fercli resample --ckplus-split``, thesis 4.2.7: which part --
    'neutral-peak', 'neutral-neutral', 'peak-peak' -- and the id of the original
    sequence; without them every clip is a whole sequence of its own id).
    ``planes`` holds LBP-TOP code maps, name -> (M, h, w) uint8, with
    ``plane_offsets`` (N+1) into them; ``histograms`` an (N, D) descriptor.
    ``meta`` is free-form JSON (alignment size, LBP parameters, ...).

    Tracing frames back to their video (optional, :data:`TRACE_FIELDS`; older
    artifacts have none): per frame ``source_frame`` (0-based index of the frame
    in its source video or image sequence), ``transform`` (2x3 affine taking
    source-video pixel coordinates to this frame's pixel coordinates: identity or
    a scale after ingest, the registration after ``align``), ``face_box``
    (x0, y0, x1, y1 of the face detector's box, source-video pixels) and
    ``face_score`` (the detector's score of the detection the frame's face comes
    from, NaN without one); per clip ``fps`` (frames per second of the source,
    NaN when unknown) and ``face_id`` (which face of its source the clip follows:
    0, 1, ... in order of first appearance, written by ``align --faces all``;
    absent means 0, the one face).  See docs/design.md "Tracing frames to the source".
    """

    frames: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    subjects: np.ndarray
    clip_ids: np.ndarray
    sources: np.ndarray
    landmarks: Optional[np.ndarray] = None
    face_found: Optional[np.ndarray] = None
    split: Optional[np.ndarray] = None
    folds: Optional[np.ndarray] = None
    planes: dict[str, np.ndarray] = field(default_factory=dict)
    plane_offsets: Optional[np.ndarray] = None
    histograms: Optional[np.ndarray] = None
    segments: Optional[np.ndarray] = None
    sequence_ids: Optional[np.ndarray] = None
    meta: dict = field(default_factory=dict)
    source_frame: Optional[np.ndarray] = None
    transform: Optional[np.ndarray] = None
    face_box: Optional[np.ndarray] = None
    face_score: Optional[np.ndarray] = None
    head_pose: Optional[np.ndarray] = None
    fps: Optional[np.ndarray] = None
    face_id: Optional[np.ndarray] = None

    # ---- construction

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[np.ndarray],
        labels: Sequence[int],
        class_names: Sequence[str],
        subjects: Sequence[str],
        clip_ids: Optional[Sequence[str]] = None,
        sources: Optional[Sequence[str]] = None,
        **extra: Any,
    ) -> "Clips":
        lengths = [len(s) for s in sequences]
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        frames = np.concatenate(sequences, axis=0) if sequences else np.zeros((0, 1, 1), np.uint8)
        n = len(sequences)
        return cls(
            frames=frames,
            offsets=offsets,
            labels=np.asarray(labels, dtype=np.int64),
            class_names=list(class_names),
            subjects=np.asarray(list(subjects), dtype=object),
            clip_ids=np.asarray(list(clip_ids) if clip_ids is not None else [f"clip{i:06d}" for i in range(n)], dtype=object),
            sources=np.asarray(list(sources) if sources is not None else [""] * n, dtype=object),
            **extra,
        )

    # ---- shape

    @property
    def n_clips(self) -> int:
        return int(len(self.offsets) - 1)

    def __len__(self) -> int:
        return self.n_clips

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return tuple(self.frames.shape[1:])

    @property
    def is_color(self) -> bool:
        return self.frames.ndim == 4

    def clip(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i] : self.offsets[i + 1]]

    def clip_planes(self, name: str, i: int) -> np.ndarray:
        assert self.plane_offsets is not None
        return self.planes[name][self.plane_offsets[i] : self.plane_offsets[i + 1]]

    def is_fixed_length(self) -> bool:
        lengths = self.lengths
        return bool(len(lengths)) and bool(np.all(lengths == lengths[0]))

    @property
    def sequences(self) -> np.ndarray:
        """Per clip, the id of the original sequence it shows (its own id unless cut from one)."""
        return self.sequence_ids if self.sequence_ids is not None else self.clip_ids

    @property
    def is_segmented(self) -> bool:
        """True when some clip is a part of a longer sequence (``--ckplus-split``)."""
        return self.segments is not None and any(str(s) for s in self.segments)

    def copy(self) -> "Clips":
        """A new Clips sharing the frame and per-clip arrays (nothing is duplicated):
        for changing which arrays it holds (folds, planes, meta), not their contents."""
        return dataclasses.replace(self, class_names=list(self.class_names), planes=dict(self.planes), meta=dict(self.meta))

    # ---- selection

    def select(self, index: Sequence[int] | np.ndarray) -> "Clips":
        """A new Clips holding clips ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        starts, ends = self.offsets[index], self.offsets[index + 1]
        frame_idx = concat_ranges(starts, ends)
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=offsets[1:])
        planes: dict[str, np.ndarray] = {}
        plane_offsets = None
        if self.planes and self.plane_offsets is not None:
            ps, pe = self.plane_offsets[index], self.plane_offsets[index + 1]
            pidx = concat_ranges(ps, pe)
            planes = {k: v[pidx] for k, v in self.planes.items()}
            plane_offsets = np.zeros(len(index) + 1, dtype=np.int64)
            np.cumsum(pe - ps, out=plane_offsets[1:])
        rows = {"clip": index, "frame": frame_idx}
        return Clips(
            offsets=offsets,
            class_names=list(self.class_names),
            planes=planes,
            plane_offsets=plane_offsets,
            meta=dict(self.meta),
            **{f.name: _take(getattr(self, f.name), rows[f.per]) for f in CLIP_FIELDS},
        )

    def trace(self, frame_index: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """The trace arrays (:data:`TRACE_FIELDS`) that are present, at ``frame_index``."""
        return {name: getattr(self, name)[frame_index] for name in TRACE_FIELDS if getattr(self, name) is not None}

    def source_transform(self) -> np.ndarray:
        """(F, 2, 3) source-video -> frame affines: ``transform`` when recorded; else the
        identity for frames that were never registered, NaN (unknown) for aligned
        frames of artifacts written before transforms were recorded."""
        if self.transform is not None:
            return np.asarray(self.transform, np.float64)
        fill = np.nan if "align" in self.meta else 0.0
        out = np.full((len(self.frames), 2, 3), fill)
        if fill == 0.0:
            out[:, 0, 0] = out[:, 1, 1] = 1.0
        return out

    # ---- validation

    def validate(self, name: str = "clips") -> None:
        """Raise FercliError with one sentence if the arrays are inconsistent."""
        n = self.n_clips
        if self.offsets.ndim != 1 or n < 0:
            raise FercliError(f"{name}: 'offsets' must be a 1-D array of N+1 positions")
        if n and (self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0) or self.offsets[-1] != len(self.frames)):
            raise FercliError(f"{name}: 'offsets' do not partition the {len(self.frames)} frames")
        if self.frames.dtype != np.uint8:
            raise FercliError(f"{name}: frames must be uint8 images, found {self.frames.dtype}")
        if self.frames.ndim not in (3, 4) or (self.frames.ndim == 4 and self.frames.shape[-1] not in (1, 3)):
            raise FercliError(f"{name}: frames must be (F, H, W) gray or (F, H, W, 3) colour, found shape {self.frames.shape}")
        for attr in ("labels", "subjects", "clip_ids", "sources"):
            if len(getattr(self, attr)) != n:
                raise FercliError(f"{name}: '{attr}' has {len(getattr(self, attr))} entries for {n} clips")
        k = len(self.class_names)
        bad = (self.labels < -1) | (self.labels >= k)
        if np.any(bad):
            first = int(self.labels[np.argmax(bad)])
            raise FercliError(f"{name}: {int(bad.sum())} clip label(s) outside the {k} classes (first: {first})")
        counts = {"clip": n, "frame": len(self.frames)}
        for spec in OPTIONAL_FIELDS:
            value = getattr(self, spec.name)
            if value is None:
                continue
            if spec.shape is not None and spec.shape and tuple(np.shape(value)) != (counts[spec.per], *spec.shape):
                want = ", ".join(["frames" if spec.per == "frame" else "clips", *map(str, spec.shape)])
                raise FercliError(f"{name}: '{spec.name}' must be ({want}), found {tuple(np.shape(value))}")
            if len(value) != counts[spec.per]:
                what = "rows" if spec.name == "histograms" else "entries"
                raise FercliError(f"{name}: '{spec.name}' has {len(value)} {what} for {counts[spec.per]} {spec.per}s")
            check_finite(value, spec, name)
        if self.planes:
            po = self.plane_offsets
            if po is None or len(po) != n + 1:
                raise FercliError(f"{name}: planes need 'plane_offsets' of N+1 positions")
            for key, maps in self.planes.items():
                if maps.dtype != np.uint8 or maps.ndim != 3 or len(maps) != po[-1]:
                    raise FercliError(f"{name}: plane '{key}' must be ({int(po[-1])}, h, w) uint8 code maps, found {maps.shape} {maps.dtype}")


def _take(values: Any, rows: np.ndarray) -> Any:
    return None if values is None else values[rows]


def shard_indices(n: int, shard: Optional[tuple[int, int]]) -> np.ndarray:
    """Clips of shard ``i`` of ``k``: the contiguous block ``[i*n//k, (i+1)*n//k)``
    (sizes differ by at most one), so merging shards 0..k-1 in order gives back the
    unsharded clip order and arrays byte for byte (``align``/``lbptop --shard``)."""
    if shard is None:
        return np.arange(n)
    i, k = shard
    return np.arange((i * n) // k, ((i + 1) * n) // k)


def concat_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, e)`` for each pair, vectorised."""
    lengths = (np.asarray(ends) - np.asarray(starts)).astype(np.int64)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.asarray(starts, dtype=np.int64)[owner] + within


def write_clips(f: h5py.File, clips: Clips) -> None:
    """Write ``clips`` into an open artifact of kind 'clips' (every field of :data:`CLIP_FIELDS` it has)."""
    clips.validate()
    for spec in CLIP_FIELDS:
        value = getattr(clips, spec.name)
        if value is None:
            continue
        write_array(f, spec.dataset, value if spec.stored is STR else np.asarray(value).astype(spec.stored))
        if spec.name == "frames":
            f.create_dataset("offsets", data=clips.offsets.astype(np.int64))
    write_json_attr(f, "class_names", list(clips.class_names))
    if clips.planes:
        g = f.create_group("planes")
        g.create_dataset("offsets", data=clips.plane_offsets.astype(np.int64))
        for key, maps in clips.planes.items():
            write_array(g, key, maps)
    # meta lives in fercli_meta (written by create_artifact); merge ours in.
    meta = read_json_attr(f, "fercli_meta", {}) or {}
    meta.update(clips.meta)
    write_json_attr(f, "fercli_meta", meta)


def read_clips(f: h5py.File, name: str = "clips", with_frames: bool = True) -> Clips:
    """Read a 'clips' artifact fully into memory and validate it (``f`` may be a lazy view,
    :func:`fercli.artifacts.lazy.read_clips_lazy`, whose bulk arrays stay in the file)."""
    try:
        offsets = f["offsets"][()].astype(np.int64)
        planes: dict[str, np.ndarray] = {}
        plane_offsets = None
        if "planes" in f:
            g = f["planes"]
            plane_offsets = g["offsets"][()].astype(np.int64)
            planes = {k: g[k][()] for k in g.keys() if k != "offsets"}
        values: dict[str, Any] = {}
        for spec in CLIP_FIELDS:
            if spec.name == "frames" and not with_frames:
                values["frames"] = np.zeros((int(offsets[-1]) if len(offsets) else 0, 1, 1), np.uint8)
            elif spec.dataset in f:
                values[spec.name] = read_strings(f[spec.dataset]) if spec.stored is STR else _as_memory(f[spec.dataset][()], spec)
            elif spec.required:
                raise KeyError(spec.dataset)
        clips = Clips(offsets=offsets, class_names=list(read_json_attr(f, "class_names", [])), planes=planes,
                      plane_offsets=plane_offsets, meta=read_json_attr(f, "fercli_meta", {}) or {}, **values)
    except KeyError as exc:
        raise FercliError(f"{name} is a damaged 'clips' artifact: a required dataset is missing ({_short(exc)})") from exc
    except OSError as exc:
        raise FercliError(f"{name} is a damaged 'clips' artifact: {_short(exc)}") from exc
    if with_frames:
        clips.validate(name)
    return clips


def _as_memory(values: Any, spec: ClipField) -> Any:
    """A stored array as :class:`Clips` holds it (lazy rows stay lazy, with the memory dtype)."""
    if spec.name == "frames" or values.dtype == np.dtype(spec.memory):
        return values
    return values.astype(spec.memory)


#: fercli_meta entries the stages write as objects of parameters (and read with .get).
META_OBJECTS = ("align", "lbp", "lbp_histogram", "resample", "synth")


def _check_finite_rows(ds: h5py.Dataset, spec: ClipField, name: str, piece_bytes: int = 8 << 20) -> None:
    """NaN/inf anywhere in ``ds`` refused at opening, read in pieces (one row per clip:
    small beside the frames; a stage that never reads the field still refuses it)."""
    row = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
    step = max(1, piece_bytes // row)
    for lo in range(0, ds.shape[0], step):
        check_finite(ds[lo:lo + step], spec, name)


def _check_partition(offsets: np.ndarray, total: int, what: str, items: str, name: str) -> None:
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != total:
        raise _damaged(name, "clips", f"'{what}' do not partition the {total} {items} (they must start at 0, never decrease and end at {total})")


def _clips_layout(f: h5py.File, ds: dict[str, h5py.Dataset], name: str) -> None:
    """The 'clips' layout (see :class:`Clips`): types, shapes, offsets, labels, class names."""
    art = "clips"
    _check_dataset(ds.get("offsets"), "offsets", "int", name, art, 1)
    offsets = ds["offsets"][()].astype(np.int64)
    if len(offsets) < 1:
        raise _damaged(name, art, "'offsets' must hold N+1 positions (at least one)")
    n = len(offsets) - 1
    frames = ds.get("frames")
    _check_dataset(frames, "frames", "uint8", name, art, (3, 4))
    if frames.ndim == 4 and frames.shape[-1] not in (1, 3):
        raise _damaged(name, art, f"frames must be (F, H, W) gray or (F, H, W, 3) colour, found shape {frames.shape}")
    n_frames = frames.shape[0]
    _check_partition(offsets, n_frames, "offsets", "frames", name)
    _check_dataset(ds.get("label"), "label", "int", name, art, 1, n)
    for key in ("subject", "clip_id", "source"):
        _check_dataset(ds.get(key), key, "str", name, art, 1, n)
    class_names = _json(f, "class_names", name, art, list, [], items=str)
    if len(set(class_names)) != len(class_names):
        twice = next(c for c in class_names if class_names.count(c) > 1)
        raise _damaged(name, art, f"'class_names' lists '{twice}' twice")
    labels = ds["label"][()]
    bad = (labels < -1) | (labels >= len(class_names))
    if np.any(bad):
        raise _damaged(name, art, f"{int(bad.sum())} clip label(s) outside the {len(class_names)} classes (first: {int(labels[np.argmax(bad)])})")
    counts = {"clip": n, "frame": n_frames}
    for spec in OPTIONAL_FIELDS:
        value = ds.get(spec.dataset)
        ndim = 2 if spec.shape is None else 1 + len(spec.shape)
        _check_dataset(value, spec.dataset, spec.check, name, art, ndim, counts[spec.per], required=False)
        if value is not None and spec.shape and value.shape[1:] != spec.shape:
            raise _damaged(name, art, f"'{spec.dataset}' must be ({spec.per}s, {', '.join(map(str, spec.shape))}), found {value.shape}")
    meta = _json(f, "fercli_meta", name, art, dict, {})
    wrong = next((k for k in META_OBJECTS if k in meta and not isinstance(meta[k], dict)), None)
    if wrong is not None:
        raise _damaged(name, art, f"'fercli_meta' entry '{wrong}' must be a JSON object (the stage's parameters)")
    for spec in OPTIONAL_FIELDS:  # per-clip numbers the schema needs finite: checked here, a piece at a time
        if spec.finite and spec.per == "clip" and spec.dataset in ds and ds[spec.dataset].dtype.kind == "f":
            _check_finite_rows(ds[spec.dataset], spec, name)
    if "fold" in ds and n and int(ds["fold"][()].min()) < -1:
        raise _damaged(name, art, "'fold' holds numbers below -1 (-1 marks a clip without a fold)")
    if "planes" in f:
        if not isinstance(f["planes"], h5py.Group):
            raise _damaged(name, art, "'planes' must be a group of code maps")
        _check_dataset(ds.get("planes/offsets"), "planes/offsets", "int", name, art, 1, n + 1)
        plane_offsets = ds["planes/offsets"][()].astype(np.int64)
        maps = {k: v for k, v in ds.items() if k.startswith("planes/") and k != "planes/offsets"}
        for key, value in maps.items():
            _check_dataset(value, key, "uint8", name, art, 3, int(plane_offsets[-1]) if len(plane_offsets) else 0)
        _check_partition(plane_offsets, int(plane_offsets[-1]) if maps else 0, "planes/offsets", "code maps", name)


LAYOUTS["clips"] = _clips_layout
# Read a batch at a time (fercli.artifacts.clipio), never whole: left out of the budget at opening.
BULK["clips"] = (*(f.dataset for f in CLIP_FIELDS if f.per == "frame"), "histograms", "planes/")
