"""Lazy reading: bulk arrays of a 'clips' artifact left in the file, read by the rows asked for."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import h5py
import numpy as np

from fercli import untrusted
from fercli.errors import FercliError
from fercli.artifacts.base import _short, display_name
from fercli.artifacts.clips import CLIP_FIELDS, FIELDS_BY_NAME, Clips, check_finite, read_clips
from fercli.artifacts.opening import open_artifact

# --------------------------------------------------------------------------- lazy reading
#
# Data larger than memory (train's streaming mode, evaluate, array tasks of
# align/lbptop --shard, figures): a clips artifact's per-clip arrays are read,
# its bulk arrays -- per frame or per code map -- stay in the file as LazyRows,
# which read only the rows asked for, in sorted runs of whole HDF5 chunks.

#: Bulk datasets of a 'clips' artifact (and every ``planes/<name>`` but the offsets).
LAZY_CLIP_DATASETS = tuple(f.dataset for f in CLIP_FIELDS if f.per == "frame" or f.name == "histograms")
_FIELD_OF_DATASET = {f.dataset: f for f in FIELDS_BY_NAME.values()}
#: Most bytes one read of a LazyRows takes from the file at a time.
LAZY_PIECE_BYTES = 8 << 20


class LazyRows:
    """Rows of an HDF5 dataset read on demand, with the part of the ndarray interface
    :class:`Clips` uses: ``shape``, ``dtype``, ``ndim``, ``len``, indexing by an int, a
    slice or an index array (returns an ndarray), ``astype``, ``np.asarray`` (reads all).

    ``lazy[()]`` is the LazyRows itself, so :func:`read_clips` reads a lazy view
    unchanged.  ``owner`` is kept alive while the rows are (the open file).
    """

    def __init__(self, ds: h5py.Dataset, name: str, dtype: Any = None, owner: Any = None):
        self._ds, self._name, self._owner = ds, name, owner
        self.shape: tuple[int, ...] = tuple(ds.shape)
        self.dtype = np.dtype(dtype) if dtype is not None else ds.dtype
        row_bytes = max(1, int(np.prod(self.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
        # Rows closer than one stored chunk are read as one run (the chunk is read anyway).
        self._gap = int(ds.chunks[0]) if ds.chunks else max(1, (64 << 10) // row_bytes)
        self._piece = max(self._gap, LAZY_PIECE_BYTES // row_bytes)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyRows({self._ds.name!r}, shape={self.shape}, dtype={self.dtype})"

    def astype(self, dtype: Any, copy: bool = True) -> "LazyRows":
        return LazyRows(self._ds, self._name, dtype, self._owner)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __iter__(self) -> Iterator[np.ndarray]:
        for lo in range(0, len(self), self._piece):
            yield from self[lo:lo + self._piece]

    def _read(self, key: Any) -> np.ndarray:
        try:
            out = self._ds[key]
        except (OSError, KeyError, RuntimeError) as exc:
            raise FercliError(f"{self._name} is a damaged 'clips' artifact: {_short(exc)}") from exc
        out = np.asarray(out, dtype=self.dtype)
        spec = _FIELD_OF_DATASET.get(self._ds.name.lstrip("/"))
        if spec is not None:
            check_finite(out, spec, self._name)  # NaN/inf where the schema needs numbers: refused as read
        return out

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            if key == ():
                return self
            if key[0] is Ellipsis:
                return np.asarray(self)[key]
            rows = self[key[0]]
            return rows[key[1:]] if np.ndim(key[0]) == 0 else rows[(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"row {key} is out of range for {n} rows")
            return self._read(int(key) % n)
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._read(slice(start, max(start, stop)))
            return self.take(np.arange(start, stop, step))
        return self.take(key)

    def take(self, index: Any) -> np.ndarray:
        """Rows ``index`` (ints, any order and repeats, or a boolean mask), read in sorted runs."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False).ravel()
        n = len(self)
        if len(index) and (index.min() < -n or index.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        index = np.where(index < 0, index + n, index)
        rows, back = np.unique(index, return_inverse=True)
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        breaks = np.flatnonzero(np.diff(rows) > self._gap) + 1
        done = 0
        for run in np.split(rows, breaks) if len(rows) else []:
            for lo in range(int(run[0]), int(run[-1]) + 1, self._piece):
                hi = min(int(run[-1]) + 1, lo + self._piece)
                want = run[np.searchsorted(run, lo):np.searchsorted(run, hi)]
                if len(want):
                    out[done:done + len(want)] = self._read(slice(lo, hi))[want - lo]
                    done += len(want)
        return out if len(rows) == len(index) and np.array_equal(rows, index) else out[back.ravel()]


class _LazyGroup:
    """A group of an open 'clips' artifact as :func:`read_clips` sees it, with the bulk
    datasets (:data:`LAZY_CLIP_DATASETS`, code maps) as :class:`LazyRows`."""

    def __init__(self, group: h5py.Group, name: str, owner: Any = None, prefix: str = ""):
        self._group, self._name, self._owner, self._prefix = group, name, owner, prefix

    @property
    def attrs(self) -> Any:
        return self._group.attrs

    def __contains__(self, key: str) -> bool:
        return key in self._group

    def keys(self) -> Any:
        return self._group.keys()

    def __getitem__(self, key: str) -> Any:
        obj = self._group[key]
        path = self._prefix + key
        if isinstance(obj, h5py.Group):
            return _LazyGroup(obj, self._name, self._owner, path + "/")
        if path in LAZY_CLIP_DATASETS or (path.startswith("planes/") and path != "planes/offsets"):
            return LazyRows(obj, self._name, owner=self._owner)
        return obj


class HeldArtifact:
    """An artifact held open (through :func:`open_artifact`'s checks) for the lazy arrays
    reading from it; closed by :meth:`close` or when the last of them is gone."""

    def __init__(self, path: str, kinds: Sequence[str] | str | None, stage: str):
        # whole=False: the bulk arrays stay in the file, so only what is read whole
        # counts against the memory budget -- plus the per-frame indexes that
        # counting samples builds (a few int64 per frame), checked here.
        self._opened: Any = open_artifact(path, kinds, stage, whole=False)
        self.file = self._opened.__enter__()
        frames = self.file.get("frames")
        if isinstance(frames, h5py.Dataset) and frames.ndim:
            try:
                untrusted.check_budget(int(frames.shape[0]) * 32, f"indexing the {int(frames.shape[0])} frames of {display_name(path)} needs")
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            # No exception is passed in: an error while the arrays were used is not the file's.
            opened.__exit__(None, None, None)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def read_clips_lazy(f: h5py.File, name: str = "clips", owner: Any = None) -> Clips:
    """The clips of the artifact open in ``f``, validated, with the bulk arrays left in
    the file (:class:`LazyRows`): ``f`` (or ``owner``, which keeps it open) must stay
    open while they are read.  ``clips.select(index)`` reads only those clips' rows."""
    return read_clips(_LazyGroup(f, name, owner), name)  # type: ignore[arg-type]


def read_clip_subset(f: h5py.File, index: Sequence[int], name: str = "clips") -> Clips:
    """Clips ``index`` of the artifact open in ``f``, reading only their rows of the bulk
    arrays (a few clips of a large artifact: figures)."""
    return read_clips_lazy(f, name).select(np.asarray(index, dtype=np.int64))
