"""`fercli synth`: the embedded CK+-like default dataset (see :mod:`fercli.synth`)."""

from __future__ import annotations

import os
from typing import Optional

import typer

from fercli import artifacts, untrusted
from fercli.cli.app import app
from fercli.cli.common import FILE, OutputOpt, examples, input_option, output_option, number_opt, parse_range, parse_size, progress_bar
from fercli.errors import FercliError


@app.command(help="Make CK+-like expression clips by warping a real photograph (embedded default data).",
             epilog=examples("fercli synth --subjects 4 --classes happy,surprise --video demo.mp4 -o demo.h5"))
def synth(
    output: str = OutputOpt,
    subjects: int = number_opt(10, "--subjects", help="Number of synthetic subjects (identities).", min=1, max=100_000),
    clips_per_class: int = number_opt(1, "--clips-per-class", help="Clips per subject and class.", min=1, max=10_000),
    classes: Optional[str] = typer.Option(
        None, "--classes", help="Comma-separated subset of anger,contempt,disgust,fear,happy,sadness,surprise (default: all 7, CK+ order)."
    ),
    frames: str = typer.Option("8:16", "--frames", help="Clip length range MIN:MAX (neutral -> apex)."),
    size: str = typer.Option("640x490", "--size", help="Frame size WxH (CK+ is 640x490)."),
    color: bool = typer.Option(False, "--color", help="RGB frames (default gray, like CK+)."),
    seed: int = number_opt(0, "--seed", help="Random seed; the same seed gives identical arrays.", min=0, max=2**63 - 1),
    faces: Optional[str] = input_option(None, "--faces", help="Folder of frontal face photographs to warp instead of the astronaut."),
    video: Optional[str] = output_option(None, "--video", writes=FILE, help="Also render the clips one after another as an MP4 (mp4v) video."),
    fps: float = number_opt(30.0, "--fps", help="Frame rate of --video.", above=0, max=1000),
    motion: str = typer.Option(
        "none", "--motion", help="Head movement over each clip: none, mild (small turns and shifts), strong (yaw/pitch/roll, "
        "shifts, scale, light change, motion blur, a brief occlusion) or speech (mild's head movement and a talking "
        "mouth: jaw and lips at 3-6 syllables/s). Landmarks stay exact."
    ),
    faces_per_frame: int = number_opt(
        1, "--faces-per-frame", min=1, max=16, help="Subjects side by side in each frame (a group video for align --faces all); "
        "the artifact's landmarks are the leftmost face's."
    ),
) -> None:
    if video == "-":
        raise FercliError("--video needs a file name, not '-'")
    size_wh = parse_size(size, "--size")
    frame_range = parse_range(frames, "--frames")
    class_list = None
    if classes is not None:
        class_list = [c.strip() for c in classes.split(",") if c.strip()]
    if faces is not None and not os.path.isdir(faces):
        raise FercliError(f"--faces {faces} is not a folder")
    n_classes = len(class_list) if class_list is not None else 7
    untrusted.check_budget(subjects * clips_per_class * n_classes * frame_range[1] * size_wh[0] * size_wh[1] * (3 if color else 1),
                           f"{subjects} subjects x {clips_per_class} clips x {n_classes} classes of up to {frame_range[1]} frames need up to")

    from fercli.synth import render_video, synthesize, trace_to_video  # numpy/cv2 work only after the options are fine

    with progress_bar("synth") as progress:
        clips = synthesize(
            subjects=subjects, clips_per_class=clips_per_class, classes=class_list, frames=frame_range,
            size=size_wh, color=color, seed=seed, faces=faces, progress=progress, motion=motion,
            faces_per_frame=faces_per_frame,
        )
    params = {
        "subjects": subjects, "clips_per_class": clips_per_class, "classes": list(clips.class_names),
        "frames": list(frame_range), "size": list(size_wh), "color": color, "seed": seed,
        "faces": os.path.abspath(faces) if faces else None, "motion": motion,
        "faces_per_frame": faces_per_frame,
    }
    if video is not None:
        render_video(clips, video, fps)
        trace_to_video(clips, video, fps)
        params["video"] = os.path.abspath(video)
    lineage = [artifacts.lineage_entry("synth", params, [])]
    artifacts.save_clips(output, clips, lineage)
