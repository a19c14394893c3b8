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
    from fercli.clipstream import map_clips

    plane_list = [p.strip().lower() for p in planes.split(",") if p.strip()]
    stage.check_parameters(points, radius, method, plane_list)
    grid_size = parse_size(grid, "--grid") if grid is not None else (4, 4)
    histogram = histogram or grid is not None
    shard_spec = parse_shard(shard)
    params = {"planes": plane_list, "points": points, "radius": radius, "method": method, "skimage_method": stage.METHODS[method]}
    if histogram:
        params["grid"] = list(grid_size)
    if shard_spec is not None:
        params["shard"] = f"{shard_spec[0]}/{shard_spec[1]}"
    with artifacts.open_clips(path, "lbptop") as reader:
        if len(reader) == 0:
            raise FercliError(f"{reader.name} holds no clips")
        index = stage.shard_indices(len(reader), shard_spec) if shard_spec is not None else None  # a shard reads only its clips
        stage.check_clips(reader.header, plane_list, points, radius, method, histogram, grid_size, index)

        def run(batch: artifacts.Clips) -> artifacts.Clips:
            return stage.lbp_top(batch, plane_list, points, radius, method, histogram, grid_size)

        lineage = [*reader.lineage, artifacts.lineage_entry("lbptop", params, [reader.identity])]
        with artifacts.clip_writer(output, lineage) as writer, progress_bar("lbptop") as progress:
            if index is not None and len(index) == 0:  # an empty shard: an empty artifact of the right layout
                writer.append(run(reader.read(index)))
            # LBP-TOP holds ~8x its input (maps of every plane, float working copies, histograms).
            map_clips(reader, writer, run, progress, index=index, max_bytes=artifacts.batch_bytes() // 4)
    lbp = writer.meta["lbp"]
    shape = "x".join(map(str, lbp["map_shape"]))
    dim = writer.meta.get("lbp_histogram", {}).get("dim")
    extra = f", histograms of {dim} values" if histogram and dim is not None else ""
    maps = writer.n_frames - writer.n_clips * 2 * lbp["margin"]
    err.print(f"lbptop: {writer.n_clips} clips -> {maps} maps of {shape} per plane ({', '.join(plane_list)}; P={points}, R={radius:g}, {method}){extra}", soft_wrap=True)
