"""Reading and writing 'clips' artifacts: whole (:func:`load_clips`, :func:`save_clips`)
and clip by clip (:func:`open_clips`, :func:`clip_writer`), so a stage's memory is what
a batch of clips needs, not what the artifact holds (issue 19; docs/design.md
"Streaming").

The streamed writer appends every field of :data:`~fercli.artifacts.clips.CLIP_FIELDS`
to resizable datasets, chunked for the reads stages make (about 256 KiB: whole frames,
one or a few per chunk) and gzip-1 compressed, and writes the ragged offsets as it
goes; the file is renamed over the output when the writer closes, and deleted on any
error.  Its arrays equal what :func:`save_clips` writes for the same clips.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator, Optional, Sequence

import h5py
import numpy as np

from fercli import untrusted
from fercli.errors import FercliError, check_interrupted
from fercli.artifacts.attributes import _as_str, read_json_attr, write_json_attr
from fercli.artifacts.base import STR, display_name
from fercli.artifacts.clips import CLIP_FIELDS, OPTIONAL_FIELDS, Clips, read_clips, write_clips
from fercli.artifacts.lazy import HeldArtifact, read_clips_lazy
from fercli.artifacts.lineage import artifact_identity, read_lineage
from fercli.artifacts.opening import open_artifact
from fercli.artifacts.output import create_artifact, write_error, write_failure


# --------------------------------------------------------------------------- whole


def load_clips(path: str, stage: str, lazy: bool = False) -> tuple[Clips, dict, list[dict]]:
    """Open, validate and read a clips artifact: (clips, input identity, lineage).

    ``lazy``: the bulk arrays stay in the file and are read by the rows asked for
    (:func:`read_clips_lazy`); the file stays open while they are in use.
    """
    if lazy:  # the reader's header: its lazy arrays keep the file open while they are in use
        reader = ClipReader(path, stage)
        return reader.header, reader.identity, reader.lineage
    with open_artifact(path, "clips", stage) as f:
        clips = read_clips(f, display_name(path))
        return clips, artifact_identity(f, path), read_lineage(f)


def save_clips(path: str, clips: Clips, lineage: Sequence[dict]) -> None:
    with create_artifact(path, "clips", lineage, clips.meta) as f:
        write_clips(f, clips)


# --------------------------------------------------------------------------- streaming: sizes

#: Most bulk bytes one batch holds by default (and at most a quarter of the memory budget).
#: A stage whose own arrays are a large multiple of its batch asks for less (lbptop with
#: three planes and histograms holds about 8x: it reads a quarter of this).
BATCH_BYTES = 64 << 20
#: Bytes a stored chunk of a bulk array aims at: a frame or a few per chunk.
CHUNK_BYTES = 256 << 10
#: Bytes the writer gathers per dataset before it writes them out.
FLUSH_BYTES = 4 << 20


def batch_bytes() -> int:
    """Bulk bytes of one batch of clips: :data:`BATCH_BYTES`, or a quarter of the memory
    budget when that is smaller (the stage's own arrays need room beside the batch)."""
    return max(64 << 10, min(BATCH_BYTES, untrusted.memory_budget() // 4))


def _row_bytes(shape: tuple[int, ...], dtype: Any) -> int:
    item = 64 if np.dtype(dtype).kind == "O" else np.dtype(dtype).itemsize
    return max(1, int(np.prod(shape, dtype=np.int64)) * item)


# --------------------------------------------------------------------------- streaming: reading


class ClipReader:
    """A 'clips' artifact read clip by clip (see :func:`open_clips`).

    ``header`` holds the per-clip arrays in memory and the bulk arrays (frames,
    per-frame fields, code maps, histograms) lazy; :meth:`batches` yields in-memory
    :class:`Clips` of consecutive clips, each at most ``max_bytes`` of bulk data.
    """

    def __init__(self, path: str, stage: str):
        self._held = HeldArtifact(path, "clips", stage)
        try:
            f = self._held.file
            self.name = display_name(path)
            self.header = read_clips_lazy(f, self.name, self._held)
            self.identity = artifact_identity(f, path)
            self.lineage = read_lineage(f)
            self.meta: dict = dict(self.header.meta)
        except BaseException:
            self._held.close()
            raise
        self._frame_bytes = self._bytes_per_frame()

    def __len__(self) -> int:
        return len(self.header)

    def close(self) -> None:
        self._held.close()

    def _bytes_per_frame(self) -> int:
        h = self.header
        total = 0
        for spec in CLIP_FIELDS:
            value = getattr(h, spec.name)
            if spec.per == "frame" and value is not None:
                total += _row_bytes(tuple(value.shape[1:]), value.dtype)
        return total

    def clip_bytes(self, index: np.ndarray) -> np.ndarray:
        """Bulk bytes each clip of ``index`` takes in memory (frames and per-frame fields,
        code maps, histograms)."""
        h = self.header
        out = h.lengths[index].astype(np.int64) * self._frame_bytes
        if h.planes and h.plane_offsets is not None:
            maps = np.diff(h.plane_offsets)[index]
            out += sum(maps * _row_bytes(tuple(v.shape[1:]), v.dtype) for v in h.planes.values())
        if h.histograms is not None:
            out += _row_bytes(tuple(h.histograms.shape[1:]), h.histograms.dtype)
        return out

    def batches(self, index: Optional[Sequence[int] | np.ndarray] = None,
                max_bytes: Optional[int] = None) -> Iterator[tuple[np.ndarray, Clips]]:
        """(positions, in-memory Clips) of consecutive runs of clips (of ``index``, in its
        order), each at most ``max_bytes`` (default :func:`batch_bytes`) of bulk data and
        at least one clip.  A clip larger than the memory budget is refused (read it in
        runs of frames: :meth:`clip_runs`)."""
        index = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        limit = batch_bytes() if max_bytes is None else int(max_bytes)
        sizes = self.clip_bytes(index)
        start = 0
        while start < len(index):
            stop, used = start + 1, int(sizes[start])
            while stop < len(index) and used + int(sizes[stop]) <= limit:
                used += int(sizes[stop])
                stop += 1
            group = index[start:stop]
            untrusted.check_budget(used, f"clip '{_as_str(self.header.clip_ids[group[0]])}' of {self.name} needs" if len(group) == 1
                                   else f"{len(group)} clips of {self.name} at once need")
            yield group, self.read(group)
            start = stop

    def read(self, index: Sequence[int] | np.ndarray) -> Clips:
        """Clips ``index`` in memory, validated; a damaged clip is named."""
        index = np.asarray(index, dtype=np.int64)
        try:
            batch = self.header.select(index)
            batch.validate(self.name)
            return batch
        except FercliError as exc:
            if len(index) > 1:  # find the clip that is damaged, to name it
                for i in index:
                    self.read([i])
            clip = _as_str(self.header.clip_ids[index[0]]) if len(index) else "?"
            raise FercliError(f"{exc} (clip '{clip}', number {int(index[0])} of {len(self)})") from exc

    def clip_runs(self, i: int, max_bytes: Optional[int] = None) -> Iterator[Clips]:
        """Clip ``i`` in runs of frames: each an in-memory Clips of this one clip holding
        the next run of its frames (its per-clip values repeated), so a clip larger than
        memory (an hour of video as one clip) can be processed."""
        h = self.header
        limit = batch_bytes() if max_bytes is None else int(max_bytes)
        per_run = max(1, limit // max(1, self._frame_bytes))
        lo, hi = int(h.offsets[i]), int(h.offsets[i + 1])
        one = np.asarray([i], dtype=np.int64)
        for start in range(lo, max(hi, lo + 1), per_run):
            rows = np.arange(start, min(hi, start + per_run), dtype=np.int64)
            values = {spec.name: (None if getattr(h, spec.name) is None
                                  else getattr(h, spec.name)[rows if spec.per == "frame" else one])
                      for spec in CLIP_FIELDS}
            part = Clips(offsets=np.asarray([0, len(rows)], dtype=np.int64), class_names=list(h.class_names),
                         meta=dict(h.meta), **values)
            part.validate(self.name)
            yield part


@contextlib.contextmanager
def open_clips(path: str, stage: str) -> Iterator[ClipReader]:
    """Open a 'clips' artifact to read clip by clip (``-``: standard input, spooled to a
    temporary file); checked before anything is read, as :func:`open_artifact` checks."""
    reader = ClipReader(path, stage)
    try:
        yield reader
    finally:
        reader.close()


# --------------------------------------------------------------------------- streaming: writing


class _Column:
    """One dataset being appended to: rows gathered up to :data:`FLUSH_BYTES`, then written."""

    def __init__(self, group: h5py.Group, dataset: str, stored: Any, trailing: tuple[int, ...]):
        self.text = stored is STR
        self.trailing = trailing
        row = _row_bytes(trailing, object if self.text else stored)
        rows = max(1, min(1 << 16, CHUNK_BYTES // row))
        if self.text:
            self.ds = group.create_dataset(dataset, shape=(0,), maxshape=(None,), dtype=STR, chunks=(min(rows, 4096),))
        else:
            dtype = np.dtype(stored)
            self.ds = group.create_dataset(dataset, shape=(0, *trailing), maxshape=(None, *trailing), dtype=dtype,
                                           chunks=(rows, *trailing), compression="gzip", compression_opts=1,
                                           shuffle=dtype.itemsize > 1)
        self.dtype = None if self.text else np.dtype(stored)
        self.pending: list[np.ndarray] = []
        self.pending_bytes = 0
        self.rows = 0

    def add(self, values: Any) -> None:
        if self.text:
            values = np.asarray([_as_str(v) for v in np.asarray(values, dtype=object).ravel()], dtype=object)
        else:
            values = np.asarray(values).astype(self.dtype, copy=False)
        if not len(values):
            return
        self.pending.append(values)
        self.pending_bytes += len(values) * _row_bytes(self.trailing, object if self.text else self.dtype)
        if self.pending_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        data = self.pending[0] if len(self.pending) == 1 else np.concatenate(self.pending)
        self.pending, self.pending_bytes = [], 0
        n = self.rows
        self.ds.resize(n + len(data), axis=0)
        self.ds[n:n + len(data)] = data
        self.rows += len(data)


class ClipWriter:
    """Clips appended to a 'clips' artifact being written (see :func:`clip_writer`)."""

    def __init__(self, f: h5py.File, name: str):
        self._f, self._name = f, name
        self.meta: dict = {}
        self.n_clips = 0
        self.n_frames = 0
        self._columns: Optional[dict[str, _Column]] = None
        self._planes: dict[str, _Column] = {}
        self._layout: Optional[dict] = None
        self._template: Optional[Clips] = None
        self._offsets: list[int] = [0]
        self._plane_offsets: list[int] = [0]
        self._part: Optional[Clips] = None  # per-clip values of a clip written in runs
        self._part_frames = 0

    # ---- layout: fixed by the first clips appended

    @staticmethod
    def _layout_of(clips: Clips) -> dict:
        return {
            "class_names": list(clips.class_names),
            "frames": (tuple(clips.frames.shape[1:]), str(clips.frames.dtype)),
            "fields": tuple(spec.name for spec in OPTIONAL_FIELDS if getattr(clips, spec.name) is not None),
            "planes": tuple(sorted(clips.planes)) if clips.planes else (),
            "plane_shapes": {k: tuple(v.shape[1:]) for k, v in clips.planes.items()},
            "histograms": tuple(clips.histograms.shape[1:]) if clips.histograms is not None else None,
        }

    def _fix_layout(self, clips: Clips) -> None:
        layout = self._layout_of(clips)
        if self._layout is None:
            self._layout = layout
            self._columns = {}
            for spec in CLIP_FIELDS:
                value = getattr(clips, spec.name)
                if value is None:
                    continue
                trailing = tuple(np.shape(value)[1:]) if spec.stored is not STR else ()
                self._columns[spec.name] = _Column(self._f, spec.dataset, spec.stored, trailing)
            if clips.planes:
                group = self._f.create_group("planes")
                for key, maps in clips.planes.items():
                    self._planes[key] = _Column(group, key, np.uint8, tuple(maps.shape[1:]))
            return
        if layout != self._layout:
            differs = next(k for k in layout if layout[k] != self._layout[k])
            first = _as_str(clips.clip_ids[0]) if len(clips) else "?"
            raise FercliError(f"{self._name}: clip '{first}' does not match the clips written before it "
                              f"(its {differs.replace('_', ' ')} differ)")

    # ---- appending

    def append(self, clips: Clips) -> None:
        """Append whole clips (an in-memory :class:`Clips`; 0 clips is fine)."""
        if self._part is not None:
            raise RuntimeError("append() while a clip written in parts is open: end_clip() first")
        if len(clips) == 0:
            if self._template is None:
                self._template = clips
            self.meta.update(clips.meta)
            return
        clips.validate(self._name)
        self._fix_layout(clips)
        assert self._columns is not None
        for spec in CLIP_FIELDS:
            column = self._columns.get(spec.name)
            if column is not None:
                column.add(getattr(clips, spec.name))
        for key, column in self._planes.items():
            column.add(clips.planes[key])
        base = self._offsets[-1]
        self._offsets.extend((base + clips.offsets[1:]).tolist())
        if self._planes:
            pbase = self._plane_offsets[-1]
            self._plane_offsets.extend((pbase + clips.plane_offsets[1:]).tolist())
        self.n_clips += len(clips)
        self.n_frames += int(clips.offsets[-1])
        self.meta.update(clips.meta)
        self._after_write()

    def append_part(self, part: Clips) -> None:
        """Append the next run of frames of one clip written in parts (a Clips of that one
        clip); the clip's per-clip values come from its first part.  :meth:`end_clip` ends it."""
        if len(part) != 1:
            raise ValueError("append_part takes a Clips of exactly one clip")
        if part.planes:
            raise ValueError("a clip written in parts carries no code maps")
        part.validate(self._name)
        self._fix_layout(part)
        assert self._columns is not None
        if self._part is None:
            self._part, self._part_frames = part, 0
        elif _as_str(part.clip_ids[0]) != _as_str(self._part.clip_ids[0]):
            raise ValueError("append_part of another clip before end_clip()")
        for spec in CLIP_FIELDS:
            column = self._columns.get(spec.name)
            if column is not None and spec.per == "frame":
                column.add(getattr(part, spec.name))
        self._part_frames += int(part.offsets[-1])
        self.n_frames += int(part.offsets[-1])
        self._after_write()

    def end_clip(self) -> None:
        """End the clip begun by :meth:`append_part`."""
        part, self._part = self._part, None
        if part is None:
            raise RuntimeError("end_clip() without append_part()")
        assert self._columns is not None
        for spec in CLIP_FIELDS:
            column = self._columns.get(spec.name)
            if column is not None and spec.per == "clip":
                column.add(getattr(part, spec.name))
        self._offsets.append(self._offsets[-1] + self._part_frames)
        self.n_clips += 1
        self.meta.update(part.meta)
        self._after_write()

    def _after_write(self) -> None:
        # A full disk stops the stage now (the guard would keep the rest in memory);
        # a signal remembered while HDF5 wrote is acted on between clips.
        failed = write_failure(self._f)
        if failed is not None:
            raise write_error(self._name, failed)
        check_interrupted()

    # ---- closing

    def close(self) -> None:
        """Write what is gathered, the offsets, class names and meta."""
        if self._part is not None:
            raise RuntimeError("the writer closed while a clip written in parts was open")
        if self._layout is None:
            # Nothing appended: an empty artifact of the template's layout.
            template = self._template if self._template is not None else Clips.from_sequences([], [], [], [])
            write_clips(self._f, template)
        else:
            assert self._columns is not None
            for column in [*self._columns.values(), *self._planes.values()]:
                column.flush()
            self._f.create_dataset("offsets", data=np.asarray(self._offsets, dtype=np.int64))
            if self._planes:
                self._f["planes"].create_dataset("offsets", data=np.asarray(self._plane_offsets, dtype=np.int64))
            write_json_attr(self._f, "class_names", list(self._layout["class_names"]))
        meta = read_json_attr(self._f, "fercli_meta", {}) or {}
        meta.update(self.meta)
        write_json_attr(self._f, "fercli_meta", meta)
        self._f.attrs["fercli_storage"] = json.dumps({"written": "clip by clip", "chunk_bytes": CHUNK_BYTES,
                                                      "compression": "gzip level 1, byte shuffle"})
        self._after_write()


@contextlib.contextmanager
def clip_writer(path: str, lineage: Sequence[dict], meta: Optional[dict] = None) -> Iterator[ClipWriter]:
    """A 'clips' artifact written clip by clip: ``writer.append(clips)``, ``writer.meta``.

    Atomic as every output: on leaving the block normally the file is complete and
    renamed over ``path`` (or sent to standard output for ``-``); on any exception
    (bad input, Ctrl-C, SIGTERM, a full disk) it is deleted and ``path`` is untouched."""
    name = "standard output" if path == "-" else display_name(path)
    with create_artifact(path, "clips", lineage, meta) as f:
        writer = ClipWriter(f, name)
        yield writer
        writer.close()


