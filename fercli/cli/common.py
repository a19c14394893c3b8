"""Helpers shared by the command modules: progress bars, option parsing, output.

What every command uses for untrusted input (docs/security.md):

- :func:`number_opt` declares a numeric option whose value is checked before
  the command runs (finite, within bounds; one sentence naming the option);
- :func:`output_option` / :func:`input_option` (from :mod:`fercli.cli.paths`)
  declare every path a command writes or reads: before the command runs,
  each output passes :func:`check_outputs` (from :mod:`fercli.artifacts`),
  which refuses an output that is an input or not a regular file;
- :data:`err` and :data:`out` print text literally: nothing from data or paths
  is read as rich markup (``[/b]`` in a class name prints as is); styled
  labels are built with :func:`bold`.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from fercli.artifacts import check_outputs  # noqa: F401  (the one output check every command calls)
from fercli.cli.paths import FIGURE, FILE, FOLDER, TEXT, Writes, input_option, output_option  # noqa: F401  (how commands declare paths)
from fercli.errors import FercliError
from fercli.progress import ProgressFn

#: Everything human-readable goes to stderr: stdout may be carrying an artifact.
#: markup=False: text from data (class names, paths, CSV values) is printed literally.
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
#: Tables and reports on standard output, as literal as ``err``.
out = Console(highlight=False, markup=False)

OutputOpt = output_option(..., "-o", "--output", help="Output artifact path ('-' = standard output).")

#: Largest image side any option may ask for (frames, crops, --resize, --size).
MAX_SIDE = 16384


def bold(text: str) -> Text:
    """A bold label for tables (a ``Text``: never parsed as markup)."""
    return Text(str(text), style="bold")


def number_opt(default: Any, *flags: str, help: str, min: Optional[float] = None, max: Optional[float] = None,
               above: Optional[float] = None, below: Optional[float] = None, **kwargs: Any) -> Any:
    """``typer.Option`` for a number, checked before the command runs.

    nan and infinities are refused, as are values under ``min`` / over ``max``
    (inclusive) or not strictly above ``above`` / below ``below``; the sentence
    names the option.  Every numeric option is declared with it, so no value is
    silently replaced by a default.  ``None`` (an optional option left out)
    passes.
    """
    flag = next((f for f in flags if f.startswith("--")), flags[0] if flags else "the value")

    def check(value: Any) -> Any:
        if value is None:
            return value
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise FercliError(f"{flag} must be a finite number (got {shown})")
        if min is not None and value < min:
            raise FercliError(f"{flag} must be at least {min:g} (got {shown})")
        if above is not None and not value > above:
            raise FercliError(f"{flag} must be a positive number (got {shown})" if above == 0 else
                              f"{flag} must be greater than {above:g} (got {shown})")
        if max is not None and value > max:
            raise FercliError(f"{flag} must be at most {max:g} (got {shown})")
        if below is not None and not value < below:
            raise FercliError(f"{flag} must be less than {below:g} (got {shown})")
        return value

    return typer.Option(default, *flags, help=help, callback=check, **kwargs)


#: --threads of train, evaluate and prune (range-checked like every number: a huge count would spawn that many threads).
ThreadsOpt = number_opt(1, "--threads", min=0, max=256, help="torch CPU threads (default 1: the same result on any machine and core count; 0 = torch's default, one per core).")


@contextlib.contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator[ProgressFn]:
    """A rich progress bar on stderr; yields the ``progress(done, total)`` callback."""
    if quiet or not err.is_terminal:
        # Batch jobs and CI logs: no animation, one line at the end is enough.
        yield lambda done, total: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def examples(*commands: str) -> str:
    """A command's ``--help`` epilog: worked examples, one paragraph each (rich keeps them apart)."""
    return "Example" + ("s" if len(commands) > 1 else "") + ":\n\n" + "\n\n".join(f"  {c}" for c in commands)


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """'640x490' -> (640, 490); '64' -> (64, 64)."""
    try:
        if "x" in text.lower():
            w, h = text.lower().split("x")
            size = (int(w), int(h))
        else:
            size = (int(text), int(text))
    except ValueError:
        raise FercliError(f"{option} must look like WxH or N (got '{text}')") from None
    if min(size) <= 0:
        raise FercliError(f"{option} must be positive (got '{text}')")
    if max(size) > MAX_SIDE:
        raise FercliError(f"{option} sides must be at most {MAX_SIDE} pixels (got '{text}')")
    return size


def parse_range(text: str, option: str, limit: int = 100_000) -> tuple[int, int]:
    """'8:20' -> (8, 20); '10' -> (10, 10); MAX at most ``limit``."""
    try:
        lo, hi = (text.split(":") + [text])[:2] if ":" in text else (text, text)
        lo, hi = int(lo), int(hi)
    except ValueError:
        raise FercliError(f"{option} must look like MIN:MAX (got '{text}')") from None
    if lo <= 0 or hi < lo:
        raise FercliError(f"{option} needs 0 < MIN <= MAX (got '{text}')")
    if hi > limit:
        raise FercliError(f"{option} MAX must be at most {limit} (got '{text}')")
    return lo, hi


def parse_shard(text: Optional[str]) -> Optional[tuple[int, int]]:
    """'3/16' -> (3, 16), shards numbered 0..n-1 (SLURM_ARRAY_TASK_ID friendly)."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise FercliError(f"--shard must look like I/N (got '{text}')") from None
    if n <= 0 or not 0 <= i < n:
        raise FercliError(f"--shard I/N needs 0 <= I < N (got '{text}')")
    if n > 1_000_000:
        raise FercliError(f"--shard N must be at most 1000000 (got '{text}')")
    return i, n


def refuse_media(path: str, stage: str) -> None:
    """A video or image file given where an artifact is expected: say which ingest makes one."""
    import os

    from fercli.ingest.common import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    ext = os.path.splitext(path)[1].lower()
    kind = "video" if ext in VIDEO_EXTENSIONS else "images" if ext in IMAGE_EXTENSIONS else None
    if kind is not None and path != "-":
        source = path if kind == "video" else (os.path.dirname(path) or ".")
        raise FercliError(f"{path} is {'a video' if kind == 'video' else 'an image'} file, and {stage} reads fercli artifacts: "
                          f"run `fercli ingest {kind} {source} -o clips.h5` first, then `fercli {stage} clips.h5 ...`")


def print_json(value: Any) -> None:
    """JSON to stdout (for scripts)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
