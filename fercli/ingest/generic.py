"""Generic importers for a researcher's own data: ``video FILES...`` and ``images DIR``.

Thesis 3.3 (Ren-VFEdb, a self-collected database) and 4.4 (the real-time
system) work on data that no published layout describes, so these read plain
files:

* ``video``: each video file is one clip of all its frames; arguments may be
  files or folders (searched recursively for video files);
* ``images``: each image file under DIR (recursively) is a one-frame clip.

Labels come from each file's parent folder name (``happy/001.mp4`` ->
'happy'; common spellings such as 'Angry' or 'Happiness' become the
canonical names), or from a manifest CSV ``path,label,subject`` whose
relative paths are relative to the manifest's own folder.  ``classes`` fixes
the class list and its order (labels outside it are reported and skipped);
otherwise it is every label found, canonical classes first.  Without a
manifest subject, each file is its own subject.

``shard=(i, n)`` ingests the i-th of n contiguous slices of the sorted file
list, for cluster job arrays; the class list is computed from the whole list
first, so the shards concatenated in order equal the unsharded run.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

from fercli import untrusted
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import (
    IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameOptions, Reader, Report, canonical_name, counting, declared_frames, is_litter,
    natural_key, nothing_usable, order_classes, require_dir,
)
from fercli.ingest.stream import Decoded, Plan, collect, guess_from_images, guess_from_videos, image_clips, video_clip
from fercli.progress import ProgressFn


@dataclass
class Item:
    path: str  # as found on disk
    clip_id: str  # parent/stem: unique within a dataset and readable
    source: str  # relative to the folder it was found in (or as given)
    label: Optional[str]  # canonical name, '' = unlabelled
    subject: str


# --------------------------------------------------------------------------- manifest


def read_manifest(path: str, report: Report) -> dict[str, tuple[str, str]]:
    """realpath -> (label, subject) from a ``path,label,subject`` CSV (header optional)."""
    if not os.path.isfile(path):
        raise FercliError(f"manifest {path} does not exist or is not a file")
    base = os.path.dirname(os.path.abspath(path))
    out: dict[str, tuple[str, str]] = {}
    try:
        with open(path, "r", encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FercliError(f"manifest {path} is not a readable CSV file ({exc})") from None
    for i, row in enumerate(rows):
        if not row or all(not c.strip() for c in row):
            continue
        if i == 0 and row[0].strip().lower() == "path":
            continue  # header
        where = f"{os.path.basename(path)} row {i + 1}"
        if len(row) < 2 or not row[0].strip():
            report.skip("bad_row", where)
            continue
        file = row[0].strip()
        full = os.path.realpath(file if os.path.isabs(file) else os.path.join(base, file))
        if not os.path.exists(full):
            report.skip("missing", f"{where}: {file}")
            continue
        label = canonical_name(row[1]) if row[1].strip() else ""
        subject = row[2].strip() if len(row) > 2 else ""
        out[full] = (label, subject)
    if not out and not report.count("missing"):
        raise FercliError(f"manifest {path} lists no files (expected rows 'path,label,subject')")
    return out


# --------------------------------------------------------------------------- discovery


def _walk(folder: str, extensions: set[str], report: Report, root_for_report: str) -> list[str]:
    found = []
    def unreadable(exc: OSError) -> None:  # os.walk would skip such folders silently
        report.skip("unreadable", os.path.relpath(exc.filename or folder, root_for_report))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        for name in filenames:
            if is_litter(name):
                continue
            path = os.path.join(dirpath, name)
            if os.path.splitext(name)[1].lower() in extensions:
                if untrusted.is_special(path):  # reading it would block or never end
                    untrusted.regular_file(path, "a media file")
                found.append(path)
            elif not name.lower().endswith(".csv"):  # a manifest beside the data is expected
                report.skip("not_media", os.path.relpath(path, root_for_report))
    return found


def _discover(sources: Sequence[str], extensions: set[str], report: Report) -> list[tuple[str, str]]:
    """[(path, source name)] sorted, from files and folders."""
    found: dict[str, str] = {}
    for src in sources:
        if os.path.isdir(src):
            top = os.path.basename(os.path.normpath(os.path.abspath(src)))
            for p in _walk(src, extensions, report, src):
                found.setdefault(os.path.realpath(p), os.path.join(top, os.path.relpath(p, src)))
        elif os.path.isfile(src):
            found.setdefault(os.path.realpath(src), os.path.normpath(src))  # named explicitly: try whatever it is
        else:  # missing, or a FIFO / device / socket: one sentence saying which
            untrusted.input_path(src, "a media file or a folder of them", folder_ok=True)
    return sorted(found.items(), key=lambda kv: natural_key(kv[1]))


def _items(
    sources: Sequence[str],
    extensions: set[str],
    report: Report,
    manifest: Optional[str],
    unlabelled: bool,
    label: Optional[str] = None,
    subject: Optional[str] = None,
) -> list[Item]:
    if label is not None and (manifest or unlabelled):
        raise FercliError("--label gives every file one class: drop --manifest / --unlabelled, which label the files otherwise")
    if subject is not None and manifest:
        raise FercliError("--subject gives every file one subject: drop --manifest, which names the subjects per file")
    fixed_label = canonical_name(label) if label is not None and label.strip() else None
    if label is not None and fixed_label is None:
        raise FercliError("--label needs a class name (e.g. --label happy)")
    table = read_manifest(manifest, report) if manifest else None
    items = []
    for real, source in _discover(sources, extensions, report):
        parent = os.path.basename(os.path.dirname(real))
        stem = os.path.splitext(os.path.basename(real))[0]
        clip_id = f"{parent}/{stem}"
        if table is not None:
            if real not in table:
                report.skip("not_in_manifest", source)
                continue
            label_of, subject_of = table[real]
        else:
            label_of, subject_of = ("" if unlabelled else fixed_label or canonical_name(parent)), subject or ""
        items.append(Item(real, clip_id, source, "" if unlabelled else label_of, subject_of or clip_id))
    return items


def _classes(items: list[Item], classes: Optional[Sequence[str]]) -> list[str]:
    if classes:
        names = [canonical_name(c) for c in classes if c.strip()]
        if len(set(names)) != len(names):
            raise FercliError(f"--classes lists a class twice: {','.join(classes)}")
        return names
    return order_classes({it.label for it in items if it.label})


def shard_slice(n_items: int, shard: Optional[tuple[int, int]]) -> slice:
    """Contiguous, deterministic block ``i`` of ``n`` (sizes differ by at most one)."""
    if shard is None:
        return slice(0, n_items)
    i, n = shard
    return slice(i * n_items // n, (i + 1) * n_items // n)


def _nothing(items_total: int, where: str, hint: str, shard: Optional[tuple[int, int]]):
    """The error when no file gave a clip (an empty shard says so)."""
    def error(report: Report) -> FercliError:
        if shard is not None and items_total == 0:
            return FercliError(f"shard {shard[0]}/{shard[1]} of {where} is empty: there are fewer files than shards")
        return nothing_usable(where, report, hint)
    return error


def _labels_for(items: list[Item], class_names: list[str], report: Report) -> list[tuple[Item, int]]:
    out = []
    for it in items:
        if not it.label:
            out.append((it, -1))
        elif it.label in class_names:
            out.append((it, class_names.index(it.label)))
        else:
            report.skip("unknown_label", f"{it.source} ('{it.label}')")
    return out


def video_plan(
    sources: Sequence[str],
    *,
    manifest: Optional[str] = None,
    classes: Optional[Sequence[str]] = None,
    unlabelled: bool = False,
    shard: Optional[tuple[int, int]] = None,
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
    label: Optional[str] = None,
    subject: Optional[str] = None,
) -> Plan:
    """Each video file a clip; labels from parent folders, a manifest, or ``label``
    for every file (``subject``: one subject for every file, default each file its own)."""
    if not sources:
        raise FercliError("give at least one video file or folder")
    report = Report()
    items = _items(sources, VIDEO_EXTENSIONS, report, manifest, unlabelled, label, subject)
    class_names = _classes(items, classes)  # from the whole list: every shard agrees
    labelled = _labels_for(items, class_names, report)
    part = labelled[shard_slice(len(labelled), shard)]

    def clips(report: Report) -> Iterator[Decoded]:
        # Progress counts frames (the containers' declared counts), so one long video moves the bar.
        total = sum(declared_frames(it.path) for it, _ in part) if progress is not None else 0
        with Reader(frames) as reader, counting(progress, total) as tick:
            for it, label_id in part:
                yield video_clip(reader, it.path, Decoded((), label_id, it.subject, it.clip_id, it.source), on_frame=tick)

    where = sources[0] if len(sources) == 1 else f"the {len(sources)} video sources"
    meta = {"dataset": "video"}
    if shard is not None:
        meta["shard"] = f"{shard[0]}/{shard[1]}"
    plan = Plan(report, clips, class_names, frames, where, strict, _nothing(len(part), where, "video files such as happy/001.mp4", shard),
                meta=meta)
    plan.guess = lambda: guess_from_videos([it.path for it, _ in part], plan)
    return plan


def images_plan(
    folder: str,
    *,
    manifest: Optional[str] = None,
    classes: Optional[Sequence[str]] = None,
    unlabelled: bool = False,
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
    label: Optional[str] = None,
    subject: Optional[str] = None,
) -> Plan:
    """Each image file under ``folder`` a one-frame clip; labels from parent folders, a manifest or ``label``."""
    require_dir(folder, "a folder of images, e.g. DIR/happy/001.png")
    report = Report()
    items = _items([folder], IMAGE_EXTENSIONS, report, manifest, unlabelled, label, subject)
    class_names = _classes(items, classes)
    labelled = _labels_for(items, class_names, report)

    def clips(report: Report) -> Iterator[Decoded]:
        with Reader(frames) as reader, counting(progress, len(labelled)) as tick:
            found = ((it.path, Decoded((), label_id, it.subject, it.clip_id, it.source)) for it, label_id in labelled)
            yield from image_clips(reader, found, report, tick)

    plan = Plan(report, clips, class_names, frames, folder, strict,
                _nothing(len(labelled), folder, "image files such as happy/001.png", None), meta={"dataset": "images"})
    plan.guess = lambda: guess_from_images([it.path for it, _ in labelled], plan)
    return plan


def ingest_video(sources: Sequence[str], **options) -> tuple[Clips, Report]:
    """:func:`video_plan`'s clips held in memory."""
    return collect(video_plan(sources, **options))


def ingest_images(folder: str, **options) -> tuple[Clips, Report]:
    """:func:`images_plan`'s clips held in memory."""
    return collect(images_plan(folder, **options))
