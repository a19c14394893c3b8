"""A video's expression over time: ``fercli show frames.csv -o timeline.png``.

Reads what ``fercli live`` writes -- the per-frame CSV of ``--csv`` (one row per
frame and face; the window label and probabilities on the frame that completes a
window) or the JSON lines of ``--headless`` (one object per window) -- and draws,
one panel per face (``face_id``), each class's probability as a step over the
frames its window spans; frames in which that face was not found are shaded grey
(with the JSON lines, which have no per-frame rows: windows without a face).  The
x axis is seconds into the video (frames when no timestamp is known).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fercli import untrusted
from fercli.errors import FercliError

EXTENSIONS = (".csv", ".jsonl", ".ndjson")


@dataclass
class Timeline:
    """Windows per face and where faces were missing (frame indices are 0-based)."""

    classes: list[str]
    windows: dict[int, list[tuple[int, int, np.ndarray]]] = field(default_factory=dict)  # face -> (first, last, probs)
    found: dict[int, set[int]] = field(default_factory=dict)    # face -> frames it was found in (CSV only)
    frames: set[int] = field(default_factory=set)               # every frame the log covers
    no_face: set[int] = field(default_factory=set)              # frames (or window frames) without any face
    seconds_per_frame: Optional[float] = None


def is_log(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in EXTENSIONS


def read(path: str) -> Timeline:
    """A live CSV or JSON-lines log as a :class:`Timeline`; one sentence if it is neither."""
    untrusted.input_path(path, "a live --csv file or --headless JSON lines")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if path.lower().endswith(".csv"):
                return _from_csv(csv.DictReader(f), path)
            return _from_jsonl(f, path)
    except (UnicodeDecodeError, csv.Error, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise FercliError(f"{path} is not a fercli live log ({untrusted.one_line(str(exc))})") from None


def _float(text) -> Optional[float]:
    if text in (None, ""):
        return None
    v = float(text)
    return v if math.isfinite(v) else None


def _from_csv(rows: csv.DictReader, path: str) -> Timeline:
    columns = rows.fieldnames or []
    if not {"frame", "face_id", "success", "window_start"} <= set(columns):
        raise FercliError(f"{path} has no frame, face_id, success and window_start columns: give the CSV `fercli live --csv` writes")
    classes = [c[2:] for c in columns if c.startswith("p_")]
    tl = Timeline(classes)
    rates = []
    for row in rows:
        t = int(row["frame"]) - 1
        tl.frames.add(t)
        stamp = _float(row.get("timestamp"))
        if stamp is not None and t > 0:
            rates.append(stamp / t)
        face = row["face_id"]
        if row["success"] == "1" and face != "":
            tl.found.setdefault(int(face), set()).add(t)
        if row["window_start"] not in ("", None) and face != "":
            probs = np.array([_float(row[f"p_{c}"]) or 0.0 for c in classes])
            tl.windows.setdefault(int(face), []).append((int(row["window_start"]), t, probs))
    if not tl.frames:
        raise FercliError(f"{path} has no rows")
    anyone = set().union(*tl.found.values()) if tl.found else set()
    tl.no_face = tl.frames - anyone
    tl.seconds_per_frame = float(np.median(rates)) if rates else None
    return tl


def _from_jsonl(lines, path: str) -> Timeline:
    tl = Timeline([])
    rates = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        w = json.loads(line)
        if not isinstance(w, dict) or "frames" not in w:
            raise FercliError(f"{path} line {n} is not a window of `fercli live --headless`")
        first, last = (int(v) for v in w["frames"])
        tl.frames.update(range(first, last + 1))
        if w.get("time") is not None and last > 0:
            rates.append(float(w["time"]) / last)
        probs = w.get("probabilities")
        if w.get("face_id") is None or not probs:
            tl.no_face.update(range(first, last + 1))
            continue
        for c in probs:
            if c not in tl.classes:
                tl.classes.append(c)
        tl.windows.setdefault(int(w["face_id"]), []).append((first, last, np.array([float(probs.get(c) or 0.0) for c in tl.classes])))
    if not tl.frames:
        raise FercliError(f"{path} holds no windows")
    k = len(tl.classes)
    tl.windows = {f: [(a, b, np.pad(p, (0, k - len(p)))) for a, b, p in ws] for f, ws in tl.windows.items()}
    tl.seconds_per_frame = float(np.median(rates)) if rates else None
    return tl


def _spans(frames: set[int]) -> list[tuple[int, int]]:
    """Runs of consecutive frames, (first, last)."""
    out: list[tuple[int, int]] = []
    for t in sorted(frames):
        if out and t == out[-1][1] + 1:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


def figure(tl: Timeline, title: str = ""):
    """One panel per face: class probabilities over time, frames without the face shaded."""
    from fercli.figures import _colours, _figure

    faces = sorted(tl.windows) or [0]
    fig = _figure(10, 1.2 + 2.0 * len(faces))
    axes = fig.subplots(len(faces), 1, squeeze=False, sharex=True)[:, 0]
    scale = tl.seconds_per_frame or 1.0
    colours = _colours(len(tl.classes))
    lo, hi = min(tl.frames), max(tl.frames) + 1
    for ax, face in zip(axes, faces):
        missing = tl.frames - tl.found[face] if face in tl.found else tl.no_face
        for i, (a, b) in enumerate(_spans(missing)):
            ax.axvspan(a * scale, (b + 1) * scale, color="0.85", linewidth=0, label="no face" if i == 0 else None)
        for k, (name, colour) in enumerate(zip(tl.classes, colours)):
            xs, ys = [], []
            for a, b, p in sorted(tl.windows.get(face, []), key=lambda w: w[0]):
                xs += [a * scale, (b + 1) * scale, np.nan]
                ys += [p[k], p[k], np.nan]
            ax.plot(xs, ys, color=colour, linewidth=1.4, label=name)
        ax.set_xlim(lo * scale, hi * scale)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(f"face {face}\nprobability", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=min(8, len(tl.classes) + 1), loc="upper left", bbox_to_anchor=(0, 1.35), frameon=False)
    axes[-1].set_xlabel("seconds" if tl.seconds_per_frame else "frame")
    fig.suptitle(title or f"expression over time, {len(faces)} face{'s' if len(faces) != 1 else ''}", fontsize=10)
    return fig
