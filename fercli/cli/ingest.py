"""`fercli ingest DATASET SOURCE... -o OUT`: published datasets -> a 'clips' artifact (thesis 2.1).

One subcommand per dataset, so each has its own --help with its layout and
options.  What was skipped (unreadable files, empty sequences, unknown labels)
is reported on stderr after the artifact is written; if nothing usable was
found the stage fails with one sentence and writes nothing.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import typer

from fercli import artifacts
from fercli.cli.app import GuardedTyper, app
from fercli.cli.common import MAX_SIDE, OutputOpt, check_outputs, err, input_option, examples, number_opt, parse_shard, parse_size, progress_bar

ingest_app = GuardedTyper(
    help="Read a dataset in its published layout into a 'clips' artifact (see each dataset's --help for its layout).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ingest_app, name="ingest")


# Options shared by several datasets (functions: typer needs a fresh object per use).
def _color_opt(default_text: str):
    return typer.Option(None, "--gray/--color", help=f"Store gray or RGB frames (default: {default_text}).", show_default=False)


def _resize_opt():
    return typer.Option(None, "--resize", help="Scale every frame to WxH (needed when frames come in several sizes, unless --pad).")


def _pad_opt(default: bool = False):
    text = "Place frames of different sizes top-left on the largest canvas (pixel coordinates unchanged)."
    if default:
        return typer.Option(True, "--pad/--no-pad", help=text + " Default on: the dataset mixes frame sizes.")
    return typer.Option(False, "--pad", help=text)


def _max_side_opt():
    return number_opt(None, "--max-side", help="Downscale frames whose longer side exceeds N pixels (keeps aspect ratio).", min=1, max=MAX_SIDE)


def _strict_opt():
    return typer.Option(False, "--strict", help="Fail (exit 2, nothing written) if anything had to be skipped.")


def _label_opt():
    return typer.Option(None, "--label", help="Give every file this class (instead of its parent folder's name), e.g. --label happy.")


def _subject_opt():
    return typer.Option(None, "--subject", help="Give every file this subject id (default: each file is its own subject).")


def _workers_opt():
    return number_opt(0, "--workers", help="Image-decoding threads (0 = up to 8, one per CPU).", min=0, max=256)


def _frames(gray: Optional[bool], resize: Optional[str], pad: bool = False, max_side: Optional[int] = None, workers: int = 0):
    from fercli.ingest.common import FrameOptions

    return FrameOptions(
        color=None if gray is None else not gray,
        resize=parse_size(resize, "--resize") if resize else None,
        pad=pad,
        max_side=max_side,
        workers=workers,
    )


def _run(dataset: str, output: str, sources: list[str], params: dict, work: Callable) -> None:
    """Check the output, run the importer with a progress bar, save, report."""
    check_outputs(sources, [output])
    with progress_bar(f"ingest {dataset}") as progress:
        clips, report = work(progress)
    parameters = {
        "dataset": dataset,
        "sources": [os.path.abspath(s) for s in sources],
        **params,
        "color": clips.is_color,
        "frame_shape": list(clips.frame_shape),
    }
    artifacts.save_clips(output, clips, [artifacts.lineage_entry("ingest", parameters, [])])
    for line in report.lines():
        err.print(f"ingest: {line}", markup=False, highlight=False, soft_wrap=True)
    labelled = int((clips.labels >= 0).sum())
    shape = "x".join(map(str, clips.frame_shape[1::-1])) + (" RGB" if clips.is_color else " gray")
    err.print(
        f"ingest {dataset}: {_n(clips.n_clips, 'clip')} ({labelled} labelled, {_n(len(clips.class_names), 'class', 'classes')}), "
        f"{_n(len(clips.frames), 'frame')} of {shape} -> {artifacts.display_name(output)}",
        markup=False, highlight=False, soft_wrap=True,
    )


def _n(count: int, singular: str, plural: str = "") -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


@ingest_app.command("ckplus", help="CK+: ROOT/cohn-kanade-images/S005/001/*.png with labels in ROOT/Emotion/S005/001/*_emotion.txt.",
                    epilog=examples("fercli ingest ckplus ~/data/CK+ -o ck.h5"))
def ckplus(
    root: str = typer.Argument(..., help="The CK+ folder holding cohn-kanade-images/ and Emotion/."),
    output: str = OutputOpt,
    all_: bool = typer.Option(False, "--all", help="Also keep the unlabelled sequences (label -1); default: the 327 labelled ones."),
    gray: Optional[bool] = _color_opt("gray"),
    resize: Optional[str] = _resize_opt(),
    pad: bool = _pad_opt(default=True),
    strict: bool = _strict_opt(),
    workers: int = _workers_opt(),
) -> None:
    from fercli.ingest import ingest_ckplus

    frames = _frames(gray, resize, pad, workers=workers)
    _run("ckplus", output, [root], {"all": all_, **frames.describe()},
         lambda p: ingest_ckplus(root, include_unlabelled=all_, frames=frames, strict=strict, progress=p))


@ingest_app.command("oulu", help="Oulu-CASIA: ROOT/VL|NI/Strong|Weak|Dark/P001/Anger/000.jpeg (default VL + Strong: 480 sequences).",
                    epilog=examples("fercli ingest oulu ~/data/Oulu-CASIA -o oulu.h5"))
def oulu(
    root: str = typer.Argument(..., help="The Oulu-CASIA folder holding VL/ and NI/ (or OriginalImg/)."),
    output: str = OutputOpt,
    lighting: str = typer.Option("VL", "--lighting", help="VL (visible light) or NI (near-infrared)."),
    illumination: str = typer.Option("Strong", "--illumination", help="Strong, Weak or Dark."),
    gray: Optional[bool] = _color_opt("colour for VL, gray for NI"),
    resize: Optional[str] = _resize_opt(),
    pad: bool = _pad_opt(default=True),
    strict: bool = _strict_opt(),
    workers: int = _workers_opt(),
) -> None:
    from fercli.ingest import ingest_oulu

    frames = _frames(gray, resize, pad, workers=workers)
    _run("oulu", output, [root], {"lighting": lighting, "illumination": illumination, **frames.describe()},
         lambda p: ingest_oulu(root, lighting=lighting, illumination=illumination, frames=frames, strict=strict, progress=p))


@ingest_app.command("fer2013", help="FER2013: the CSV with columns emotion,pixels,Usage (Usage kept as the split).",
                    epilog=examples("fercli ingest fer2013 fer2013.csv -o fer.h5"))
def fer2013(
    csv_path: str = typer.Argument(..., metavar="CSV", help="fer2013.csv."),
    output: str = OutputOpt,
    gray: Optional[bool] = _color_opt("gray; --color repeats the channel"),
    strict: bool = _strict_opt(),
) -> None:
    from fercli.ingest import ingest_fer2013

    frames = _frames(gray, None)
    _run("fer2013", output, [csv_path], {}, lambda p: ingest_fer2013(csv_path, frames=frames, strict=strict, progress=p))


def _emotiw(dataset: str, root: str, output: str, partition: str, gray, resize, pad, max_side, strict, workers) -> None:
    from fercli.ingest import ingest_emotiw

    frames = _frames(gray, resize, pad, max_side, workers)
    _run(dataset, output, [root], {"partition": partition, **frames.describe()},
         lambda p: ingest_emotiw(root, dataset=dataset, partitions=partition, frames=frames, strict=strict, progress=p))


@ingest_app.command("sfew", help="SFEW 2.0: ROOT/Train|Val/Angry|Disgust|Fear|Happy|Neutral|Sad|Surprise/*.png, one clip per image.",
                    epilog=examples("fercli ingest sfew ~/data/SFEW -o sfew.h5"))
def sfew(
    root: str = typer.Argument(..., help="The SFEW folder holding Train/ and Val/."),
    output: str = OutputOpt,
    partition: str = typer.Option("Train,Val", "--partition", help="Comma-separated partitions: Train, Val, Test."),
    gray: Optional[bool] = _color_opt("what the files are"),
    resize: Optional[str] = _resize_opt(),
    pad: bool = _pad_opt(),
    max_side: Optional[int] = _max_side_opt(),
    strict: bool = _strict_opt(),
    workers: int = _workers_opt(),
) -> None:
    _emotiw("sfew", root, output, partition, gray, resize, pad, max_side, strict, workers)


@ingest_app.command("afew", help="AFEW: ROOT/Train|Val/Angry|Disgust|Fear|Happy|Neutral|Sad|Surprise/*.avi, one clip per video.",
                    epilog=examples("fercli ingest afew ~/data/AFEW --max-side 360 -o afew.h5"))
def afew(
    root: str = typer.Argument(..., help="The AFEW folder holding Train/ and Val/."),
    output: str = OutputOpt,
    partition: str = typer.Option("Train,Val", "--partition", help="Comma-separated partitions: Train, Val, Test."),
    gray: Optional[bool] = _color_opt("colour"),
    resize: Optional[str] = _resize_opt(),
    pad: bool = _pad_opt(),
    max_side: Optional[int] = _max_side_opt(),
    strict: bool = _strict_opt(),
) -> None:
    _emotiw("afew", root, output, partition, gray, resize, pad, max_side, strict, 0)


@ingest_app.command("cifar10", help="CIFAR-10: binary (data_batch_1.bin ... test_batch.bin) or python (data_batch_1 ... pickles) layout, auto-detected.",
                    epilog=examples("fercli ingest cifar10 ~/data/cifar-10-batches-bin -o cifar.h5"))
def cifar10(
    root: str = typer.Argument(..., help="cifar-10-batches-bin/, cifar-10-batches-py/, or the folder above them."),
    output: str = OutputOpt,
    gray: Optional[bool] = _color_opt("colour"),
    strict: bool = _strict_opt(),
) -> None:
    from fercli.ingest import ingest_cifar10

    frames = _frames(gray, None)
    _run("cifar10", output, [root], {}, lambda p: ingest_cifar10(root, frames=frames, strict=strict, progress=p))


def _split_classes(classes: Optional[str]) -> Optional[list[str]]:
    return [c.strip() for c in classes.split(",") if c.strip()] if classes else None


@ingest_app.command("video", help="Video files (or folders of them), one clip per video; class = parent folder name or --manifest.",
                    epilog=examples("fercli ingest video talk.mp4 --label happy --subject s01 -o talk.h5", "fercli ingest video ~/videos/ -o clips.h5   (class from each parent folder)"))
def video(
    sources: list[str] = typer.Argument(..., metavar="FILES...", help="Video files and/or folders searched recursively."),
    output: str = OutputOpt,
    manifest: Optional[str] = input_option(None, "--manifest", help="CSV path,label,subject (paths relative to the CSV's folder)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Fix the class list and order, e.g. anger,happy,neutral."),
    unlabelled: bool = typer.Option(False, "--unlabelled", help="Ignore folder names: every clip gets label -1."),
    label: Optional[str] = _label_opt(),
    subject: Optional[str] = _subject_opt(),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: only contiguous block I (0-based) of the N blocks of the sorted file list."),
    gray: Optional[bool] = _color_opt("colour"),
    resize: Optional[str] = _resize_opt(),
    pad: bool = _pad_opt(),
    max_side: Optional[int] = _max_side_opt(),
    strict: bool = _strict_opt(),
) -> None:
    from fercli.ingest import ingest_video

    frames = _frames(gray, resize, pad, max_side)
    shard_t = parse_shard(shard)
    class_list = _split_classes(classes)
    params = {"manifest": manifest and os.path.abspath(manifest), "classes": class_list, "unlabelled": unlabelled,
              "label": label, "subject": subject, "shard": shard, **frames.describe()}
    _run("video", output, sources, params,
         lambda p: ingest_video(sources, manifest=manifest, classes=class_list, unlabelled=unlabelled, shard=shard_t,
                                frames=frames, strict=strict, progress=p, label=label, subject=subject))


@ingest_app.command("images", help="Image files under DIR, one clip per image; class = parent folder name or --manifest.",
                    epilog=examples("fercli ingest images ~/photos/ --manifest labels.csv -o photos.h5"))
def images(
    folder: str = typer.Argument(..., metavar="DIR", help="Folder searched recursively for images."),
    output: str = OutputOpt,
    manifest: Optional[str] = input_option(None, "--manifest", help="CSV path,label,subject (paths relative to the CSV's folder)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Fix the class list and order, e.g. anger,happy,neutral."),
    unlabelled: bool = typer.Option(False, "--unlabelled", help="Ignore folder names: every clip gets label -1."),
    label: Optional[str] = _label_opt(),
    subject: Optional[str] = _subject_opt(),
    gray: Optional[bool] = _color_opt("gray if every file is gray, else colour"),
    resize: Optional[str] = _resize_opt(),
    pad: bool = _pad_opt(),
    max_side: Optional[int] = _max_side_opt(),
    strict: bool = _strict_opt(),
    workers: int = _workers_opt(),
) -> None:
    from fercli.ingest import ingest_images

    frames = _frames(gray, resize, pad, max_side, workers)
    class_list = _split_classes(classes)
    params = {"manifest": manifest and os.path.abspath(manifest), "classes": class_list, "unlabelled": unlabelled,
              "label": label, "subject": subject, **frames.describe()}
    _run("images", output, [folder], params,
         lambda p: ingest_images(folder, manifest=manifest, classes=class_list, unlabelled=unlabelled, frames=frames,
                                 strict=strict, progress=p, label=label, subject=subject))
