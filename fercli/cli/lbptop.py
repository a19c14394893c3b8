"""`fercli lbptop`: LBP-TOP code maps beside the frames (thesis 3.2.4, 3.3.1)."""

from __future__ import annotations

from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, err, examples, number_opt, parse_shard, parse_size, progress_bar
from fercli.errors import FercliError


@app.command(help="LBP-TOP code maps of the XT/YT (and XY) planes, stored beside the frames (thesis 3.2.4).",
             epilog=examples("fercli lbptop ten-frames.h5 --planes xt,yt -o planes.h5"))
def lbptop(
    path: str = typer.Argument(..., help="Input 'clips' artifact ('-' = standard input)."),
    output: str = OutputOpt,
    planes: str = typer.Option("xt,yt", "--planes", help="Comma-separated planes among xy, xt, yt (3.2.4 uses xt,yt)."),
    points: int = number_opt(8, "--points", "-P", help="Circular neighbours P.", min=1, max=24),
    radius: float = number_opt(1.0, "--radius", "-R", help="Neighbourhood radius R (pixels and frames).", above=0, max=64),
    method: str = typer.Option("default", "--method", help="default | uniform (skimage nri_uniform) | ror | riu2 (skimage uniform)."),
    histogram: bool = typer.Option(False, "--histogram", help="Also store the classic LBP-TOP histogram descriptor per clip."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Histogram blocks as COLSxROWS (default 4x4; implies --histogram)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Process only contiguous block I of N of the clips (0-based I/N, for job arrays; fercli merge joins them)."),
) -> None:
    from fercli import lbptop as stage

    plane_list = [p.strip().lower() for p in planes.split(",") if p.strip()]
    stage.check_parameters(points, radius, method, plane_list)
    grid_size = parse_size(grid, "--grid") if grid is not None else (4, 4)
    histogram = histogram or grid is not None
    shard_spec = parse_shard(shard)
    clips, identity, lineage = artifacts.load_clips(path, "lbptop", lazy=shard_spec is not None)  # a shard reads only its clips
    if len(clips) == 0:
        raise FercliError(f"{artifacts.display_name(path)} holds no clips")
    if shard_spec is not None:
        clips = clips.select(stage.shard_indices(len(clips), shard_spec))
    params = {"planes": plane_list, "points": points, "radius": radius, "method": method, "skimage_method": stage.METHODS[method]}
    if histogram:
        params["grid"] = list(grid_size)
    if shard_spec is not None:
        params["shard"] = f"{shard_spec[0]}/{shard_spec[1]}"
    with progress_bar("lbptop") as progress:
        out = stage.lbp_top(clips, plane_list, points, radius, method, histogram, grid_size, progress)
    artifacts.save_clips(output, out, [*lineage, artifacts.lineage_entry("lbptop", params, [identity])])
    shape = "x".join(map(str, out.meta["lbp"]["map_shape"]))
    extra = f", histograms of {out.histograms.shape[1]} values" if out.histograms is not None else ""
    err.print(f"lbptop: {len(out)} clips -> {int(out.plane_offsets[-1])} maps of {shape} per plane ({', '.join(plane_list)}; P={points}, R={radius:g}, {method}){extra}", soft_wrap=True)
