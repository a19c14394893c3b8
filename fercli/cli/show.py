"""`fercli show`: any artifact as the figure people would rather look at (see :mod:`fercli.figures`)."""

from __future__ import annotations

from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import FIGURE, err, examples, output_option, refuse_media

EXAMPLES = examples("fercli show aligned.h5 -o sheet.png", "fercli show planes.h5 -o planes.png", "fercli show model.h5 -o curves.pdf", "fercli show report.h5 -o cm.svg",
                    "fercli show frames.csv -o timeline.png")


@app.command(help="Draw an artifact: clips as a contact sheet with landmarks and boxes, LBP-TOP planes (Fig 3.4), "
                  "a model's training curves, a report's confusion matrix (Fig 3.7), pruning SE histograms (Fig 5.4), a live log's expression timeline.",
             epilog=EXAMPLES)
def show(
    path: str = typer.Argument(..., metavar="ARTIFACT", help="Any fercli artifact ('-' = standard input), or a `live --csv` / `--headless` log (.csv, .jsonl): the expression timeline."),
    output: str = output_option(..., "-o", "--output", writes=FIGURE, help="Figure file: .png, .pdf or .svg (text stays text in PDF/SVG)."),
    clip: Optional[str] = typer.Option(None, "--clip", help="clips / planes: draw this clip id only (default: the first clips)."),
    clips_n: int = typer.Option(6, "--clips", help="clips: how many clips (rows) the contact sheet shows."),
    frames: int = typer.Option(8, "--frames", help="clips / planes: frames (columns) per clip, evenly spaced."),
    counts: bool = typer.Option(False, "--counts", help="report: also write the counts in the confusion matrix's cells."),
    step: int = typer.Option(0, "--step", help="pruning: the schedule step whose cut is drawn (0 = first ratio)."),
    dpi: int = typer.Option(100, "--dpi", help="PNG resolution (dots per inch)."),
) -> None:
    from fercli import figures
    from fercli.errors import FercliError

    refuse_media(path, "show")
    if clips_n < 1 or frames < 1 or not 20 <= dpi <= 600:
        raise FercliError("--clips and --frames must be at least 1, --dpi between 20 and 600")
    from fercli import timeline

    if timeline.is_log(path):  # a live --csv / --headless log: the expression timeline
        log = timeline.read(path)
        figures.save(timeline.figure(log), output, dpi=dpi)
        err.print(f"show: timeline of {len(log.windows)} face(s) over {len(log.frames)} frames of {path} -> {output}", markup=False, highlight=False, soft_wrap=True)
        return
    name = artifacts.display_name(path)
    data: dict = {}
    with artifacts.open_artifact(path, None, "show", whole=False) as f:
        kind = artifacts.check_kind(f, path, None, "show")
        if kind == "clips":  # lazy: the figure reads only the frames and code maps it draws
            data["clips"] = artifacts.read_clips_lazy(f, name)
        elif kind == "report":
            data["report"] = artifacts.read_report(f)[0]
        elif kind == "model":
            data["record"] = artifacts.read_model_header(f)
        else:
            from fercli.artifacts import read_pruning

            data["pruning"] = read_pruning(f, name, weights=False)
        fig = figures.for_artifact(kind, clip=clip, frames=frames, counts=counts, step=step, max_clips=clips_n, **data)
    figures.save(fig, output, dpi=dpi)
    err.print(f"show: {figures.describe(kind, data.get('clips'))} of {name} -> {output}", markup=False, highlight=False, soft_wrap=True)
