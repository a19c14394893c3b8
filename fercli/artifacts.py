"""The HDF5 artifact schema: typed readers and writers, validation, lineage.

Every stage reads and writes one of a few *kinds* of artifact.  An artifact says
what it is in root attributes::

    fercli_kind      'clips' | 'model' | 'report' | 'pruning'
    fercli_schema    integer schema version of that kind
    fercli_id        a fresh UUID for every file written (its identity in lineage)
    fercli_version   the fercli that wrote it
    fercli_lineage   JSON list: one entry per stage that touched the data
    fercli_meta      JSON object: kind-specific metadata (e.g. alignment size)

Writes are atomic (temporary file in the destination folder, fsync, rename), so
an interrupted stage never leaves a half-written artifact where a later stage
would trust it, and a failed rerun never destroys the previous good output.
``-`` means standard input / standard output so stages chain as Unix pipes.

This module is the bottom layer: it imports neither torch nor any stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import errno
import io
import json
import os
import platform
import re
import shlex
import shutil
import stat
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

import h5py
import numpy as np

from fercli import __version__, untrusted
from fercli.errors import FercliError, Interrupted, check_interrupted, clear_interrupted, deferred_signals

#: Current schema version of each kind.  Readers accept versions <= these.
SCHEMA = {"clips": 1, "model": 1, "report": 1, "pruning": 1}

STR = h5py.string_dtype("utf-8")


# --------------------------------------------------------------------------- names


def display_name(path: str) -> str:
    return "standard input" if path == "-" else path


def _describe_kinds(kinds: Sequence[str]) -> str:
    quoted = [f"'{k}'" for k in kinds]
    return quoted[0] if len(quoted) == 1 else " or ".join([", ".join(quoted[:-1]), quoted[-1]])


# --------------------------------------------------------------------------- reading


def _read_stdin() -> io.BytesIO:
    stream = sys.stdin.buffer
    if stream.isatty():
        raise FercliError("no input on standard input: give a file, or pipe another fercli stage into '-'")
    # Read in blocks against the memory budget: a pipe can stream without end.
    budget = untrusted.memory_budget()
    blocks, size = [], 0
    while True:
        block = stream.read(1 << 22)
        if not block:
            break
        size += len(block)
        if size > budget:
            untrusted.check_budget(size, "standard input holds more than")
        blocks.append(block)
    if not size:
        raise FercliError("standard input is empty (did the stage before this one in the pipe fail?)")
    return io.BytesIO(b"".join(blocks))


def open_h5(path: str) -> h5py.File:
    """Open an HDF5 file for reading ('-' = stdin) with user-facing errors."""
    name = display_name(path)
    if path == "-":
        source: Any = _read_stdin()
    else:
        untrusted.regular_file(path, "an artifact file")
        source = path
    try:
        return h5py.File(source, "r")
    except OSError as exc:
        raise FercliError(f"{name} is not a readable HDF5 file (truncated or corrupt?): {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def check_kind(f: h5py.File, path: str, kinds: Sequence[str] | str | None, stage: str) -> str:
    """Validate the root attributes; return the artifact's kind."""
    name = display_name(path)
    if isinstance(kinds, str):
        kinds = [kinds]
    kind = f.attrs.get("fercli_kind")
    if kind is None:
        raise FercliError(f"{name} is an HDF5 file but not a fercli artifact (no 'fercli_kind' attribute)")
    kind = _as_str(kind)
    if kind not in SCHEMA:
        raise FercliError(f"{name} is a fercli artifact of unknown kind '{kind}' (this fercli knows {_describe_kinds(sorted(SCHEMA))})")
    if kinds and kind not in kinds:
        raise FercliError(f"{name} is a '{kind}' artifact; {stage} needs {_describe_kinds(kinds)}")
    try:
        version = int(f.attrs.get("fercli_schema", -1))
    except (TypeError, ValueError):
        version = -1
    if version < 1:
        raise FercliError(f"{name} has no valid schema version for its '{kind}' kind")
    if version > SCHEMA[kind]:
        raise FercliError(
            f"{name} is a '{kind}' artifact of schema version {version}, newer than this fercli "
            f"{__version__} reads (up to {SCHEMA[kind]}): upgrade fercli"
        )
    return kind


@contextlib.contextmanager
def open_artifact(path: str, kinds: Sequence[str] | str | None, stage: str, whole: bool = True) -> Iterator[h5py.File]:
    """Open and validate an artifact; errors while reading become one sentence.

    The file is checked before anything is read from it (:func:`validate`):
    only datasets stored inside the file, the layout of its kind, and the
    declared sizes within the memory budget -- all of them, or with
    ``whole=False`` (what ``fercli info`` reads) all but the bulk arrays.
    """
    f = open_h5(path)
    try:
        kind = check_kind(f, path, kinds, stage)
        validate(f, kind, display_name(path), whole)
        try:
            yield f
        except (KeyError, OSError) as exc:
            raise FercliError(f"{display_name(path)} is a damaged '{kind}' artifact: {_short(exc)}") from exc
    finally:
        with contextlib.suppress(Exception):
            f.close()


# --------------------------------------------------------------------------- validation
#
# An artifact from someone else's machine is untrusted: HDF5 can point a
# dataset at any file on this machine (external storage, external links,
# virtual datasets), loop links, or declare a dataset of terabytes that
# compresses to kilobytes.  :func:`validate` refuses all of that, and checks
# the layout of the artifact's kind (the readers below then only meet
# datasets of the right type and shape), before anything is allocated.

#: More objects than this in one artifact is not something fercli wrote.
MAX_OBJECTS = 100_000
#: Memory charged per element of a variable-length string dataset (the
#: pointer plus a small Python string; the text itself is bounded by the file).
STRING_ELEMENT_BYTES = 64


def _damaged(name: str, kind: str, why: str) -> FercliError:
    return FercliError(f"{name} is a damaged '{kind}' artifact: {why}")


def stored_datasets(f: h5py.File, name: str, kind: str) -> dict[str, h5py.Dataset]:
    """Every dataset of ``f`` by path, after refusing what is not stored inside the file.

    Soft and external links, external raw storage, virtual datasets, named
    datatypes and objects linked twice (hard-link loops) are refused: fercli
    writes none of them, and each can make a reader touch another file or loop.
    """
    datasets: dict[str, h5py.Dataset] = {}
    seen: set[int] = set()
    stack: list[tuple[str, h5py.Group]] = [("", f)]
    while stack:
        prefix, group = stack.pop()
        try:
            keys = list(group.keys())
        except (OSError, RuntimeError) as exc:
            raise _damaged(name, kind, f"group '/{prefix}' cannot be listed ({_short(exc)})") from None
        for key in keys:
            where = f"{prefix}/{key}" if prefix else key
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.SoftLink):
                raise FercliError(f"{name} holds a soft link '/{where}' -> '{link.path}': refused (fercli artifacts hold no links)")
            if isinstance(link, h5py.ExternalLink):
                raise FercliError(f"{name} holds an external link '/{where}' to {link.filename}: refused, an artifact may not read other files")
            if not isinstance(link, h5py.HardLink):
                raise FercliError(f"{name} holds a link '/{where}' of an unknown type: refused")
            try:
                obj = group[key]
                addr = h5py.h5o.get_info(obj.id).addr
            except (KeyError, OSError, RuntimeError, ValueError) as exc:
                raise _damaged(name, kind, f"'/{where}' cannot be opened ({_short(exc)})") from None
            if addr in seen:
                raise FercliError(f"{name} links one object twice ('/{where}'): refused (a loop or an alias)")
            seen.add(addr)
            if len(seen) > MAX_OBJECTS:
                raise FercliError(f"{name} holds more than {MAX_OBJECTS} objects: not a fercli artifact")
            if isinstance(obj, h5py.Group):
                stack.append((where, obj))
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    raise FercliError(f"{name}: dataset '/{where}' is a virtual dataset (data from other files): refused")
                if obj.id.get_create_plist().get_external_count():
                    raise FercliError(f"{name}: dataset '/{where}' keeps its data in external files: refused, an artifact may not read other files")
                datasets[where] = obj
            else:
                raise FercliError(f"{name} holds '/{where}', which is neither a group nor a dataset: refused")
    return datasets


