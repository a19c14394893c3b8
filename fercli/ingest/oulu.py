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
from typing import Optional

from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import (
    IMAGE_EXTENSIONS, ClipList, FrameOptions, Reader, Report, canonical_name, counting, find_child, list_dir,
    nothing_usable, require_dir,
)
from fercli.progress import ProgressFn

OULU_CLASSES = ["anger", "disgust", "fear", "happy", "sadness", "surprise"]
LIGHTINGS = ("VL", "NI")
ILLUMINATIONS = ("Strong", "Weak", "Dark")


def _pick(value: str, allowed: tuple[str, ...], option: str) -> str:
    for a in allowed:
        if value.lower() == a.lower():
            return a
    raise FercliError(f"{option} must be one of {', '.join(allowed)} (got '{value}')")


def ingest_oulu(
    root: str,
    *,
    lighting: str = "VL",
    illumination: str = "Strong",
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
) -> tuple[Clips, Report]:
    """Read one lighting/illumination subset of Oulu-CASIA, one clip per expression folder."""
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
    for subject in list_dir(subset):
        sdir = os.path.join(subset, subject)
        if not os.path.isdir(sdir):
            report.skip("not_media", os.path.relpath(sdir, root))
            continue
        for expr in list_dir(sdir):
            edir = os.path.join(sdir, expr)
            if not os.path.isdir(edir):
                report.skip("not_media", os.path.relpath(edir, root))
                continue
            name = canonical_name(expr)
            if name not in OULU_CLASSES:
                report.skip("unknown_label", os.path.relpath(edir, root))
                continue
            todo.append((subject, expr, edir, OULU_CLASSES.index(name)))

    out = ClipList()
    with Reader(frames) as reader, counting(progress, len(todo)) as tick:
        for subject, expr, edir, label in todo:
            paths = []
            for n in list_dir(edir):
                p = os.path.join(edir, n)
                if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(p):
                    paths.append(p)
                else:
                    report.skip("not_media", os.path.relpath(p, root))
            good, first = [], None
            for p, img in zip(paths, reader.images(paths)):
                if img is None:
                    report.skip("unreadable", os.path.relpath(p, root))
                else:
                    good.append(img)
                    first = first or p
            rel = os.path.relpath(edir, root)
            if good:
                out.add(good, label, subject, f"{subject}_{expr}", rel, **reader.source_of(first))
            else:
                report.skip("empty", rel)
            tick()
    if not len(out):
        raise nothing_usable(subset, report, f"Oulu-CASIA layout: {lighting}/{illumination}/P001/Anger/000.jpeg")
    report.enforce(strict, root)
    meta = {"dataset": "oulu", "lighting": lighting, "illumination": illumination}
    clips = out.to_clips(OULU_CLASSES, frames, report, default_color=False if lighting == "NI" else None,
                         pad_by_default=True, meta=meta)
    return clips, report
