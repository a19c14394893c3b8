"""SFEW 2.0 and AFEW (EmotiW), thesis 2.1 and chapter 4 (the in-the-wild sets).

Published layout::

    ROOT/Train|Val / Angry|Disgust|Fear|Happy|Neutral|Sad|Surprise / files

SFEW's files are images (each one a one-frame clip), AFEW's are videos (each
one a clip of all its frames).  The partition folder name is kept verbatim as
the split ('Train' / 'Val'); files directly inside a partition folder (the
unlabelled Test partition is published that way) get label -1.  Class names
are fixed (anger, disgust, fear, happy, sadness, surprise, neutral) so Train
and Val ingested separately share one label space.  Neither dataset has
subject ids, so every file is its own subject (its clip id).

Frames of different sizes are refused unless ``--resize`` or ``--pad`` is
given: both datasets come at 720x576, so mixed sizes mean mixed sources and
the user should choose how to reconcile them.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

from fercli import untrusted
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import (
    IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameOptions, Reader, Report, canonical_name, counting, find_child, list_dir, nothing_usable,
    plural, require_dir,
)
from fercli.ingest.stream import Decoded, Plan, collect, guess_from_images, guess_from_videos, image_clips, video_clip
from fercli.progress import ProgressFn

EMOTIW_CLASSES = ["anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral"]
PARTITIONS = ("Train", "Val", "Test")


def parse_partitions(text: str | Sequence[str]) -> list[str]:
    items = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    if not items:
        raise FercliError("--partition needs at least one of Train, Val, Test")
    out = []
    for item in items:
        match = [p for p in PARTITIONS if p.lower() == item.lower()]
        if not match:
            raise FercliError(f"--partition must list Train, Val or Test (got '{item}')")
        if match[0] not in out:
            out.append(match[0])
    return out


def _files(root: str, partitions: list[str], extensions: set[str], report: Report) -> list[tuple[str, str, int, str]]:
    """[(path, partition, label, class folder)] in sorted order."""
    out = []
    for part in partitions:
        pdir = find_child(root, part)
        if pdir is None:
            found = ", ".join(n for n in list_dir(root) if os.path.isdir(os.path.join(root, n))) or "nothing"
            raise FercliError(f"{root} has no {part} folder (found: {found}); choose partitions with --partition")
        for entry in list_dir(pdir):
            path = os.path.join(pdir, entry)
            if os.path.isdir(path):
                name = canonical_name(entry)
                if name not in EMOTIW_CLASSES:
                    report.skip("unknown_label", os.path.relpath(path, root))
                    continue
                label = EMOTIW_CLASSES.index(name)
                for f in list_dir(path):
                    fp = os.path.join(path, f)
                    if untrusted.is_special(fp):  # a FIFO or device among the files: refused, never read
                        untrusted.regular_file(fp, "a media file")
                    if os.path.isfile(fp) and os.path.splitext(f)[1].lower() in extensions:
                        out.append((fp, part, label, entry))
                    else:
                        report.skip("not_media", os.path.relpath(fp, root))
            elif os.path.splitext(entry)[1].lower() in extensions:
                out.append((path, part, -1, ""))
            else:
                report.skip("not_media", os.path.relpath(path, root))
    return out


def emotiw_plan(
    root: str,
    *,
    dataset: str,
    partitions: str | Sequence[str] = ("Train", "Val"),
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
) -> Plan:
    """SFEW (``dataset='sfew'``, images) or AFEW (``'afew'``, videos)."""
    if dataset not in ("sfew", "afew"):
        raise ValueError(dataset)
    parts = parse_partitions(partitions)
    video = dataset == "afew"
    require_dir(root, f"the {dataset.upper()} folder holding {'/'.join(parts)}/")
    report = Report()
    files = _files(root, parts, VIDEO_EXTENSIONS if video else IMAGE_EXTENSIONS, report)

    def found() -> Iterator[tuple[str, Decoded]]:
        for path, part, label, _ in files:
            rel = os.path.relpath(path, root)
            name = os.path.splitext(rel)[0]
            yield path, Decoded((), label, name, name, rel, part)

    def clips(report: Report) -> Iterator[Decoded]:
        with Reader(frames) as reader, counting(progress, len(files)) as tick:
            if video:
                for path, clip in found():
                    yield video_clip(reader, path, clip)
                    tick()  # the consumer has read its frames
            else:
                yield from image_clips(reader, found(), report, tick)

    def unlabelled_note(report: Report, labels: list[int]) -> None:
        unlabelled = sum(1 for label in labels if label < 0)
        if unlabelled:
            report.note(f"kept {plural(unlabelled, 'file')} outside class folders unlabelled (label -1)")

    kind = "videos" if video else "images"
    plan = Plan(report, clips, EMOTIW_CLASSES, frames, root, strict,
                lambda report: nothing_usable(root, report, f"{dataset.upper()} layout: Train/Angry/ ... {kind}"),
                with_split=True, meta={"dataset": dataset, "partitions": parts}, before_store=unlabelled_note)
    paths = [f[0] for f in files]
    plan.guess = (lambda: guess_from_videos(paths, plan)) if video else (lambda: guess_from_images(paths, plan))
    return plan


def ingest_emotiw(root: str, **options) -> tuple[Clips, Report]:
    """:func:`emotiw_plan`'s clips held in memory."""
    return collect(emotiw_plan(root, **options))