def declared_bytes(ds: h5py.Dataset) -> int:
    """Memory reading ``ds`` whole takes, from its shape and type (compressed or not)."""
    size = int(np.prod(ds.shape, dtype=object)) if ds.shape else 1
    item = STRING_ELEMENT_BYTES if ds.dtype.kind == "O" else ds.dtype.itemsize
    return size * item


# Expected dataset types, as _check_dataset names them.
_KIND_TEST = {
    "uint8": lambda dt: dt == np.uint8,
    "int": lambda dt: dt.kind in "iu",
    "float": lambda dt: dt.kind == "f",
    "flag": lambda dt: dt.kind in "biu",
    "number": lambda dt: dt.kind in "biuf",
    "str": lambda dt: h5py.check_string_dtype(dt) is not None,
}


def _check_dataset(ds: Optional[h5py.Dataset], where: str, kind: str, name: str, art: str,
                   ndim: Sequence[int] | int, length: Optional[int] = None, required: bool = True) -> None:
    """One dataset of a layout: present (if required), its type, rank and first dimension."""
    if ds is None:
        if required:
            raise _damaged(name, art, f"the dataset '{where}' is missing")
        return
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if ds.ndim not in ndims:
        raise _damaged(name, art, f"'{where}' must have {' or '.join(map(str, ndims))} dimension(s), found shape {ds.shape}")
    if not _KIND_TEST[kind](ds.dtype):
        shown = "str" if ds.dtype.kind == "O" else str(ds.dtype)
        want = {"flag": "bool", "number": "numbers"}.get(kind, kind)
        raise _damaged(name, art, f"'{where}' must hold {want} values, found {shown}")
    if length is not None and ds.shape[0] != length:
        raise _damaged(name, art, f"'{where}' has {ds.shape[0]} entries where {length} are needed")


def _json(f: h5py.File | h5py.Group, attr: str, name: str, art: str, want: type, default: Any, required: bool = False,
          items: Optional[type] = None) -> Any:
    """A JSON attribute of the expected type (and item type for lists)."""
    if attr not in f.attrs:
        if required:
            raise _damaged(name, art, f"the attribute '{attr}' is missing")
        return default
    value = read_json_attr(f, attr, default)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise _damaged(name, art, f"'{attr}' must be a JSON {_JSON_NAMES[want]}, found {_JSON_NAMES.get(type(value), type(value).__name__)}")
    if items is not None:
        bad = next((v for v in value if not isinstance(v, items)), _MISSING)
        if bad is not _MISSING:
            raise _damaged(name, art, f"every entry of '{attr}' must be a JSON {_JSON_NAMES[items]}, found {_JSON_NAMES.get(type(bad), type(bad).__name__)}")
    return value


