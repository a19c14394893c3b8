"""`fercli resample`: every clip to N frames; `--ckplus-split` for thesis 4.2.7's three clips."""

from __future__ import annotations

import numpy as np
import typer

from fercli import artifacts, untrusted
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, err, examples, number_opt, progress_bar


@app.command(help="Resample every clip to exactly N frames, first and last kept (thesis 3.2.2, 4.3.1).",
             epilog=examples("fercli resample aligned.h5 -n 10 -o ten-frames.h5"))
def resample(
    path: str = typer.Argument(..., help="Input 'clips' artifact ('-' = standard input)."),
    output: str = OutputOpt,
    n: int = number_opt(..., "-n", "--frames", help="Frames per output clip (>= 2).", min=2, max=100_000),
    method: str = typer.Option("linear", "--method", help="linear (blend neighbouring frames) or nearest (original frames only)."),
    ckplus_split: bool = typer.Option(False, "--ckplus-split", help="Three clips per sequence as thesis 4.2.7: neutral->peak, neutral->neutral, peak->peak."),
    part: int = number_opt(3, "--part", help="With --ckplus-split: frames taken from the start / end for the neutral / peak clips (4.3.1 uses 3).", min=1, max=100_000),
) -> None:
    from fercli import temporal
    from fercli.clipstream import map_clips

    params = {"n": n, "method": method, "ckplus_split": ckplus_split}
    if ckplus_split:
        params["part"] = part
    with artifacts.open_clips(path, "resample") as reader:
        header = reader.header
        temporal.check_input(header, n, method, part if ckplus_split else None)  # the whole input, before any work
        per_clip = n * int(np.prod(header.frames.shape[1:], dtype=np.int64)) * (3 if ckplus_split else 1)
        untrusted.check_budget(per_clip, f"-n {n} makes clips that need")

        def run(batch: artifacts.Clips) -> artifacts.Clips:
            return temporal.ckplus_split(batch, n, method, part) if ckplus_split else temporal.resample(batch, n, method)

        lineage = [*reader.lineage, artifacts.lineage_entry("resample", params, [reader.identity])]
        with artifacts.clip_writer(output, lineage) as writer, progress_bar("resample") as progress:
            map_clips(reader, writer, run, progress, out_bytes_per_clip=per_clip)
        made = writer.n_clips
    err.print(f"resample: {len(header)} clips -> {made} clips of {n} frames ({method})", markup=False)
