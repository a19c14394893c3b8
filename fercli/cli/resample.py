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

    clips, identity, lineage = artifacts.load_clips(path, "resample")
    per_frame = int(np.prod(clips.frame_shape, dtype=np.int64)) if len(clips) else 0
    untrusted.check_budget(len(clips) * n * per_frame * (3 if ckplus_split else 1), f"-n {n} makes {len(clips)} clips that need")
    params = {"n": n, "method": method, "ckplus_split": ckplus_split}
    with progress_bar("resample") as progress:
        if ckplus_split:
            params["part"] = part
            out = temporal.ckplus_split(clips, n, method, part, progress)
        else:
            out = temporal.resample(clips, n, method, progress)
    artifacts.save_clips(output, out, [*lineage, artifacts.lineage_entry("resample", params, [identity])])
    err.print(f"resample: {len(clips)} clips -> {len(out)} clips of {n} frames ({method})", markup=False)
