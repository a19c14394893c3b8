"""One guard for every path a command writes (docs/security.md, issue 20).

A writing option is declared with :func:`output_option` (or :data:`~fercli.cli.common.OutputOpt`),
an option that names a file the command reads with :func:`input_option`; every
positional argument counts as an input.  :func:`guarded` wraps each command
(``fercli.cli.app`` applies it to every ``@app.command``), so before the
command's body runs, whatever it will write has passed
:func:`fercli.artifacts.check_outputs`: not an input (same file by device and
inode), not a FIFO, a device or a folder, two outputs never the same file, the
folder exists and is writable.  A new option cannot skip it by being
forgotten: ``tests/test_output_guard.py`` walks the typer app and fails on a
path option that is not declared one way or the other.
"""

from __future__ import annotations

import functools
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

import typer

from fercli.artifacts import check_outputs
from fercli.errors import FercliError
from fercli.untrusted import one_line

#: The attribute of a typer ``OptionInfo`` / ``ArgumentInfo`` that says what the guard does with it.
WRITES = "fercli_writes"
READS = "fercli_reads"


@dataclass(frozen=True)
class Writes:
    """What an output option writes.

    ``stdout``: what '-' means -- ``"artifact"`` (binary to standard output: refused on a
    terminal), ``"text"`` (CSV/JSON lines: fine anywhere) or ``"refused"`` (the command
    refuses '-' with its own sentence).  ``folder``: a folder of files (TensorBoard
    runs), so an existing path must be a folder.  ``figure``: a .png/.pdf/.svg file.
    ``expand(value, params)``: the files actually written when they are not ``value``
    itself (``export --split`` writes NAME-cnn.onnx and NAME-gru.onnx).
    """

    stdout: str = "artifact"
    folder: bool = False
    figure: bool = False
    expand: Optional[Callable[[str, dict], list[str]]] = None


ARTIFACT = Writes()
TEXT = Writes(stdout="text")
FILE = Writes(stdout="refused")
FIGURE = Writes(stdout="refused", figure=True)
FOLDER = Writes(stdout="refused", folder=True)


def output_option(default: Any, *flags: str, help: str, writes: Writes = ARTIFACT, **kwargs: Any) -> Any:
    """``typer.Option`` for a path the command writes; checked by :func:`guard` before the command runs."""
    info = typer.Option(default, *flags, help=help, **kwargs)
    setattr(info, WRITES, writes)
    setattr(info, "fercli_flag", next((f for f in flags if f.startswith("--")), flags[0] if flags else "-o"))
    return info


def input_option(default: Any, *flags: str, help: str, sep: Optional[str] = None, **kwargs: Any) -> Any:
    """``typer.Option`` for a file the command reads (``sep``: several paths in one value, e.g. ',')."""
    info = typer.Option(default, *flags, help=help, **kwargs)
    setattr(info, READS, sep or "")
    return info


def _values(value: Any, sep: str = "") -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.extend(p.strip() for p in item.split(sep) if p.strip()) if sep else out.append(item)
    return out


def roles(func: Callable) -> tuple[list[str], dict[str, Writes], dict[str, str]]:
    """(input argument names, {output parameter: Writes}, {input option: separator}) of a command function."""
    arguments, outputs, options = [], {}, {}
    for name, param in inspect.signature(func).parameters.items():
        info = param.default
        if isinstance(info, typer.models.ArgumentInfo):
            arguments.append(name)
        elif hasattr(info, WRITES):
            outputs[name] = getattr(info, WRITES)
        elif hasattr(info, READS):
            options[name] = getattr(info, READS)
    return arguments, outputs, options


def check_folder(path: str, flag: str) -> None:
    """A folder output (created if missing): an existing path must be a folder, and writable."""
    shown = one_line(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise FercliError(f"{flag} {shown} exists and is not a folder: name a folder to write into")
    if os.path.isdir(path) and not os.access(path, os.W_OK):
        raise FercliError(f"cannot write into {shown}: the folder is not writable")


def guard(func: Callable, params: dict) -> None:
    """Refuse, before any work, an output of ``func`` called with ``params`` that may not be written."""
    arguments, outputs, options = roles(func)
    inputs = [p for name in arguments for p in _values(params.get(name))]
    inputs += [p for name, sep in options.items() for p in _values(params.get(name), sep)]
    files: list[str] = []
    figures: list[tuple[str, str]] = []
    for name, writes in outputs.items():
        value = params.get(name)
        if not isinstance(value, str) or value == "":
            continue
        flag = getattr(inspect.signature(func).parameters[name].default, "fercli_flag", name)
        if value == "-":
            if writes.stdout == "artifact":
                files.append(value)  # check_output_path refuses a terminal
            continue
        if writes.folder:
            check_folder(value, flag)
            continue
        if writes.figure:
            figures.append((value, flag))
        files.extend(writes.expand(value, params) if writes.expand else [value])
    check_outputs(inputs, files)
    for value, flag in figures:  # after check_outputs: "the same file as -o" says more than "not a .png"
        from fercli.figures import check_figure_path

        check_figure_path(value, flag)


def guarded(func: Callable) -> Callable:
    """``func`` with :func:`guard` run on its arguments first (typer reads the signature through ``__wrapped__``)."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(*args, **kwargs)
        guard(func, dict(bound.arguments))
        return func(*args, **kwargs)

    return command
