"""`fercli align`: detect, track, register and crop faces (thesis 3.2.2, 4.2.7)."""

from __future__ import annotations

from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, err, examples, number_opt, parse_shard, progress_bar, refuse_media
from fercli.cli.tracker_options import typer_option, with_tracker_options
from fercli.tracking_options import SIZE


@app.command(help="Detect faces, fit 68 landmarks and register each face to the mean face (eyes + nose tip), cropped to SIZE.",
             epilog=examples("fercli align clips.h5 --size 64 -o aligned.h5", "fercli align video.h5 --missing drop --transform similarity -o aligned.h5"))
@with_tracker_options
def align(
    path: str = typer.Argument(..., help="Input 'clips' artifact ('-' = standard input)."),
    output: str = OutputOpt,
    size: int = typer_option(SIZE),
    gray: bool = typer.Option(True, "--gray/--color", help="Gray output (default) or colour (needs colour input)."),
    no_align: bool = typer.Option(False, "--no-align", help="Crop the detector's box only (square, no registration): chapter 4's unaligned mode."),
    transform: str = typer.Option("affine", "--transform", help="affine (exact eyes + nose tip, as 3.2.2), similarity (least squares, no shear: turned heads) or auto (similarity for clips whose face is turned more than ~15 degrees)."),
    faces: str = typer.Option("best", "--faces", help="best: the most confident face per clip; all: every face, each tracked as its own clip (id in clip_id '#faceN' and face_id)."),
    missing: str = typer.Option("hold", "--missing", help="Frames without a face: hold (previous transform), interpolate, or drop."),
    focal: Optional[float] = number_opt(None, "--focal", help="Head pose (table's pose_* columns): the source camera's focal length in pixels (default OpenFace's: fx = 500 x width / 640, fy = 500 x height / 480).", min=1.0, max=1e6),
    workers: int = number_opt(1, "--workers", help="Processes (clips are spread over them; output order is unchanged).", min=1, max=256),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: process only contiguous block I (0-based) of N; `fercli merge` the shards in order."),
    *,
    tracker: dict,
) -> None:
    from fercli.align import AlignOptions, aligned_meta
    from fercli.align_stream import align_artifact

    refuse_media(path, "align")
    options = AlignOptions(size=size, gray=gray, align=not no_align, transform=transform, faces=faces, missing=missing,
                           workers=workers, focal=focal, **tracker)
    options.check()
    shard_t = parse_shard(shard)
    params = {**options.parameters(), "shard": shard}
    with artifacts.open_clips(path, "align") as reader:
        index = artifacts.shard_indices(len(reader), shard_t)  # an array task reads only its own clips' frames
        lineage = [*reader.lineage, artifacts.lineage_entry("align", params, [reader.identity])]
        with artifacts.clip_writer(output, lineage, aligned_meta(reader.meta, options)) as writer, progress_bar("align") as progress:
            stats = align_artifact(reader, writer, options, index, progress)
    total = max(1, stats.frames_in)
    if options.faces == "all":
        err.print(f"align: {stats.clips_out} faces tracked in {stats.clips_in - len(stats.dropped_clips)}/{stats.clips_in} clips "
                  f"({stats.frames_in} frames), {stats.found} face-frames found, {stats.missing} filled while a face was lost "
                  f"({options.missing}), detector ran on {stats.detections} frames", soft_wrap=True, markup=False)
    else:
        err.print(f"align: {stats.clips_out}/{stats.clips_in} clips, faces found in {stats.found}/{stats.frames_in} frames "
                  f"({100 * stats.found / total:.1f} %), {stats.missing} without a face ({options.missing}), "
                  f"detector ran on {stats.detections} frames", soft_wrap=True, markup=False)
    if stats.dropped_clips:
        first = ", ".join(stats.dropped_clips[:5])
        err.print(f"align: dropped {len(stats.dropped_clips)} clip(s) with no face at all (first: {first})", soft_wrap=True, markup=False)
    if options.transform == "auto" and options.align:
        err.print(f"align: --transform auto registered {stats.similarity_clips}/{stats.clips_out} clips by similarity "
                  f"(turned faces), the rest affine", soft_wrap=True, markup=False)
    if stats.gt_error_iod_pct is not None:
        err.print(f"align: mean landmark error vs the input's landmarks {stats.gt_error_iod_pct:.2f} % of inter-ocular distance", soft_wrap=True, markup=False)
