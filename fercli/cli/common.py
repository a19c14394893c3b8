"""Helpers shared by the command modules: progress bars, option parsing, output."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from fercli.errors import FercliError
from fercli.progress import ProgressFn

#: Everything human-readable goes to stderr: stdout may be carrying an artifact.
err = Console(stderr=True, highlight=False, soft_wrap=True)

OutputOpt = typer.Option(..., "-o", "--output", help="Output artifact path ('-' = standard output).")
ThreadsOpt = typer.Option(1, "--threads", help="torch CPU threads (default 1: the same result on any machine and core count; 0 = torch's default, one per core).")


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
    return size


def parse_range(text: str, option: str) -> tuple[int, int]:
    """'8:20' -> (8, 20); '10' -> (10, 10)."""
    try:
        lo, hi = (text.split(":") + [text])[:2] if ":" in text else (text, text)
        lo, hi = int(lo), int(hi)
    except ValueError:
        raise FercliError(f"{option} must look like MIN:MAX (got '{text}')") from None
    if lo <= 0 or hi < lo:
        raise FercliError(f"{option} needs 0 < MIN <= MAX (got '{text}')")
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