_MISSING = object()
_JSON_NAMES = {list: "list", dict: "object", str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def validate(f: h5py.File, kind: str, name: str, whole: bool = True) -> None:
    """Check an open artifact of ``kind`` before anything is read (see the section comment)."""
    datasets = stored_datasets(f, name, kind)
    total = sum(declared_bytes(ds) for path, ds in datasets.items() if whole or not _is_bulk(kind, path))
    untrusted.check_budget(total, f"reading {name} needs")
    _json(f, "fercli_lineage", name, kind, list, [], items=dict)
    _json(f, "fercli_meta", name, kind, dict, {})
    _LAYOUTS[kind](f, datasets, name)


#: Arrays ``fercli info`` does not read (left out of its budget): kind -> path prefixes.
_BULK = {"clips": ("frames", "landmarks", "histograms", "planes/"), "model": (), "report": (), "pruning": ()}


def _is_bulk(kind: str, path: str) -> bool:
    return any(path == b or (b.endswith("/") and path.startswith(b) and path != "planes/offsets") for b in _BULK.get(kind, ()))


def _as_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def read_json_attr(f: h5py.File | h5py.Group, name: str, default: Any = None) -> Any:
    raw = f.attrs.get(name)
    if raw is None:
        return default
    try:
        return json.loads(_as_str(raw))
    except json.JSONDecodeError as exc:
        raise FercliError(f"attribute '{name}' is not valid JSON: {exc}") from exc
    except RecursionError:
        raise FercliError(f"attribute '{name}' nests JSON too deeply to be read") from None


def write_json_attr(f: h5py.File | h5py.Group, name: str, value: Any) -> None:
    f.attrs[name] = json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def artifact_identity(f: h5py.File, path: str) -> dict:
    """What a lineage entry records about one input."""
    return {
        "path": "-" if path == "-" else os.path.abspath(path),
        "kind": _as_str(f.attrs.get("fercli_kind", "?")),
        "id": _as_str(f.attrs.get("fercli_id", "?")),
    }


def read_lineage(f: h5py.File) -> list[dict]:
    value = read_json_attr(f, "fercli_lineage", [])
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- lineage


def lineage_entry(stage: str, parameters: dict, inputs: Iterable[dict] = ()) -> dict:
    """One record of a stage touching the data (command, parameters, version, time, inputs)."""
    return {
        "stage": stage,
        "command": shlex.join(["fercli", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "",
        "parameters": parameters,
        "fercli_version": __version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "inputs": list(inputs),
    }


def combine_lineage(parents: Sequence[Sequence[dict]], entry: dict) -> list[dict]:
    """Lineage of an artifact made from several: every parent entry once, then ``entry``."""
    seen: set[str] = set()
    out: list[dict] = []
    for parent in parents:
        for item in parent:
            key = json.dumps(item, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(item)
    out.append(entry)
    return out


# --------------------------------------------------------------------------- writing


def check_output_path(path: str) -> None:
    """Fail before any work if the output cannot be written.

    An existing output must be a regular file (or a link to one): the temporary
    file is renamed over it, which would replace a device, a FIFO or a link to
    ``/dev/stdout`` instead of writing into it.
    """
    if path == "-":
        if sys.stdout.isatty():
            raise FercliError("refusing to write a binary HDF5 artifact to a terminal: redirect it (-o FILE) or pipe it")
        return
    shown = untrusted.one_line(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FercliError(f"cannot write {shown}: folder {untrusted.one_line(folder)} does not exist")
    if os.path.isdir(path):
        raise FercliError(f"cannot write {shown}: it is a folder")
    if os.path.lexists(path):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = None  # a dangling link: the rename replaces the link itself
        if mode is not None and not stat.S_ISREG(mode):
            hint = " (-o - writes to standard output)" if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) else ""
            raise FercliError(f"cannot write {shown}: it is {untrusted.kind_of(mode)}, not a regular file, and would be replaced{hint}")
    if not os.access(folder, os.W_OK):
        raise FercliError(f"cannot write {shown}: folder {untrusted.one_line(folder)} is not writable")


def _file_key(path: str) -> Optional[tuple[int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_outputs(inputs: Iterable[Optional[str]], outputs: Iterable[Optional[str]]) -> None:
    """Before any work: every output writable (:func:`check_output_path`), none of them an input.

    "The same file" is judged by device and inode, so a hard link, a symbolic
    link or another spelling of an input's path is refused as well; two
    outputs naming one file are refused too.  ``None`` entries are skipped.
    """
    outs = [o for o in outputs if o is not None]
    for out in outs:
        check_output_path(out)
    known: dict[tuple[int, int], str] = {}
    for path in inputs:
        if path is not None and path != "-":
            key = _file_key(path)
            if key is not None:
                known.setdefault(key, path)
    named: dict[str, str] = {}
    for out in outs:
        if out == "-":
            continue
        real = os.path.realpath(out)
        if real in named:
            raise FercliError(f"{untrusted.one_line(named[real])} and {untrusted.one_line(out)} name the same output file")
        named[real] = out
        key = _file_key(out)
        if key is not None and key in known:
            same = "" if os.path.abspath(known[key]) == os.path.abspath(out) else f" (as {untrusted.one_line(known[key])})"
            raise FercliError(f"the output {untrusted.one_line(out)} is also an input{same}: refusing to overwrite it, write elsewhere")


TEMP_PREFIX = ".fercli-tmp-"
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", platform.node() or "host")[:64]
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)@([A-Za-z0-9._-]+?)-[^/]*$")
#: A temporary file older than this whose writer is gone is litter from a SIGKILL.
STALE_SECONDS = 3600


def remove_stale_temps(folder: str, now: Optional[float] = None) -> list[str]:
    """Delete temporary files that killed writers left in ``folder``; returns them.

    SIGKILL (OOM killer, a cluster's hard limit) gives no chance to clean up, so
    the next write to the same folder does it.  Only files written on this host,
    by a process that no longer exists, untouched for an hour, are removed: a
    live writer's file (here or on another node of a shared filesystem) is never
    touched.
    """
    removed: list[str] = []
    now = time.time() if now is None else now
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_NAME.match(name)
        if not match or match.group(2) != _HOST:
            continue
        full = os.path.join(folder, name)
        try:
            if now - os.stat(full).st_mtime < STALE_SECONDS or _process_alive(int(match.group(1))):
                continue
            os.unlink(full)
            removed.append(full)
        except OSError:
            continue
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


#: Outputs this process has committed (an interruption message says which).
_COMMITTED: list[str] = []


def committed_outputs() -> list[str]:
    return list(dict.fromkeys(_COMMITTED))  # a checkpoint rewritten every epoch counts once


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path; on success it atomically becomes ``path``.

    ``path == '-'`` streams the finished file to standard output instead.  On any
    exception (including :class:`~fercli.errors.Interrupted`) the temporary file
    is removed and the destination is untouched.
    """
    check_output_path(path)
    if path == "-":
        folder = None
    else:
        folder = os.path.dirname(os.path.abspath(path))
        remove_stale_temps(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}@{_HOST}-", suffix=suffix or ".h5", dir=folder)
    os.close(fd)
    # mkstemp makes the file 0600; give the artifact the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        try:
            yield tmp
            check_interrupted()  # a SIGTERM swallowed mid-write must not commit the file
            if path == "-":
                with open(tmp, "rb") as src:
                    out = sys.stdout.buffer
                    shutil.copyfileobj(src, out, length=1 << 20)
                    out.flush()
                os.unlink(tmp)
            else:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            _COMMITTED.append(display_name(path) if path != "-" else "standard output")
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) or exc.errno not in WRITE_ERRNOS:
                raise
            raise write_error(path, exc) from None
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, Interrupted):
            clear_interrupted()  # the signal reached its handler: this write is abandoned
        raise


#: errno values of a failed write that are the machine's state, not a bug: one sentence.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS, errno.ENOMEM, errno.EACCES, errno.EPERM}


def write_error(path: str, exc: OSError) -> FercliError:
    hint = {errno.ENOSPC: " (the disk is full)", errno.EDQUOT: " (the disk quota is used up)",
            errno.EFBIG: " (the file size limit was reached)", errno.EIO: " (an I/O error: check the disk)"}.get(exc.errno or 0, "")
    return FercliError(f"cannot write {untrusted.one_line(display_name(path) if path != '-' else 'standard output')}: "
                       f"{exc.strerror or exc}{hint}; nothing was written and the previous file is intact")


class _GuardedFile(io.RawIOBase):
    """The temporary file as HDF5 writes it, with write errors kept out of HDF5.

    HDF5 does not survive a failed write: a full disk gives pages of error
    stacks and then a crash while h5py closes its objects.  So h5py writes
    through this object (its file-object driver): the first failing write is
    remembered, it and later writes are kept in memory instead (HDF5 may read
    its metadata back), HDF5 sees success and closes cleanly, and
    :func:`create_artifact` then reports the remembered error.
    """

    def __init__(self, path: str):
        self._fh = open(path, "r+b", buffering=0)
        self.error: Optional[OSError] = None
        self._pos = 0
        self._size = 0  # what the file would hold: HDF5 finds its end by seeking there
        self._unwritten: dict[tuple[int, int], bytes] = {}  # (offset, length) -> data, in write order

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else (self._pos + pos if whence == 1 else self._size + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._size - self._pos))
        self._fh.seek(self._pos)
        got = self._fh.readinto(view[:n]) or 0
        view[got:n] = bytes(n - got)
        for (start, length), data in self._unwritten.items():  # later writes win
            lo, hi = max(start, self._pos), min(start + length, self._pos + n)
            if lo < hi:
                view[lo - self._pos:hi - self._pos] = data[lo - start:hi - start]
        self._pos += n
        return n

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                self._fh.seek(self._pos)
                done = 0
                while done < len(view):
                    done += self._fh.write(view[done:]) or 0
            except OSError as exc:
                self.error = exc
        if self.error is not None:
            key = (self._pos, len(view))
            self._unwritten.pop(key, None)
            self._unwritten[key] = bytes(view)
        self._pos += len(view)
        self._size = max(self._size, self._pos)
        return len(view)

    def truncate(self, size: Optional[int] = None) -> int:
        size = self._pos if size is None else size
        self._size = size
        if self.error is None:
            try:
                self._fh.truncate(size)
            except OSError as exc:
                self.error = exc
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        super().close()


@contextlib.contextmanager
def create_artifact(path: str, kind: str, lineage: Sequence[dict], meta: Optional[dict] = None) -> Iterator[h5py.File]:
    """Create an artifact of ``kind`` atomically; yields the open h5py file to fill."""
    if kind not in SCHEMA:
        raise ValueError(f"unknown artifact kind {kind!r}")
    with atomic_path(path) as tmp:
        guard = _GuardedFile(tmp)
        # HDF5 calls back into Python (the guard) to write: a signal raising there
        # would leave HDF5 half-way; it is remembered instead, and atomic_path
        # acts on it before committing (check_interrupted).
        try:
            with deferred_signals(), h5py.File(guard, "w", libver="latest") as f:
                f.attrs["fercli_kind"] = kind
                f.attrs["fercli_schema"] = SCHEMA[kind]
                f.attrs["fercli_id"] = str(uuid.uuid4())
                f.attrs["fercli_version"] = __version__
                f.attrs["fercli_created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
                write_json_attr(f, "fercli_lineage", list(lineage))
                write_json_attr(f, "fercli_meta", meta or {})
                yield f
        finally:
            guard.close()
        if guard.error is not None:
            raise write_error(path, guard.error)


def _chunks_for(shape: tuple[int, ...]) -> Optional[tuple[int, ...]]:
    if not shape or shape[0] == 0:
        return None
    # About 256 KiB per chunk, whole rows of frames, so one clip reads in few chunks.
    per_item = int(np.prod(shape[1:], dtype=np.int64)) or 1
    rows = max(1, min(shape[0], (256 * 1024) // per_item))
    return (rows, *shape[1:])


def write_array(group: h5py.Group, name: str, data: np.ndarray, compress: bool = True) -> h5py.Dataset:
    """Chunked, gzip-1 compressed dataset (fast to write, ~3x smaller for frames)."""
    data = np.asarray(data)
    if data.dtype.kind in "US" or data.dtype == object:
        return group.create_dataset(name, data=np.asarray([_as_str(x) for x in data.ravel()], dtype=object).reshape(data.shape), dtype=STR)
    if not compress or data.size < 4096:
        return group.create_dataset(name, data=data)
    return group.create_dataset(name, data=data, chunks=_chunks_for(data.shape), compression="gzip", compression_opts=1, shuffle=data.dtype.itemsize > 1)


def read_strings(ds: h5py.Dataset) -> np.ndarray:
    return np.asarray([_as_str(x) for x in ds[()]], dtype=object)


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
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        pickf = lambda a: None if a is None else a[frame_idx]  # noqa: E731
        return Clips(
            frames=self.frames[frame_idx],
            offsets=offsets,
            labels=self.labels[index],
            class_names=list(self.class_names),
            subjects=self.subjects[index],
            clip_ids=self.clip_ids[index],
            sources=self.sources[index],
            landmarks=pickf(self.landmarks),
            face_found=pickf(self.face_found),
            split=pick(self.split),
            folds=pick(self.folds),
            planes=planes,
            plane_offsets=plane_offsets,
            histograms=pick(self.histograms),
            segments=pick(self.segments),
            sequence_ids=pick(self.sequence_ids),
            meta=dict(self.meta),
            **{name: pickf(getattr(self, name)) for name in TRACE_FIELDS},
            **{name: pick(getattr(self, name)) for name in CLIP_TRACE_FIELDS},
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
        if self.landmarks is not None and self.landmarks.shape != (len(self.frames), 68, 2):
            raise FercliError(f"{name}: 'landmarks' must be (frames, 68, 2), found {self.landmarks.shape}")
        if self.face_found is not None and len(self.face_found) != len(self.frames):
            raise FercliError(f"{name}: 'face_found' has {len(self.face_found)} entries for {len(self.frames)} frames")
        for attr in ("split", "folds", "segments", "sequence_ids"):
            value = getattr(self, attr)
            if value is not None and len(value) != n:
                raise FercliError(f"{name}: '{attr}' has {len(value)} entries for {n} clips")
        if self.planes:
            po = self.plane_offsets
            if po is None or len(po) != n + 1:
                raise FercliError(f"{name}: planes need 'plane_offsets' of N+1 positions")
            for key, maps in self.planes.items():
                if maps.dtype != np.uint8 or maps.ndim != 3 or len(maps) != po[-1]:
                    raise FercliError(f"{name}: plane '{key}' must be ({int(po[-1])}, h, w) uint8 code maps, found {maps.shape} {maps.dtype}")
        if self.histograms is not None and len(self.histograms) != n:
            raise FercliError(f"{name}: 'histograms' has {len(self.histograms)} rows for {n} clips")
        for attr, (shape, _) in TRACE_FIELDS.items():
            value = getattr(self, attr)
            if value is not None and tuple(np.shape(value)) != (len(self.frames), *shape):
                want = ", ".join(["frames", *map(str, shape)])
                raise FercliError(f"{name}: '{attr}' must be ({want}), found {tuple(np.shape(value))}")
        for attr in CLIP_TRACE_FIELDS:
            value = getattr(self, attr)
            if value is not None and len(value) != n:
                raise FercliError(f"{name}: '{attr}' has {len(value)} entries for {n} clips")


#: Optional per-frame arrays that trace frames to their source video: name ->
#: (shape after the frame axis, stored dtype).  See :class:`Clips`.
TRACE_FIELDS: dict[str, tuple[tuple[int, ...], Any]] = {
    "source_frame": ((), np.int64),
    "transform": ((2, 3), np.float64),
    "face_box": ((4,), np.float32),
    "face_score": ((), np.float32),
    "head_pose": ((6,), np.float32),  # fercli.pose: Tx, Ty, Tz (mm), Rx, Ry, Rz (radians), OpenFace's
}
#: Optional per-clip trace arrays: name -> (stored dtype, the value of a clip that does not say).
CLIP_TRACE_FIELDS: dict[str, tuple[Any, Any]] = {
    "fps": (np.float64, np.nan),
    "face_id": (np.int64, 0),
}


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
    """Write ``clips`` into an open artifact of kind 'clips'."""
    clips.validate()
    write_array(f, "frames", clips.frames)
    f.create_dataset("offsets", data=clips.offsets.astype(np.int64))
    f.create_dataset("label", data=clips.labels.astype(np.int64))
    write_array(f, "subject", clips.subjects)
    write_array(f, "clip_id", clips.clip_ids)
    write_array(f, "source", clips.sources)
    write_json_attr(f, "class_names", list(clips.class_names))
    if clips.landmarks is not None:
        write_array(f, "landmarks", clips.landmarks.astype(np.float32))
    if clips.face_found is not None:
        f.create_dataset("face_found", data=clips.face_found.astype(bool))
    if clips.split is not None:
        write_array(f, "split", clips.split)
    if clips.folds is not None:
        f.create_dataset("fold", data=clips.folds.astype(np.int16))
    if clips.segments is not None:
        write_array(f, "segment", clips.segments)
    if clips.sequence_ids is not None:
        write_array(f, "sequence_id", clips.sequence_ids)
    if clips.planes:
        g = f.create_group("planes")
        g.create_dataset("offsets", data=clips.plane_offsets.astype(np.int64))
        for key, maps in clips.planes.items():
            write_array(g, key, maps)
    if clips.histograms is not None:
        write_array(f, "histograms", clips.histograms.astype(np.float32))
    for name, (_, dtype) in TRACE_FIELDS.items():
        if getattr(clips, name) is not None:
            write_array(f, name, np.asarray(getattr(clips, name)).astype(dtype))
    for name, (dtype, _) in CLIP_TRACE_FIELDS.items():
        if getattr(clips, name) is not None:
            f.create_dataset(name, data=np.asarray(getattr(clips, name)).astype(dtype))
    # meta lives in fercli_meta (written by create_artifact); merge ours in.
    meta = read_json_attr(f, "fercli_meta", {}) or {}
    meta.update(clips.meta)
    write_json_attr(f, "fercli_meta", meta)


def read_clips(f: h5py.File, name: str = "clips", with_frames: bool = True) -> Clips:
    """Read a 'clips' artifact fully into memory and validate it."""
    try:
        offsets = f["offsets"][()].astype(np.int64)
        frames = f["frames"][()] if with_frames else np.zeros((int(offsets[-1]) if len(offsets) else 0, 1, 1), np.uint8)
        planes: dict[str, np.ndarray] = {}
        plane_offsets = None
        if "planes" in f:
            g = f["planes"]
            plane_offsets = g["offsets"][()].astype(np.int64)
            planes = {k: g[k][()] for k in g.keys() if k != "offsets"}
        clips = Clips(
            frames=frames,
            offsets=offsets,
            labels=f["label"][()].astype(np.int64),
            class_names=list(read_json_attr(f, "class_names", [])),
            subjects=read_strings(f["subject"]),
            clip_ids=read_strings(f["clip_id"]),
            sources=read_strings(f["source"]),
            landmarks=f["landmarks"][()] if "landmarks" in f else None,
            face_found=f["face_found"][()].astype(bool) if "face_found" in f else None,
            split=read_strings(f["split"]) if "split" in f else None,
            folds=f["fold"][()].astype(np.int64) if "fold" in f else None,
            planes=planes,
            plane_offsets=plane_offsets,
            histograms=f["histograms"][()] if "histograms" in f else None,
            segments=read_strings(f["segment"]) if "segment" in f else None,
            sequence_ids=read_strings(f["sequence_id"]) if "sequence_id" in f else None,
            meta=read_json_attr(f, "fercli_meta", {}) or {},
            **{key: f[key][()].astype(dtype) for key, (_, dtype) in TRACE_FIELDS.items() if key in f},
            **{key: f[key][()].astype(dtype) for key, (dtype, _) in CLIP_TRACE_FIELDS.items() if key in f},
        )
    except KeyError as exc:
        raise FercliError(f"{name} is a damaged 'clips' artifact: a required dataset is missing ({_short(exc)})") from exc
    except OSError as exc:
        raise FercliError(f"{name} is a damaged 'clips' artifact: {_short(exc)}") from exc
    if with_frames:
        clips.validate(name)
    return clips


def read_clip_subset(f: h5py.File, index: Sequence[int], name: str = "clips") -> Clips:
    """Clips ``index`` of the artifact open in ``f``, reading only their rows of the bulk
    arrays (a few clips of a large artifact: figures)."""
    return read_clips_lazy(f, name).select(np.asarray(index, dtype=np.int64))


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
    _check_dataset(ds.get("landmarks"), "landmarks", "float", name, art, 3, n_frames, required=False)
    if "landmarks" in ds and ds["landmarks"].shape[1:] != (68, 2):
        raise _damaged(name, art, f"'landmarks' must be (frames, 68, 2), found {ds['landmarks'].shape}")
    _check_dataset(ds.get("face_found"), "face_found", "flag", name, art, 1, n_frames, required=False)
    _check_dataset(ds.get("split"), "split", "str", name, art, 1, n, required=False)
    _check_dataset(ds.get("fold"), "fold", "int", name, art, 1, n, required=False)
    if "fold" in ds and n and int(ds["fold"][()].min()) < -1:
        raise _damaged(name, art, "'fold' holds numbers below -1 (-1 marks a clip without a fold)")
    _check_dataset(ds.get("segment"), "segment", "str", name, art, 1, n, required=False)
    _check_dataset(ds.get("sequence_id"), "sequence_id", "str", name, art, 1, n, required=False)
    for key, (dtype, _) in CLIP_TRACE_FIELDS.items():  # per clip: fps, face_id
        _check_dataset(ds.get(key), key, "int" if np.issubdtype(dtype, np.integer) else "float", name, art, 1, n, required=False)
    for key, (shape, dtype) in TRACE_FIELDS.items():
        _check_dataset(ds.get(key), key, "int" if np.issubdtype(dtype, np.integer) else "float", name, art,
                       1 + len(shape), n_frames, required=False)
        if key in ds and ds[key].shape[1:] != shape:
            raise _damaged(name, art, f"'{key}' must be (frames, {', '.join(map(str, shape))}), found {ds[key].shape}")
    _check_dataset(ds.get("histograms"), "histograms", "number", name, art, 2, n, required=False)
    if "planes" in f:
        if not isinstance(f["planes"], h5py.Group):
            raise _damaged(name, art, "'planes' must be a group of code maps")
        _check_dataset(ds.get("planes/offsets"), "planes/offsets", "int", name, art, 1, n + 1)
        plane_offsets = ds["planes/offsets"][()].astype(np.int64)
        maps = {k: v for k, v in ds.items() if k.startswith("planes/") and k != "planes/offsets"}
        for key, value in maps.items():
            _check_dataset(value, key, "uint8", name, art, 3, int(plane_offsets[-1]) if len(plane_offsets) else 0)
        _check_partition(plane_offsets, int(plane_offsets[-1]) if maps else 0, "planes/offsets", "code maps", name)


def load_clips(path: str, stage: str, lazy: bool = False) -> tuple[Clips, dict, list[dict]]:
    """Open, validate and read a clips artifact: (clips, input identity, lineage).

    ``lazy``: the bulk arrays stay in the file and are read by the rows asked for
    (:func:`read_clips_lazy`); the file stays open while they are in use.
    """
    if lazy:
        held = _HeldArtifact(path, "clips", stage)
        try:
            clips = read_clips_lazy(held.file, display_name(path), held)
            return clips, artifact_identity(held.file, path), read_lineage(held.file)
        except BaseException:
            held.close()
            raise
    with open_artifact(path, "clips", stage) as f:
        clips = read_clips(f, display_name(path))
        return clips, artifact_identity(f, path), read_lineage(f)


def save_clips(path: str, clips: Clips, lineage: Sequence[dict]) -> None:
    with create_artifact(path, "clips", lineage, clips.meta) as f:
        write_clips(f, clips)


# --------------------------------------------------------------------------- lazy reading
#
# Data larger than memory (train's streaming mode, evaluate, array tasks of
# align/lbptop --shard, figures): a clips artifact's per-clip arrays are read,
# its bulk arrays -- per frame or per code map -- stay in the file as LazyRows,
# which read only the rows asked for, in sorted runs of whole HDF5 chunks.

#: Bulk datasets of a 'clips' artifact (and every ``planes/<name>`` but the offsets).
LAZY_CLIP_DATASETS = ("frames", "landmarks", "face_found", "histograms", *TRACE_FIELDS)
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
        return np.asarray(out, dtype=self.dtype)

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


class _HeldArtifact:
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


# --------------------------------------------------------------------------- model


@dataclass
class ModelRecord:
    """A trained (or initialised) network, free of code: no pickle anywhere.

    ``arch`` names a builder in :mod:`fercli.models`; ``config`` is its JSON
    configuration; ``state`` maps state-dict keys to numpy arrays (parameters and
    buffers); ``history`` the per-epoch training record; ``extra`` anything else
    JSON (resolved run configuration, training state for --resume, ...).
    """

    arch: str
    config: dict
    state: dict[str, np.ndarray]
    class_names: list[str]
    history: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def write_model(f: h5py.File, record: ModelRecord, arrays: Optional[dict[str, dict[str, np.ndarray]]] = None) -> None:
    f.attrs["arch"] = record.arch
    write_json_attr(f, "config", record.config)
    write_json_attr(f, "class_names", list(record.class_names))
    write_json_attr(f, "history", record.history)
    write_json_attr(f, "extra", record.extra)
    g = f.create_group("weights")
    for key, value in record.state.items():
        g.create_dataset(key, data=np.asarray(value))
    # optional named groups of arrays (optimizer state for --resume, per-fold
    # weights, the partition record's per-clip ids -- strings as UTF-8 datasets)
    for group_name, items in (arrays or {}).items():
        sub = f.create_group(group_name)
        for key, value in items.items():
            value = np.asarray(value)
            if value.dtype == object or value.dtype.kind == "U":
                write_array(sub, key, value)
            elif value.dtype.kind == "S" and value.size:
                # fixed-length UTF-8 bytes compress (ids repeat prefixes); variable-length strings do not
                sub.create_dataset(key, data=value, chunks=True, compression="gzip", compression_opts=4, shuffle=True)
            else:
                sub.create_dataset(key, data=value)


def read_model(f: h5py.File | h5py.Group, name: str = "model") -> ModelRecord:
    """The record of a model artifact (or of a pruning's ``source`` group), its layout already validated."""
    try:
        g = f["weights"]
        state = {key: g[key][()] for key in g.keys()}
        arch = _as_str(f.attrs["arch"])
    except KeyError as exc:
        raise FercliError(f"{name} is a damaged 'model' artifact: {_short(exc)}") from exc
    return ModelRecord(
        arch=arch,
        config=read_json_attr(f, "config", {}) or {},
        state=state,
        class_names=list(read_json_attr(f, "class_names", []) or []),
        history=list(read_json_attr(f, "history", []) or []),
        extra=read_json_attr(f, "extra", {}) or {},
    )


def read_array_group(f: h5py.File, group_name: str) -> dict[str, np.ndarray]:
    if group_name not in f:
        return {}
    g = f[group_name]
    return {key: g[key][()] for key in g.keys()}


def read_model_arrays(f: h5py.File) -> dict[str, dict[str, np.ndarray]]:
    """A model artifact's optional array groups: ``optimizer`` and ``folds/<k>`` (see :data:`MODEL_LAYOUT`)."""
    arrays: dict[str, dict[str, np.ndarray]] = {}
    if "optimizer" in f:
        arrays["optimizer"] = read_array_group(f, "optimizer")
    if "folds" in f:
        for k in f["folds"].keys():
            arrays[f"folds/{k}"] = read_array_group(f, f"folds/{k}")
    return arrays


#: What a model artifact holds (schema: model v1); ``fercli train`` writes all of it.
MODEL_LAYOUT = """
    weights/<state key>          the model (last fold trained for --folds all)
    optimizer/<param>.<name>     optimizer state for --resume (momentum, Adam moments, step)
    folds/<k>/<state key>        --folds all: every completed fold's weights
    attrs: arch, config, class_names, history (current fold), extra (JSON objects)
"""


def _array_group(f: h5py.File | h5py.Group, ds: dict[str, h5py.Dataset], group: str, name: str, art: str, required: bool) -> None:
    """``group`` is a flat group of numeric arrays (state-dict keys never hold '/')."""
    if group not in f:
        if required:
            raise _damaged(name, art, f"the group '{group}' is missing")
        return
    if not isinstance(f[group], h5py.Group):
        raise _damaged(name, art, f"'{group}' must be a group of arrays")
    for key, obj in f[group].items():
        if not isinstance(obj, h5py.Dataset):
            raise _damaged(name, art, f"'{group}/{key}' must be an array, found a group")
        _check_dataset(obj, f"{group}/{key}", "number", name, art, range(0, 33))


def _model_layout(f: h5py.File | h5py.Group, ds: dict[str, h5py.Dataset], name: str, art: str = "model") -> None:
    """The 'model' layout: arch, JSON attributes of the right types, numeric weight arrays."""
    arch = f.attrs.get("arch")
    if arch is None:
        raise _damaged(name, art, "the attribute 'arch' is missing")
    if not isinstance(arch, (str, bytes)):
        raise _damaged(name, art, "'arch' must be the name of an architecture")
    _json(f, "config", name, art, dict, {})
    _json(f, "class_names", name, art, list, [], items=str)
    _json(f, "history", name, art, list, [], items=dict)
    _json(f, "extra", name, art, dict, {})
    _array_group(f, ds, "weights", name, art, required=True)
    _array_group(f, ds, "optimizer", name, art, required=False)
    if "partition" in f:  # the partition record's per-clip arrays (fercli.protocol.partition)
        if not isinstance(f["partition"], h5py.Group):
            raise _damaged(name, art, "'partition' must be a group of per-data-artifact groups")
        for key, g in f["partition"].items():
            where = f"partition/{key}"
            if not key.isdigit() or not isinstance(g, h5py.Group):
                raise _damaged(name, art, f"'{where}' must be a group named by a data artifact's number")
            n = g["clip_id"].shape[0] if isinstance(g.get("clip_id"), h5py.Dataset) else None
            for field_name, kind in (("clip_id", "str"), ("subject", "str"), ("sequence_id", "str"), ("label", "int")):
                _check_dataset(g.get(field_name), f"{where}/{field_name}", kind, name, art, 1, n)
            _check_dataset(g.get("part"), f"{where}/part", "int", name, art, 2)
            if g["part"].shape[1] != n:
                raise _damaged(name, art, f"'{where}/part' must have one column per clip ({n}), found {g['part'].shape}")
    if "folds" in f:
        if not isinstance(f["folds"], h5py.Group):
            raise _damaged(name, art, "'folds' must be a group of per-fold weights")
        for key in f["folds"].keys():
            if not key.isdigit():
                raise _damaged(name, art, f"'folds/{key}' must be named by a fold number")
            _array_group(f, ds, f"folds/{key}", name, art, required=True)


def load_model(path: str, stage: str) -> tuple[ModelRecord, dict, list[dict]]:
    with open_artifact(path, "model", stage) as f:
        return read_model(f, display_name(path)), artifact_identity(f, path), read_lineage(f)


def save_model(path: str, record: ModelRecord, lineage: Sequence[dict], arrays: Optional[dict] = None, meta: Optional[dict] = None) -> None:
    with create_artifact(path, "model", lineage, meta) as f:
        write_model(f, record, arrays)


def fold_runs(extra: dict, history: list) -> list[dict]:
    """The fold runs a model artifact holds, each {fold, part, history, test_acc,
    n_test}: the finished folds of a ``--folds all`` run (``extra.folds``), then
    the run in progress, or the only run (``history``)."""
    runs = []
    for entry in extra.get("folds") or []:
        if isinstance(entry, dict):
            runs.append({"fold": entry.get("fold"), "part": str(entry.get("name", "")), "history": list(entry.get("history") or []),
                         "test_acc": entry.get("test_acc"), "n_test": entry.get("n_test")})
    if history and not any(run["history"] == history for run in runs):
        fold = extra.get("fold")
        last = history[-1] if isinstance(history[-1], dict) else {}
        runs.append({"fold": fold, "part": f"fold {fold}" if fold is not None else ("in progress" if runs else "all"),
                     "history": list(history), "test_acc": last.get("test_acc"), "n_test": extra.get("n_test")})
    return runs


def read_model_header(f: h5py.File | h5py.Group) -> ModelRecord:
    """A model's arch, config, classes, history and extra without its weights (``state``
    empty): what tables and figures need, without reading 100 M parameters."""
    return ModelRecord(
        arch=_as_str(f.attrs.get("arch", "")),
        config=read_json_attr(f, "config", {}) or {},
        state={},
        class_names=list(read_json_attr(f, "class_names", []) or []),
        history=list(read_json_attr(f, "history", []) or []),
        extra=read_json_attr(f, "extra", {}) or {},
    )


# --------------------------------------------------------------------------- report
#
# Written by ``fercli evaluate -o``:
#     attrs report (JSON)       the whole result (per fold, pooled, per class, model, data)
#     confusion                 (K, K) int64 pooled counts, rows true, columns predicted
#     confusion_normalised      (K, K) float64 row-normalised
#     fold_accuracy             (folds,) float64
#     predictions/<field>       per evaluated sample (PREDICTION_FIELDS): clip_id, subject, fold,
#                               truth, prediction (int), probabilities (samples, K)

#: Per-sample datasets of a report's ``predictions`` group (``fercli evaluate -o``).
PREDICTION_FIELDS = ("clip_id", "subject", "fold", "truth", "prediction", "probabilities")


def write_report(f: h5py.File, report: dict, predictions: Optional[dict[str, np.ndarray]] = None) -> None:
    """Fill an artifact of kind 'report': the JSON report, the pooled confusion
    matrices, per-fold accuracies and, per evaluated sample, the predictions."""
    write_json_attr(f, "report", report)
    pooled = report.get("pooled") or {}
    f.create_dataset("confusion", data=np.asarray(pooled.get("confusion", []), np.int64))
    f.create_dataset("confusion_normalised", data=np.asarray(pooled.get("confusion_normalised", []), np.float64))
    f.create_dataset("fold_accuracy", data=np.asarray([r.get("accuracy") for r in report.get("folds", [])], np.float64))
    if predictions is not None:
        g = f.create_group("predictions")
        for key in PREDICTION_FIELDS:
            write_array(g, key, np.asarray(predictions[key]))


def save_report(path: str, result: dict, lineage: Sequence[dict], predictions: Optional[dict[str, np.ndarray]] = None) -> None:
    """An evaluation result as a 'report' artifact."""
    with create_artifact(path, "report", lineage, {"stage": "evaluate"}) as f:
        write_report(f, result, predictions)


def read_report(f: h5py.File) -> tuple[dict, Optional[dict[str, np.ndarray]]]:
    """(report JSON, per-sample predictions or None for reports written before them)."""
    report = read_json_attr(f, "report", {}) or {}
    if "predictions" not in f:
        return report, None
    g = f["predictions"]
    return report, {key: read_strings(g[key]) if g[key].dtype.kind == "O" else g[key][()] for key in PREDICTION_FIELDS}


def _report_layout(f: h5py.File, ds: dict[str, h5py.Dataset], name: str) -> None:
    art = "report"
    _json(f, "report", name, art, dict, {}, required=True)
    _check_dataset(ds.get("confusion"), "confusion", "int", name, art, (1, 2))
    k = ds["confusion"].shape[0]
    if ds["confusion"].shape not in ((k, k), (0,)):  # (0,): a report of no classes
        raise _damaged(name, art, f"'confusion' must be square, found {ds['confusion'].shape}")
    _check_dataset(ds.get("confusion_normalised"), "confusion_normalised", "float", name, art, (1, 2), k)
    _check_dataset(ds.get("fold_accuracy"), "fold_accuracy", "float", name, art, 1)
    if "predictions" in f:
        _check_dataset(ds.get("predictions/truth"), "predictions/truth", "int", name, art, 1)  # its length is every field's
        n = ds["predictions/truth"].shape[0]
        for key in PREDICTION_FIELDS:
            kind = "str" if key in ("clip_id", "subject") else "float" if key == "probabilities" else "int"
            _check_dataset(ds.get(f"predictions/{key}"), f"predictions/{key}", kind, name, art, 2 if key == "probabilities" else 1, n)


# --------------------------------------------------------------------------- pruning
#
# Written by ``fercli prune`` (thesis 5.2.3, 5.3.2):
#     source/                  the source model (attrs arch/config/class_names/..., weights/)
#     blocks/<i>/mean          (C,) float64 mean SE weight per LBC kernel
#     blocks/<i>/std           (C,) float64
#     blocks/<i>/hist          (bins,) int64 histogram of every gate value in [0, 1]
#     kept/<step>/<i>          sorted kept channel indices of block i for schedule[step]
#     attrs pruning (JSON)     schedule, blocks [{name, in_chs, mid_chs, kept: [...]}],
#                              samples, data (how they were chosen), bins


@dataclass
class BlockStats:
    name: str
    in_chs: int
    mid_chs: int
    mean: np.ndarray
    std: np.ndarray
    hist: np.ndarray


@dataclass
class Pruning:
    source: ModelRecord
    schedule: list[float]
    blocks: list[BlockStats]
    kept: list[list[np.ndarray]]  # [step][block] -> sorted channel indices
    samples: int
    data: dict = field(default_factory=dict)
    source_arrays: dict = field(default_factory=dict)  # the source's partition record arrays (carried to rebuild)

    def kept_counts(self, step: int) -> list[int]:
        return [len(k) for k in self.kept[step]]


def save_pruning(path: str, p: Pruning, lineage: Sequence[dict]) -> None:
    meta = {"schedule": p.schedule, "samples": p.samples, "source_arch": p.source.arch}
    with create_artifact(path, "pruning", lineage, meta) as f:
        write_model(f.create_group("source"), p.source, arrays=p.source_arrays)
        g = f.create_group("blocks")
        for i, s in enumerate(p.blocks):
            b = g.create_group(str(i))
            b.create_dataset("mean", data=s.mean)
            b.create_dataset("std", data=s.std)
            b.create_dataset("hist", data=s.hist)
        k = f.create_group("kept")
        for step, kept in enumerate(p.kept):
            sg = k.create_group(str(step))
            for i, idx in enumerate(kept):
                sg.create_dataset(str(i), data=idx)
        write_json_attr(f, "pruning", {
            "schedule": p.schedule, "samples": p.samples, "data": p.data,
            "blocks": [{"name": s.name, "in_chs": s.in_chs, "mid_chs": s.mid_chs, "kept": [len(kk[i]) for kk in p.kept]} for i, s in enumerate(p.blocks)],
        })


def load_pruning(path: str, stage: str) -> tuple[Pruning, dict, list[dict]]:
    with open_artifact(path, "pruning", stage) as f:
        return read_pruning(f, display_name(path)), artifact_identity(f, path), read_lineage(f)


def read_pruning(f: h5py.File, name: str, weights: bool = True) -> Pruning:
    """The pruning artifact open (and validated) in ``f``; ``weights=False`` leaves the
    source model's weights and partition arrays unread (statistics only: tables, figures)."""
    info = read_json_attr(f, "pruning", None)
    source = read_model(f["source"], name) if weights else read_model_header(f["source"])
    blocks = []
    for i, b in enumerate(info["blocks"]):
        g = f["blocks"][str(i)]
        blocks.append(BlockStats(b["name"], int(b["in_chs"]), int(b["mid_chs"]), g["mean"][()], g["std"][()], g["hist"][()]))
    kept = [[f["kept"][str(s)][str(i)][()].astype(np.int64) for i in range(len(blocks))] for s in range(len(info["schedule"]))]
    src = f["source"]
    source_arrays = {f"partition/{d}": read_array_group(src, f"partition/{d}")
                     for d in (src["partition"].keys() if weights and "partition" in src else [])}
    return Pruning(source, [float(x) for x in info["schedule"]], blocks, kept, int(info["samples"]), info.get("data") or {}, source_arrays)


def _pruning_layout(f: h5py.File, ds: dict[str, h5py.Dataset], name: str) -> None:
    """The 'pruning' layout, down to the kept indices (range, uniqueness, count per block)."""
    art = "pruning"
    info = _json(f, "pruning", name, art, dict, {}, required=True)
    schedule, blocks = info.get("schedule"), info.get("blocks")
    if not isinstance(schedule, list) or not schedule or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in schedule):
        raise _damaged(name, art, "'schedule' must be a non-empty list of positive expansion ratios")
    if not isinstance(info.get("samples"), int) or isinstance(info.get("samples"), bool):
        raise _damaged(name, art, "'samples' must be a whole number")
    if not isinstance(info.get("data", {}), dict):
        raise _damaged(name, art, "'data' must be a JSON object")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise _damaged(name, art, "'blocks' must be a list of objects")
    for i, b in enumerate(blocks):
        if not isinstance(b.get("name"), str) or not all(isinstance(b.get(k), int) and not isinstance(b.get(k), bool) and b[k] > 0 for k in ("in_chs", "mid_chs")):
            raise _damaged(name, art, f"block {i} needs a name and positive whole in_chs and mid_chs")
    if "source" not in f or not isinstance(f["source"], h5py.Group):
        raise _damaged(name, art, "the group 'source' (the source model) is missing")
    _model_layout(f["source"], ds, name, art)
    for i, b in enumerate(blocks):
        for key, kind in (("mean", "float"), ("std", "float"), ("hist", "number")):
            _check_dataset(ds.get(f"blocks/{i}/{key}"), f"blocks/{i}/{key}", kind, name, art, 1, b["mid_chs"] if key != "hist" else None)
    for step in range(len(schedule)):
        for i, b in enumerate(blocks):
            where = f"kept/{step}/{i}"
            _check_dataset(ds.get(where), where, "int", name, art, 1)
            kept = ds[where][()]
            if len(kept) == 0 or len(kept) > b["mid_chs"]:
                raise _damaged(name, art, f"'{where}' keeps {len(kept)} of block {i}'s {b['mid_chs']} channels")
            if int(kept.min()) < 0 or int(kept.max()) >= b["mid_chs"]:
                raise _damaged(name, art, f"'{where}' holds channel indices outside 0..{b['mid_chs'] - 1} (e.g. {int(kept.min()) if kept.min() < 0 else int(kept.max())})")
            if len(np.unique(kept)) != len(kept):
                raise _damaged(name, art, f"'{where}' names a channel twice")


#: kind -> layout check run by :func:`validate` when an artifact is opened.
_LAYOUTS = {"clips": _clips_layout, "model": _model_layout, "report": _report_layout, "pruning": _pruning_layout}


# --------------------------------------------------------------------------- summary


def summarize(f: h5py.File, path: str) -> dict:
    """What `fercli info` shows: kind, shapes, counts, lineage (JSON-able)."""
    kind = _as_str(f.attrs.get("fercli_kind"))
    out: dict[str, Any] = {
        "path": display_name(path),
        "kind": kind,
        "schema": int(f.attrs.get("fercli_schema", 0)),
        "id": _as_str(f.attrs.get("fercli_id", "")),
        "fercli_version": _as_str(f.attrs.get("fercli_version", "")),
        "created": _as_str(f.attrs.get("fercli_created", "")),
        "meta": read_json_attr(f, "fercli_meta", {}) or {},
        "lineage": read_lineage(f),
    }
    datasets: dict[str, dict] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and not name.startswith("weights/") and not name.startswith(("optimizer/", "folds/", "partition/", "source/weights/", "source/partition/")):
            datasets[name] = {"shape": list(obj.shape), "dtype": str(obj.dtype) if obj.dtype.kind != "O" else "str"}

    f.visititems(visit)
    out["datasets"] = datasets
    if kind == "clips":
        labels = f["label"][()] if "label" in f else np.zeros(0, np.int64)
        class_names = list(read_json_attr(f, "class_names", []) or [])
        subjects = read_strings(f["subject"]) if "subject" in f else np.zeros(0, object)
        offsets = f["offsets"][()] if "offsets" in f else np.zeros(1, np.int64)
        lengths = np.diff(offsets)
        out["clips"] = int(len(labels))
        out["frames"] = int(offsets[-1]) if len(offsets) else 0
        out["frame_shape"] = list(f["frames"].shape[1:]) if "frames" in f else []
        out["clip_length"] = {"min": int(lengths.min()), "max": int(lengths.max()), "mean": round(float(lengths.mean()), 2)} if len(lengths) else {}
        out["class_names"] = class_names
        out["class_counts"] = {name: int((labels == i).sum()) for i, name in enumerate(class_names)}
        if np.any(labels < 0):
            out["class_counts"]["(unlabelled)"] = int((labels < 0).sum())
        out["subjects"] = int(len(set(subjects.tolist())))
        if "face_found" in f:
            ff = f["face_found"][()]
            out["face_found_rate"] = round(float(ff.mean()), 4) if len(ff) else None
        if "fold" in f:
            folds = f["fold"][()]
            out["folds"] = {str(int(k)): int((folds == k).sum()) for k in np.unique(folds)}
        if "split" in f:
            split = read_strings(f["split"])
            out["split"] = {str(k): int((split == k).sum()) for k in sorted(set(split.tolist()))}
        if "planes" in f:
            out["planes"] = {k: list(f["planes"][k].shape) for k in f["planes"].keys() if k != "offsets"}
        if "segment" in f:
            segments = read_strings(f["segment"])
            out["segments"] = {str(k) or "(whole)": int((segments == k).sum()) for k in sorted(set(segments.tolist()))}
    elif kind == "model":
        out["arch"] = _as_str(f.attrs.get("arch", ""))
        out["config"] = read_json_attr(f, "config", {})
        out["class_names"] = read_json_attr(f, "class_names", [])
        history = read_json_attr(f, "history", []) or []
        out["epochs_trained"] = len(history)
        if history:
            out["last_epoch"] = history[-1]
        g = f.get("weights")
        out["weights"] = {"tensors": len(g) if g is not None else 0, "values": int(sum(g[k].size for k in g)) if g is not None else 0}
        out["fold_results"] = _model_fold_results(read_json_attr(f, "extra", {}) or {}, history)
    elif kind == "report":
        out.update(_report_summary(read_json_attr(f, "report", {}) or {}), predictions="predictions" in f)
    return out


# -- analysis (issue 14): model fold results and report accuracy for `fercli info`


def _model_fold_results(extra: dict, history: list) -> list[dict]:
    """Per fold run: fold, part name, epochs, last test accuracy, held-out samples."""
    return [{"fold": run["fold"], "part": run["part"], "epochs": len(run["history"]), "test_acc": run["test_acc"],
             "n_test": run["n_test"]} for run in fold_runs(extra, history)]


def _report_summary(report: dict) -> dict:
    pooled = report.get("pooled") or {}
    return {
        "arch": report.get("arch"), "class_names": report.get("class_names") or [], "model": (report.get("model") or {}).get("path"),
        "accuracy": pooled.get("accuracy"), "accuracy_mean": report.get("accuracy_mean"), "accuracy_std": report.get("accuracy_std"),
        "samples": pooled.get("n"), "macro_f1": pooled.get("macro_f1"),
        "fold_results": [{"fold": r.get("fold"), "part": r.get("part"), "accuracy": r.get("accuracy"), "n": r.get("n")}
                         for r in report.get("folds") or [] if isinstance(r, dict)],
    }
