"""FER2013 (ICML 2013 challenge), thesis 2.1, 4.3 and 5.3.

Published as one CSV, ``emotion,pixels,Usage``: 35,887 rows, each a 48x48 gray
face as 2304 space-separated values.  Each row becomes a one-frame clip.
Emotion codes 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise,
6 Neutral map to anger, disgust, fear, happy, sadness, surprise, neutral (in
that order, so label values are unchanged).  ``Usage`` is kept verbatim as
the split (Training / PublicTest / PrivateTest); a CSV without it gets an
empty split.  FER2013 has no subject ids, so each row is its own subject
(``fer2013-000123``, the 0-based row number): subject folds degrade to
per-image folds, which is the only honest choice.
"""

from __future__ import annotations

import csv
import os
import warnings
from typing import Optional

import numpy as np

from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import FrameOptions, Report, counting, gray_or_rgb, nothing_usable
from fercli.progress import ProgressFn

FER2013_CLASSES = ["anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral"]
SIDE = 48


def _fields(line: str) -> list[str]:
    # FER2013 rows hold no quotes, so a plain split is exact and ~3x faster than
    # the csv module over 290 MB; re-exports that quote fields take the csv path.
    if '"' in line:
        return next(csv.reader([line]), [])
    return line.split(",")


def _parse_pixels(text: str) -> np.ndarray:
    """'70 80 82 ...' -> int array; numpy's C parser is ~5x faster than str.split."""
    try:
        return np.fromstring(text, dtype=np.int64, sep=" ")
    except AttributeError:  # pragma: no cover - a numpy without the text mode
        return np.array(text.split(), dtype=np.int64)


def ingest_fer2013(
    csv_path: str,
    *,
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
) -> tuple[Clips, Report]:
    """Read the FER2013 CSV into 48x48 one-frame clips with its Usage as split."""
    if frames.resize is not None or frames.max_side is not None or frames.pad:
        raise FercliError("fer2013 frames are all 48x48: --resize, --pad and --max-side do not apply (align scales faces)")
    if not os.path.exists(csv_path):
        raise FercliError(f"{csv_path} does not exist (expected the FER2013 CSV, e.g. fer2013.csv)")
    if os.path.isdir(csv_path):
        raise FercliError(f"{csv_path} is a folder: give the FER2013 CSV file (fer2013.csv)")
    try:
        with open(csv_path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FercliError(f"{csv_path} is not a text CSV file (FER2013 is 'emotion,pixels,Usage' rows)") from None
    except OSError as exc:
        raise FercliError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    header = [h.strip().lower() for h in _fields(lines[0])] if lines else []
    if "pixels" not in header or "emotion" not in header:
        raise FercliError(f"{csv_path} is not a FER2013 CSV: its header needs 'emotion' and 'pixels' columns (found: {', '.join(header) or 'nothing'})")
    ie, ip = header.index("emotion"), header.index("pixels")
    iu = header.index("usage") if "usage" in header else None
    rows = lines[1:]

    report = Report()
    n = len(rows)
    images = np.empty((n, SIDE, SIDE), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    ids: list[str] = []
    usage: list[str] = []
    keep = 0
    need = max(ie, ip, iu if iu is not None else 0) + 1
    base = os.path.basename(csv_path)
    # numpy warns (rather than fails) on a malformed pixel string; as an error
    # it marks the row bad instead of printing a warning.
    with counting(progress, n) as tick, warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for row_no, line in enumerate(rows):
            row = _fields(line)
            where = f"{base} row {row_no + 2}"  # +2: 1-based and the header line
            if row_no % 1000 == 999:
                tick(1000)
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line, e.g. at the end of the file
            if len(row) < need:
                report.skip("bad_row", where)
                continue
            try:
                code = int(row[ie])
            except ValueError:
                report.skip("unknown_label", where)
                continue
            if not 0 <= code < len(FER2013_CLASSES):
                report.skip("unknown_label", where)
                continue
            try:
                values = _parse_pixels(row[ip])
            except (ValueError, DeprecationWarning):
                report.skip("bad_row", where)
                continue
            if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
                report.skip("bad_row", where)
                continue
            images[keep] = values.reshape(SIDE, SIDE)
            labels[keep] = code
            ids.append(f"fer2013-{row_no:06d}")
            usage.append(row[iu].strip() if iu is not None else "")
            keep += 1
        tick(n % 1000)
    if keep == 0:
        raise nothing_usable(csv_path, report, "FER2013 rows look like '0,70 80 82 ...,Training' with 2304 pixel values")
    report.enforce(strict, csv_path)
    color = bool(frames.color)  # FER2013 is gray; --color repeats the channel
    data = gray_or_rgb(images[:keep], color)
    offsets = np.arange(keep + 1, dtype=np.int64)
    clips = Clips(
        frames=np.ascontiguousarray(data),
        offsets=offsets,
        labels=labels[:keep].copy(),
        class_names=list(FER2013_CLASSES),
        subjects=np.asarray(ids, dtype=object),
        clip_ids=np.asarray(ids, dtype=object),
        sources=np.asarray([f"{base}#{i[8:]}" for i in ids], dtype=object),
        split=np.asarray(usage, dtype=object),
        meta={"dataset": "fer2013"},
    )
    clips.validate("ingested clips")
    return clips, report
