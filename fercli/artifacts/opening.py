"""Opening artifacts for reading: paths and standard input, the kind and version check."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from typing import Any, Iterator, Sequence

import h5py

from fercli import __version__, untrusted
from fercli.errors import FercliError
from fercli.artifacts.attributes import _as_str
from fercli.artifacts.base import SCHEMA, _short, display_name
from fercli.artifacts.output import _HOST, TEMP_PREFIX, remove_stale_temps
from fercli.artifacts.validation import validate

# --------------------------------------------------------------------------- names


def _describe_kinds(kinds: Sequence[str]) -> str:
    quoted = [f"'{k}'" for k in kinds]
    return quoted[0] if len(quoted) == 1 else " or ".join([", ".join(quoted[:-1]), quoted[-1]])


# --------------------------------------------------------------------------- reading


#: Bytes read from standard input at a time while it is spooled.
SPOOL_BLOCK = 4 << 20


def _stdin_stream() -> Any:
    """The binary standard input, or one sentence when there is none to read."""
    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is None:
            raise OSError(errno.EBADF, "closed")
        os.fstat(stream.fileno())
    except (OSError, ValueError):
        raise FercliError("standard input is closed (as cron, daemons and some schedulers start jobs): "
                          "give the artifact as a file, or pipe a fercli stage into '-'") from None
    if stream.isatty():
        raise FercliError("no input on standard input: give a file, or pipe another fercli stage into '-'")
    return stream


def spool_stdin() -> str:
    """Standard input copied to a temporary file in ``TMPDIR`` (HDF5 needs to seek), so a
    pipe costs disk, not memory; returns its path (the caller unlinks it once opened).

    A full disk is one sentence and the partial copy is removed; so is any interruption."""
    stream = _stdin_stream()
    folder = tempfile.gettempdir()
    remove_stale_temps(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}@{_HOST}-stdin-", suffix=".h5", dir=folder)
    size = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            while True:
                try:
                    block = stream.read(SPOOL_BLOCK)
                except OSError as exc:
                    raise FercliError(f"cannot read standard input: {exc.strerror or exc}") from None
                if not block:
                    break
                try:
                    view = memoryview(block)
                    while view:
                        view = view[out.write(view) or 0:]
                except OSError as exc:
                    hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
                    raise FercliError(f"cannot spool standard input to {untrusted.one_line(folder)}: {exc.strerror or exc}{hint}; "
                                      "set TMPDIR to a folder with room, or give the artifact as a file") from None
                size += len(block)
        if not size:
            raise FercliError("standard input is empty (did the stage before this one in the pipe fail?)")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def open_h5(path: str) -> h5py.File:
    """Open an HDF5 file for reading ('-' = stdin) with user-facing errors."""
    name = display_name(path)
    if path == "-":
        source = spool_stdin()
    else:
        untrusted.regular_file(path, "an artifact file")
        source = path
    try:
        return h5py.File(source, "r")
    except OSError as exc:
        raise FercliError(f"{name} is not a readable HDF5 file (truncated or corrupt?): {_short(exc)}") from exc
    finally:
        if path == "-":  # open (or refused): the spooled copy needs no name, and leaves nothing behind
            with contextlib.suppress(OSError):
                os.unlink(source)


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
