"""`fercli table`: any artifact as CSV or JSON Lines rows (see :mod:`fercli.tables`)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import TEXT, err, examples, output_option, refuse_media
from fercli.errors import FercliError

EXAMPLES = examples("fercli table aligned.h5 -o frames.csv", "fercli table report.h5 --format jsonl", "fercli table model.h5 -o history.csv")


@app.command(help="Write an artifact as rows: frames of clips (OpenFace-style columns, source-video coordinates), "
                  "clips of a report, epochs of a model, kernels of a pruning.", epilog=EXAMPLES)
def table(
    path: str = typer.Argument(..., metavar="ARTIFACT", help="Any fercli artifact ('-' = standard input)."),
    output: str = output_option("-", "-o", "--output", writes=TEXT, help="CSV / JSON Lines file ('-' = standard output)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv | jsonl (default: from the file name, .jsonl -> jsonl, else csv)."),
) -> None:
    from fercli import tables

    refuse_media(path, "table")
    fmt = tables.format_for(output, fmt)
    name = artifacts.display_name(path)
    # The file stays open while the rows are written: a clips artifact's per-frame arrays
    # are read a piece of frames at a time (tables.frame_table), never whole.  Held, not
    # in open_artifact's block: an error writing the rows is not the artifact's.
    held = artifacts.HeldArtifact(path, None, "table")
    try:
        f = held.file
        kind = artifacts.check_kind(f, path, None, "table")
        try:
            if kind == "clips":
                rows = tables.frame_table(artifacts.read_clips_lazy(f, name, held))
            elif kind == "report":
                rows = tables.report_table(*artifacts.read_report(f), name=name)
            elif kind == "model":
                rows = tables.history_table(artifacts.read_model_header(f))
            else:
                from fercli.artifacts import read_pruning

                rows = tables.pruning_table(read_pruning(f, name, weights=False))
        except (KeyError, OSError) as exc:
            raise FercliError(f"{name} is a damaged '{kind}' artifact: {exc}") from exc
        if output == "-":
            n = tables.write(rows, sys.stdout, fmt)
            sys.stdout.flush()
        else:
            with artifacts.atomic_path(output, suffix="." + fmt) as tmp:
                with open(tmp, "w", encoding="utf-8", newline="") as stream:
                    n = tables.write(rows, stream, fmt)
    finally:
        held.close()
    noun = {"clips": "frame", "report": "sample", "model": "epoch", "pruning": "kernel"}[kind]
    err.print(f"table: {n} {noun} rows ({fmt}) -> {'standard output' if output == '-' else output}", markup=False, highlight=False, soft_wrap=True)
