"""Opening artifacts for reading: paths and standard input, the kind and version check."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any, Iterator, Sequence

import h5py

from fercli import __version__, untrusted
from fercli.errors import FercliError
from fercli.artifacts.attributes import _as_str
from fercli.artifacts.base import SCHEMA, _short, display_name
from fercli.artifacts.validation import validate

# --------------------------------------------------------------------------- names


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
