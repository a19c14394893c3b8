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
from fercli.cli.option_blocks import Block, Option, with_blocks
from fercli.ingest.common import FrameOptions

ingest_app = GuardedTyper(
    help="Read a dataset in its published layout into a 'clips' artifact (see each dataset's --help for its layout).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ingest_app, name="ingest")


# The option blocks several datasets share, declared once (typer needs a fresh
# typer.Option per command, hence the factories).
def _frame_block(color: str, *, sizes: bool = True, pad: bool = False, max_side: bool = False, workers: bool = False) -> Block:
    """--gray/--color (its help says the dataset's default ``color``), then, with
    ``sizes``, --resize and --pad (on by default with ``pad``: the dataset mixes
    frame sizes) and --max-side, then --strict and --workers.  The command receives
    ``frames`` (a FrameOptions) and ``strict``."""
    pad_text = "Place frames of different sizes top-left on the largest canvas (pixel coordinates unchanged)."
    options = [Option("gray", Optional[bool], lambda: typer.Option(None, "--gray/--color", show_default=False,
                                                                   help=f"Store gray or RGB frames (default: {color})."))]
    if sizes:
        options.append(Option("resize", Optional[str], lambda: typer.Option(
            None, "--resize", help="Scale every frame to WxH (needed when frames come in several sizes, unless --pad).")))
        options.append(Option("pad", bool, lambda: typer.Option(True, "--pad/--no-pad", help=pad_text + " Default on: the dataset mixes frame sizes.")
                              if pad else typer.Option(False, "--pad", help=pad_text)))
    if max_side:
        options.append(Option("max_side", Optional[int], lambda: number_opt(
            None, "--max-side", help="Downscale frames whose longer side exceeds N pixels (keeps aspect ratio).", min=1, max=MAX_SIDE)))
    options.append(Option("strict", bool, lambda: typer.Option(False, "--strict", help="Fail (exit 2, nothing written) if anything had to be skipped.")))
    if workers:
        options.append(Option("workers", int, lambda: number_opt(0, "--workers", help="Image-decoding threads (0 = up to 8, one per CPU).", min=0, max=256)))

    def build(gray: Optional[bool], strict: bool, resize: Optional[str] = None, pad: bool = False, max_side: Optional[int] = None,
              workers: int = 0) -> dict:
        from fercli.ingest.common import FrameOptions

        frames = FrameOptions(color=None if gray is None else not gray, resize=parse_size(resize, "--resize") if resize else None,
                              pad=pad, max_side=max_side, workers=workers)
        return {"frames": frames, "strict": strict}

    return Block(tuple(options), ("frames", "strict"), build)


def _labelling_block() -> Block:
    """How ``video`` and ``images`` label their files: the command receives
    ``labelling``, the keywords of :func:`fercli.ingest.ingest_video` / ``ingest_images``."""
    options = (
        Option("manifest", Optional[str], lambda: input_option(None, "--manifest", help="CSV path,label,subject (paths relative to the CSV's folder).")),
        Option("classes", Optional[str], lambda: typer.Option(None, "--classes", help="Fix the class list and order, e.g. anger,happy,neutral.")),
        Option("unlabelled", bool, lambda: typer.Option(False, "--unlabelled", help="Ignore folder names: every clip gets label -1.")),
        Option("label", Optional[str], lambda: typer.Option(
            None, "--label", help="Give every file this class (instead of its parent folder's name), e.g. --label happy.")),
        Option("subject", Optional[str], lambda: typer.Option(
            None, "--subject", help="Give every file this subject id (default: each file is its own subject).")),
    )

    def build(manifest: Optional[str], classes: Optional[str], **rest) -> dict:
        class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
        return {"labelling": {"manifest": manifest, "classes": class_list, **rest}}

    return Block(options, ("labelling",), build)


def _labelling_params(labelling: dict) -> dict:
    """The labelling as the lineage records it (the manifest's absolute path)."""
    return {**labelling, "manifest": labelling["manifest"] and os.path.abspath(labelling["manifest"])}


def _one(option: Option) -> Block:
    """A block of one option, whose value the command receives under its own name."""
    return Block((option,), (option.name,), lambda **value: value)


_PARTITION = Option("partition", str, lambda: typer.Option("Train,Val", "--partition", help="Comma-separated partitions: Train, Val, Test."))
_SHARD = Option("shard", Optional[str], lambda: typer.Option(
    None, "--shard", help="I/N: only contiguous block I (0-based) of the N blocks of the sorted file list."))


def _run(dataset: str, output: str, sources: list[str], params: dict, plan: Callable) -> None:
    """Check the output, stream the importer's clips into it with a progress bar, report."""
    from fercli.ingest import stream

    check_outputs(sources, [output])

    def open_writer(layout: stream.Layout):
        parameters = {"dataset": dataset, "sources": [os.path.abspath(s) for s in sources], **params,
                      "color": layout.color, "frame_shape": list(layout.frame_shape)}
        return artifacts.clip_writer(output, [artifacts.lineage_entry("ingest", parameters, [])])

    with progress_bar(f"ingest {dataset}") as progress:
        stored, report = stream.run(plan(progress), open_writer)
    for line in report.lines():
        err.print(f"ingest: {line}", markup=False, highlight=False, soft_wrap=True)
    layout = stored.layout
    shape = f"{layout.width}x{layout.height}" + (" RGB" if layout.color else " gray")
    err.print(
        f"ingest {dataset}: {_n(stored.n_clips, 'clip')} ({stored.labelled} labelled, {_n(len(stored.class_names), 'class', 'classes')}), "
        f"{_n(stored.n_frames, 'frame')} of {shape} -> {artifacts.display_name(output)}",
        markup=False, highlight=False, soft_wrap=True,
    )


def _n(count: int, singular: str, plural: str = "") -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _command(name: str, help: str, epilog: str, *blocks: Block) -> Callable[[Callable], Callable]:
    """Register an ingest subcommand taking its own options, then ``blocks``'."""
    def register(command: Callable) -> Callable:
        return ingest_app.command(name, help=help, epilog=epilog)(with_blocks(*blocks)(command))
    return register


@_command("ckplus", "CK+: ROOT/cohn-kanade-images/S005/001/*.png with labels in ROOT/Emotion/S005/001/*_emotion.txt.",
          examples("fercli ingest ckplus ~/data/CK+ -o ck.h5"), _frame_block("gray", pad=True, workers=True))
def ckplus(
    root: str = typer.Argument(..., help="The CK+ folder holding cohn-kanade-images/ and Emotion/."),
    output: str = OutputOpt,
    all_: bool = typer.Option(False, "--all", help="Also keep the unlabelled sequences (label -1); default: the 327 labelled ones."),
    *, frames: FrameOptions, strict: bool,
) -> None:
    from fercli.ingest import ckplus_plan

    _run("ckplus", output, [root], {"all": all_, **frames.describe()},
         lambda p: ckplus_plan(root, include_unlabelled=all_, frames=frames, strict=strict, progress=p))


@_command("oulu", "Oulu-CASIA: ROOT/VL|NI/Strong|Weak|Dark/P001/Anger/000.jpeg (default VL + Strong: 480 sequences).",
          examples("fercli ingest oulu ~/data/Oulu-CASIA -o oulu.h5"), _frame_block("colour for VL, gray for NI", pad=True, workers=True))
def oulu(
    root: str = typer.Argument(..., help="The Oulu-CASIA folder holding VL/ and NI/ (or OriginalImg/)."),
    output: str = OutputOpt,
    lighting: str = typer.Option("VL", "--lighting", help="VL (visible light) or NI (near-infrared)."),
    illumination: str = typer.Option("Strong", "--illumination", help="Strong, Weak or Dark."),
    *, frames: FrameOptions, strict: bool,
) -> None:
    from fercli.ingest import oulu_plan

    _run("oulu", output, [root], {"lighting": lighting, "illumination": illumination, **frames.describe()},
         lambda p: oulu_plan(root, lighting=lighting, illumination=illumination, frames=frames, strict=strict, progress=p))


@_command("fer2013", "FER2013: the CSV with columns emotion,pixels,Usage (Usage kept as the split).",
          examples("fercli ingest fer2013 fer2013.csv -o fer.h5"), _frame_block("gray; --color repeats the channel", sizes=False))
def fer2013(
    csv_path: str = typer.Argument(..., metavar="CSV", help="fer2013.csv."),
    output: str = OutputOpt,
    *, frames: FrameOptions, strict: bool,
) -> None:
    from fercli.ingest import fer2013_plan

    _run("fer2013", output, [csv_path], {}, lambda p: fer2013_plan(csv_path, frames=frames, strict=strict, progress=p))


def _emotiw_command(dataset: str, kind: str, example: str, color: str, workers: bool) -> None:
    """``ingest sfew`` (images) and ``ingest afew`` (videos): one layout, one command each."""
    @_command(dataset, f"{dataset.upper() if dataset == 'afew' else 'SFEW 2.0'}: "
              f"ROOT/Train|Val/Angry|Disgust|Fear|Happy|Neutral|Sad|Surprise/{kind}.", examples(example),
              _one(_PARTITION), _frame_block(color, max_side=True, workers=workers))
    def command(
        root: str = typer.Argument(..., help=f"The {dataset.upper()} folder holding Train/ and Val/."),
        output: str = OutputOpt,
        *, partition: str, frames: FrameOptions, strict: bool,
    ) -> None:
        from fercli.ingest import emotiw_plan

        _run(dataset, output, [root], {"partition": partition, **frames.describe()},
             lambda p: emotiw_plan(root, dataset=dataset, partitions=partition, frames=frames, strict=strict, progress=p))


_emotiw_command("sfew", "*.png, one clip per image", "fercli ingest sfew ~/data/SFEW -o sfew.h5", "what the files are", workers=True)
_emotiw_command("afew", "*.avi, one clip per video", "fercli ingest afew ~/data/AFEW --max-side 360 -o afew.h5", "colour", workers=False)


@_command("cifar10", "CIFAR-10: binary (data_batch_1.bin ... test_batch.bin) or python (data_batch_1 ... pickles) layout, auto-detected.",
          examples("fercli ingest cifar10 ~/data/cifar-10-batches-bin -o cifar.h5"), _frame_block("colour", sizes=False))
def cifar10(
    root: str = typer.Argument(..., help="cifar-10-batches-bin/, cifar-10-batches-py/, or the folder above them."),
    output: str = OutputOpt,
    *, frames: FrameOptions, strict: bool,
) -> None:
    from fercli.ingest import cifar10_plan

    _run("cifar10", output, [root], {}, lambda p: cifar10_plan(root, frames=frames, strict=strict, progress=p))


@_command("video", "Video files (or folders of them), one clip per video; class = parent folder name or --manifest.",
          examples("fercli ingest video talk.mp4 --label happy --subject s01 -o talk.h5", "fercli ingest video ~/videos/ -o clips.h5   (class from each parent folder)"),
          _labelling_block(), _one(_SHARD), _frame_block("colour", max_side=True))
def video(
    sources: list[str] = typer.Argument(..., metavar="FILES...", help="Video files and/or folders searched recursively."),
    output: str = OutputOpt,
    *, labelling: dict, shard: Optional[str], frames: FrameOptions, strict: bool,
) -> None:
    from fercli.ingest import video_plan

    shard_t = parse_shard(shard)
    _run("video", output, sources, {**_labelling_params(labelling), "shard": shard, **frames.describe()},
         lambda p: video_plan(sources, shard=shard_t, frames=frames, strict=strict, progress=p, **labelling))


@_command("images", "Image files under DIR, one clip per image; class = parent folder name or --manifest.",
          examples("fercli ingest images ~/photos/ --manifest labels.csv -o photos.h5"),
          _labelling_block(), _frame_block("gray if every file is gray, else colour", max_side=True, workers=True))
def images(
    folder: str = typer.Argument(..., metavar="DIR", help="Folder searched recursively for images."),
    output: str = OutputOpt,
    *, labelling: dict, frames: FrameOptions, strict: bool,
) -> None:
    from fercli.ingest import images_plan

    _run("images", output, [folder], {**_labelling_params(labelling), **frames.describe()},
         lambda p: images_plan(folder, frames=frames, strict=strict, progress=p, **labelling))
