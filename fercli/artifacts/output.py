"""Writing artifacts: output checks, atomic temporary files, full disks, standard output."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import io
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import time
import uuid
from typing import Iterable, Iterator, Optional, Sequence

import h5py

from fercli import __version__, untrusted
from fercli.errors import FercliError, Interrupted, check_interrupted, clear_interrupted, deferred_signals
from fercli.artifacts.attributes import write_json_attr
from fercli.artifacts.base import SCHEMA, display_name

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


#: id(open file) -> its guard, while create_artifact's block runs (:func:`write_failure`).
_GUARDS: dict[int, "_GuardedFile"] = {}


def write_failure(f: h5py.File) -> Optional[OSError]:
    """The first failed write into ``f`` (an artifact being created), or None.

    A writer that streams for hours asks after each piece it wrote, so a full disk
    stops the stage at once instead of the guard keeping the rest in memory."""
    guard = _GUARDS.get(id(f))
    return guard.error if guard is not None else None


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
                _GUARDS[id(f)] = guard
                try:
                    yield f
                finally:
                    del _GUARDS[id(f)]
        finally:
            guard.close()
        if guard.error is not None:
            raise write_error(path, guard.error)
