"""Oulu-CASIA NIR&VIS, thesis 2.1 and 3.3 (its second benchmark).

Published layout (``OriginalImg/`` may or may not be above it)::

    ROOT/VL|NI / Strong|Weak|Dark / P001 / Anger / 000.jpeg ...

80 subjects x 6 expressions per imaging system and illumination; the usual
protocol (and the default here) is visible light under strong (normal indoor)
illumination: 480 sequences.  Each expression folder is one clip (neutral ->
peak), subject ``P001``, clip id ``P001_Anger``; classes anger, disgust, fear,
happy (from 'Happiness'), sadness, surprise.

Colour: VL frames keep their colour by default, NI (near-infrared) frames are
gray by default.  Frames of different sizes are padded onto the largest canvas
unless ``--resize`` is given (see :mod:`fercli.ingest.common`).
"""

from __future__ import annotations

import os
from typing import Iterator, Optional

from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import (
    FrameOptions, Reader, image_files, Report, canonical_name, counting, find_child, list_dir, nothing_usable, require_dir,
    sequence_folders,
)
from fercli.ingest.stream import Decoded, Plan, collect, guess_from_images
from fercli.progress import ProgressFn

OULU_CLASSES = ["anger", "disgust", "fear", "happy", "sadness", "surprise"]
LIGHTINGS = ("VL", "NI")
ILLUMINATIONS = ("Strong", "Weak", "Dark")


def _pick(value: str, allowed: tuple[str, ...], option: str) -> str:
    for a in allowed:
        if value.lower() == a.lower():
            return a
    raise FercliError(f"{option} must be one of {', '.join(allowed)} (got '{value}')")


def oulu_plan(
    root: str,
    *,
    lighting: str = "VL",
    illumination: str = "Strong",
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
) -> Plan:
    """One lighting/illumination subset of Oulu-CASIA, one clip per expression folder."""
    lighting = _pick(lighting, LIGHTINGS, "--lighting")
    illumination = _pick(illumination, ILLUMINATIONS, "--illumination")
    require_dir(root, "the Oulu-CASIA folder holding VL/ and NI/")
    base = find_child(root, lighting) or find_child(find_child(root, "OriginalImg") or "", lighting)
    if base is None and os.path.basename(os.path.normpath(root)).lower() == lighting.lower():
        base = root  # the user pointed at VL/ itself
    if base is None:
        raise FercliError(f"{root} has no {lighting} folder: give the Oulu-CASIA folder that holds VL/ and NI/ (or OriginalImg/)")
    subset = find_child(base, illumination)
    if subset is None:
        found = ", ".join(n for n in list_dir(base) if os.path.isdir(os.path.join(base, n))) or "nothing"
        raise FercliError(f"{base} has no {illumination} folder (found: {found})")

    report = Report()
    todo: list[tuple[str, str, str, int]] = []
    for subject, expr, edir in sequence_folders(subset, root, report):
        name = canonical_name(expr)
        if name not in OULU_CLASSES:
            report.skip("unknown_label", os.path.relpath(edir, root))
            continue
        todo.append((subject, expr, edir, OULU_CLASSES.index(name)))

    def clips(report: Report) -> Iterator[Decoded]:
        with Reader(frames) as reader, counting(progress, len(todo)) as tick:
            for subject, expr, edir, label in todo:
                good, first = reader.sequence(edir, root, report)
                rel = os.path.relpath(edir, root)
                if good:
                    yield Decoded(good, label, subject, f"{subject}_{expr}", rel, **reader.source_of(first))
                else:
                    report.skip("empty", rel)
                tick()

    plan = Plan(report, clips, OULU_CLASSES, frames, root, strict,
                lambda report: nothing_usable(subset, report, f"Oulu-CASIA layout: {lighting}/{illumination}/P001/Anger/000.jpeg"),
                default_color=False if lighting == "NI" else None, pad_by_default=True,
                meta={"dataset": "oulu", "lighting": lighting, "illumination": illumination})
    plan.guess = lambda: guess_from_images(image_files(folder for *_, folder, _ in todo), plan)
    return plan


def ingest_oulu(root: str, **options) -> tuple[Clips, Report]:
    """:func:`oulu_plan`'s clips held in memory."""
    return collect(oulu_plan(root, **options))
