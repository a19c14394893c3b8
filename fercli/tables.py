"""``fercli table``: any artifact as rows a spreadsheet, pandas or R reads.

One row per

* **frame** of a ``clips`` artifact.  The first columns are OpenFace 2.0's
  (``frame, face_id, timestamp, confidence, success``; ``x_0 .. x_67, y_0 .. y_67``
  the 68 landmarks), so scripts written for OpenFace's CSV read ours; then where
  the frame comes from (clip id, subject, class, source file, 0-based source
  frame index) and what alignment did with it (``status``: ``detected`` when a
  face was found in that frame, by the detector or the tracker; ``held`` /
  ``interpolated`` when ``--missing`` filled it; frames ``--missing drop``
  removed have no row, so ``source_frame`` lists the survivors); OpenFace's head
  pose ``pose_Tx .. pose_Rz`` (mm, radians; :mod:`fercli.pose`).  Landmarks and
  the face box are in *source-video* pixels: crop coordinates mapped back
  through each frame's recorded ``transform`` (docs/design.md);
* **evaluated sample** of a ``report`` (``fercli evaluate -o``): clip id,
  subject, fold, true and predicted class, one probability column per class;
* **epoch of every fold** of a ``model`` (the training history);
* **LBC kernel** of a ``pruning`` artifact: its block, mean and std SE weight,
  rank in the block, and whether each step of the schedule keeps it.

A table is ``(columns, rows)``; :func:`write` writes CSV or JSON Lines.  Unknown
values are empty CSV cells / JSON ``null``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from typing import Any, Iterable, Iterator, Optional, TextIO

import numpy as np

from fercli.artifacts import CLIP_FIELDS, Clips, ModelRecord, fold_runs
from fercli.errors import FercliError
from fercli.pose import POSE_COLUMNS  # OpenFace's head pose (mm, radians), before the landmarks as in OpenFace

FORMATS = ("csv", "jsonl")
#: OpenFace 2.0's leading columns (FeatureExtraction / FaceLandmarkVidMulti CSV).
OPENFACE_COLUMNS = ["frame", "face_id", "timestamp", "confidence", "success"]
LANDMARK_COLUMNS = [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
FRAME_COLUMNS = [*OPENFACE_COLUMNS, "clip_id", "subject", "label", "source", "source_frame", "status",
                 "face_x", "face_y", "face_width", "face_height", *POSE_COLUMNS, *LANDMARK_COLUMNS]

Table = tuple[list[str], Iterable[list[Any]]]


# --------------------------------------------------------------------------- clips


def frame_status(clips: Clips) -> np.ndarray:
    """Per frame: 'detected', 'held', 'interpolated', or '' when the artifact does not say."""
    if clips.face_found is None:
        return np.full(len(clips.frames), "", dtype=object)
    filled = {"hold": "held", "interpolate": "interpolated"}.get(str((clips.meta.get("align") or {}).get("missing", "")), "")
    return np.where(clips.face_found, "detected", filled).astype(object)


def source_landmarks(clips: Clips) -> Optional[np.ndarray]:
    """(F, 68, 2) landmarks in source-video pixels (NaN where the mapping is unknown)."""
    from fercli.geometry import invert, map_points

    if clips.landmarks is None:
        return None
    return map_points(invert(clips.source_transform()), clips.landmarks.astype(np.float64))


#: Frames per piece :func:`frame_table` reads and formats at a time (bounded memory
#: whatever the artifact's size: an hour of video as one clip included).
FRAME_PIECE = 8192
_NO_FRAMES = np.zeros((1, 1, 1), np.uint8)


def frame_rows(clips: Clips, rows: slice | np.ndarray) -> Clips:
    """Frames ``rows`` of ``clips`` as one run of frames: its per-frame fields at those rows
    (read from the file when ``clips`` is lazy), its per-clip arrays and meta as they are,
    and no pixels (a zero-byte placeholder).  What the tables and the contact sheet need
    of a few frames, without reading the rest."""
    taken = {spec.name: getattr(clips, spec.name)[rows] for spec in CLIP_FIELDS
             if spec.per == "frame" and spec.name != "frames" and getattr(clips, spec.name) is not None}
    n = len(range(len(clips.frames))[rows]) if isinstance(rows, slice) else len(rows)
    return dataclasses.replace(clips, frames=np.broadcast_to(_NO_FRAMES, (n, 1, 1)), offsets=np.asarray([0, n], np.int64), **taken)


def frame_table(clips: Clips, piece: int = FRAME_PIECE) -> Table:
    """One row per frame (see the module docstring), read and formatted ``piece`` frames
    at a time (``clips`` may be lazy: :func:`fercli.artifacts.read_clips_lazy`)."""
    offsets = np.asarray(clips.offsets, np.int64)
    total = int(offsets[-1]) if len(offsets) else 0
    names = list(clips.class_names)
    labels = [names[int(k)] if 0 <= k < len(names) else "" for k in clips.labels]
    face_ids = clips.face_id if clips.face_id is not None else np.zeros(len(clips.labels), np.int64)

    def rows() -> Iterator[list[Any]]:
        for lo in range(0, total, piece):
            yield from _piece_rows(frame_rows(clips, slice(lo, min(total, lo + piece))), lo, offsets, labels, face_ids)

    return list(FRAME_COLUMNS), rows()


def _piece_rows(part: Clips, lo: int, offsets: np.ndarray, labels: list[str], face_ids: np.ndarray) -> Iterator[list[Any]]:
    """The rows of frames ``lo ..`` held in ``part`` (:func:`frame_rows`)."""
    n = len(part.frames)
    frame = np.arange(lo, lo + n)
    owner = np.searchsorted(offsets, frame, side="right") - 1
    within = frame - offsets[owner]
    source_frame = part.source_frame if part.source_frame is not None else within
    known = source_frame >= 0
    fps = part.fps[owner] if part.fps is not None else np.full(n, np.nan)
    timestamp = np.where(known, source_frame / np.where(fps > 0, fps, np.nan), np.nan)
    score = part.face_score if part.face_score is not None else np.full(n, np.nan)
    box = part.face_box.astype(np.float64) if part.face_box is not None else np.full((n, 4), np.nan)
    points = source_landmarks(part)
    # x_0..x_67 then y_0..y_67, rounded once for all rows; rows with NaN are rare
    flat = None if points is None else np.round(points.transpose(0, 2, 1).reshape(len(points), 136), 3)
    flat_nan = None if flat is None else ~np.isfinite(flat).all(1)
    # Position to 0.1 mm, angles to 1e-4 rad (0.006 degrees): far below the estimate's error.
    head = part.head_pose if part.head_pose is not None else np.full((n, 6), np.nan)
    status = frame_status(part)
    for t in range(n):
        c = owner[t]
        sf = int(source_frame[t])
        yield [
            sf + 1 if sf >= 0 else None, int(face_ids[c]), _num(timestamp[t], 3), _num(score[t], 4),
            None if part.face_found is None else int(bool(part.face_found[t])),
            str(part.clip_ids[c]), str(part.subjects[c]), labels[c], str(part.sources[c]), sf if sf >= 0 else None,
            status[t], _num(box[t, 0]), _num(box[t, 1]), _num(box[t, 2] - box[t, 0]), _num(box[t, 3] - box[t, 1]),
            *[_num(v, 1) for v in head[t, :3]], *[_num(v, 4) for v in head[t, 3:]],
            *([None] * 136 if flat is None else [_num(v) for v in flat[t]] if flat_nan[t] else flat[t].tolist()),
        ]


# --------------------------------------------------------------------------- reports


def report_table(report: dict, predictions: Optional[dict[str, np.ndarray]], name: str = "report") -> Table:
    """One row per evaluated sample of a ``fercli evaluate -o`` report."""
    if predictions is None:
        raise FercliError(f"{name} was written before reports kept per-clip predictions: run `fercli evaluate ... -o` again")
    names = list(report.get("class_names") or [])
    columns = ["clip_id", "subject", "fold", "truth", "prediction", "correct", *[f"p_{c}" for c in names]]

    def label(k: int) -> str:
        return names[k] if 0 <= k < len(names) else str(k)

    def rows() -> Iterator[list[Any]]:
        for i in range(len(predictions["truth"])):
            truth, pred = int(predictions["truth"][i]), int(predictions["prediction"][i])
            fold = int(predictions["fold"][i])
            yield [str(predictions["clip_id"][i]), str(predictions["subject"][i]), fold if fold >= 0 else None,
                   label(truth), label(pred), int(truth == pred), *[_num(p, 6) for p in predictions["probabilities"][i]]]

    return columns, rows()


# --------------------------------------------------------------------------- models


def history_table(record: ModelRecord) -> Table:
    """One row per epoch per fold (loss, accuracies, learning rate, time)."""
    runs = fold_runs(record.extra, record.history)
    keys: list[str] = []
    for run in runs:
        for h in run["history"]:
            keys += [k for k in h if k not in keys and k != "epoch"]
    columns = ["fold", "part", "epoch", *keys]

    def rows() -> Iterator[list[Any]]:
        for run in runs:
            for h in run["history"]:
                yield [run["fold"], run["part"], h.get("epoch"), *[_num(h.get(k), 6) if isinstance(h.get(k), float) else h.get(k) for k in keys]]

    return columns, rows()


# --------------------------------------------------------------------------- pruning


def pruning_table(pruning) -> Table:
    """One row per LBC kernel (SE-gate channel) of every prunable block."""
    steps = [f"kept_r{r:g}" for r in pruning.schedule]
    columns = ["block", "name", "in_chs", "mid_chs", "kernel", "se_mean", "se_std", "rank", *steps]

    def rows() -> Iterator[list[Any]]:
        for b, stats in enumerate(pruning.blocks):
            rank = np.empty(len(stats.mean), np.int64)
            rank[np.argsort(-np.asarray(stats.mean), kind="stable")] = np.arange(len(stats.mean))
            kept = [set(np.asarray(step[b]).tolist()) for step in pruning.kept]
            for k in range(len(stats.mean)):
                yield [b, stats.name, stats.in_chs, stats.mid_chs, k, _num(stats.mean[k], 6), _num(stats.std[k], 6),
                       int(rank[k]) + 1, *[int(k in s) for s in kept]]

    return columns, rows()


# --------------------------------------------------------------------------- writing


def format_for(path: str, given: Optional[str]) -> str:
    """--format, or from the file name (.jsonl / .ndjson / .json -> jsonl), else csv."""
    if given is not None:
        if given not in FORMATS:
            raise FercliError(f"--format must be csv or jsonl (got '{given}')")
        return given
    return "jsonl" if path.lower().endswith((".jsonl", ".ndjson", ".json")) else "csv"


def write(table: Table, stream: TextIO, fmt: str) -> int:
    """Write ``table`` as CSV (header row first) or JSON Lines; returns the row count."""
    columns, rows = table
    n = 0
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    else:
        for row in rows:
            stream.write(json.dumps(dict(zip(columns, row)), ensure_ascii=False) + "\n")
            n += 1
    return n


def _num(value: Any, digits: int = 3) -> Optional[float]:
    """A finite float rounded for the table, or None (unknown)."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None
