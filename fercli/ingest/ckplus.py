"""CK+ (the Extended Cohn-Kanade database), thesis 2.1 and chapters 3-4.

Published layout::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ...
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt      (a float 0-7)

593 sequences of 123 subjects, neutral -> peak; 327 of them carry an emotion
label (1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise;
0 neutral never occurs in the release but would add a 'neutral' class).  Each
labelled sequence becomes one clip, subject ``S005``, clip id ``S005_001``.
By default only labelled sequences are kept (the 327 the literature uses);
``include_unlabelled`` keeps the others with label -1.

CK+ is gray by default (most of it is; the few colour subjects are converted)
and mixes 640x490, 640x480 and 720x480 frames, so frames of other sizes are
padded top-left onto the largest canvas unless ``--resize`` is given: padding
keeps the face geometry and pixel coordinates that alignment (3.2.2) uses.
"""

from __future__ import annotations

import math
import os
from typing import Optional

from fercli import untrusted
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.expressions import CK_CLASSES
from fercli.ingest.common import (
    IMAGE_EXTENSIONS, ClipList, plural, FrameOptions, Reader, Report, counting, find_child, list_dir, nothing_usable, require_dir,
)
from fercli.progress import ProgressFn


_IMAGE_DIRS = ("cohn-kanade-images", "extended-cohn-kanade-images/cohn-kanade-images", "CK+/cohn-kanade-images")
_EMOTION_DIRS = ("Emotion", "Emotion_labels/Emotion", "CK+/Emotion")


def _locate(root: str, candidates: tuple[str, ...]) -> Optional[str]:
    for rel in candidates:
        path = root
        for part in rel.split("/"):
            path = find_child(path, part) if path else None
        if path:
            return path
    return None


def read_emotion_file(path: str) -> Optional[int]:
    """The integer code in an Emotion file, or None if it is not one of 0..7."""
    untrusted.regular_file(path, "a CK+ emotion file")
    try:
        with open(path, "r", encoding="ascii", errors="replace") as fh:
            value = float(fh.read(4096).split()[0])  # one number; never read a huge file whole
    except (OSError, ValueError, IndexError):
        return None
    if not math.isfinite(value) or value != round(value) or not 0 <= value <= 7:
        return None
    return int(value)


def ingest_ckplus(
    root: str,
    *,
    include_unlabelled: bool = False,
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
) -> tuple[Clips, Report]:
    """Read CK+ from its published folder layout into one clip per sequence."""
    require_dir(root, "the CK+ folder holding cohn-kanade-images/ and Emotion/")
    report = Report()
    images_dir = _locate(root, _IMAGE_DIRS)
    if images_dir is None:
        raise FercliError(f"{root} has no cohn-kanade-images folder: give the CK+ folder that holds cohn-kanade-images/ and Emotion/")
    emotion_dir = _locate(root, _EMOTION_DIRS)
    if emotion_dir is None and not include_unlabelled:
        raise FercliError(f"{root} has no Emotion folder with the CK+ labels: add it, or pass --all to ingest the sequences unlabelled")

    # (subject, sequence) -> label code; a sequence folder in Emotion/ without a
    # file is simply unlabelled (CK+ ships many of those).
    labels: dict[tuple[str, str], Optional[int]] = {}
    label_files: dict[tuple[str, str], str] = {}
    if emotion_dir is not None:
        for subject in list_dir(emotion_dir):
            sdir = os.path.join(emotion_dir, subject)
            if not os.path.isdir(sdir):
                continue
            for seq in list_dir(sdir):
                qdir = os.path.join(sdir, seq)
                if not os.path.isdir(qdir):
                    continue
                files = [n for n in list_dir(qdir) if n.lower().endswith(".txt")]
                if files:
                    label_files[(subject, seq)] = os.path.join(qdir, files[0])
                    labels[(subject, seq)] = read_emotion_file(os.path.join(qdir, files[0]))

    sequences: list[tuple[str, str, str]] = []
    for subject in list_dir(images_dir):
        sdir = os.path.join(images_dir, subject)
        if not os.path.isdir(sdir):
            report.skip("not_media", os.path.relpath(sdir, root))
            continue
        for seq in list_dir(sdir):
            qdir = os.path.join(sdir, seq)
            if os.path.isdir(qdir):
                sequences.append((subject, seq, qdir))
            else:
                report.skip("not_media", os.path.relpath(qdir, root))
    seen = {(s, q) for s, q, _ in sequences}
    for key, path in label_files.items():
        if key not in seen:  # a label whose images are missing is an empty sequence
            report.skip("empty", os.path.relpath(os.path.dirname(path), root))

    unlabelled_left_out = 0
    todo: list[tuple[str, str, str, int]] = []
    for subject, seq, qdir in sequences:
        key = (subject, seq)
        if key in label_files and labels[key] is None:
            report.skip("unknown_label", os.path.relpath(label_files[key], root))
            if include_unlabelled:
                todo.append((subject, seq, qdir, -1))
            continue
        code = labels.get(key)
        if code is None:
            if include_unlabelled:
                todo.append((subject, seq, qdir, -1))
            else:
                unlabelled_left_out += 1
            continue
        todo.append((subject, seq, qdir, code))
    if unlabelled_left_out:
        report.note(f"left out {plural(unlabelled_left_out, 'unlabelled sequence')} (--all keeps them with label -1)")

    use_neutral = any(code == 0 for *_, code in todo)
    # CK+ emotion codes 1..7 in order; code 0 (neutral) maps to 'neutral' appended last.
    class_names = list(CK_CLASSES) + (["neutral"] if use_neutral else [])
    out = ClipList()
    with Reader(frames) as reader, counting(progress, len(todo)) as tick:
        for subject, seq, qdir, code in todo:
            names = list_dir(qdir)
            paths = []
            for n in names:
                p = os.path.join(qdir, n)
                if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(p):
                    paths.append(p)
                else:
                    report.skip("not_media", os.path.relpath(p, root))
            decoded = reader.images(paths)
            good = []
            for p, img in zip(paths, decoded):
                if img is None:
                    report.skip("unreadable", os.path.relpath(p, root))
                else:
                    good.append(img)
            rel = os.path.relpath(qdir, root)
            if not good:
                report.skip("empty", rel)
            else:
                label = -1 if code < 0 else (7 if code == 0 else code - 1)
                first = next(p for p, img in zip(paths, decoded) if img is not None)
                out.add(good, label, subject, f"{subject}_{seq}", rel, **reader.source_of(first))
            tick()
    if not len(out):
        raise nothing_usable(root, report, "CK+ layout: cohn-kanade-images/S005/001/*.png with Emotion/S005/001/*_emotion.txt")
    report.enforce(strict, root)
    clips = out.to_clips(class_names, frames, report, default_color=False, pad_by_default=True, meta={"dataset": "ckplus"})
    return clips, report
