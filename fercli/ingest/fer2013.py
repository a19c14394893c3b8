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
import re
import warnings
from typing import Iterator, Optional

import numpy as np

from fercli import untrusted
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import FrameOptions, Report, counting, gray_or_rgb, nothing_usable
from fercli.ingest.stream import BlockPlan, Layout, collect
from fercli.progress import ProgressFn

FER2013_CLASSES = ["anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral"]
SIDE = 48


def _fields(line: str) -> list[str]:
    # FER2013 rows hold no quotes, so a plain split is exact and ~3x faster than
    # the csv module over 290 MB; re-exports that quote fields take the csv path.
    if '"' in line:
        return next(csv.reader([line]), [])
    return line.split(",")


#: Rows per block of clips written at once.
BLOCK = 4096
#: Longest line read whole: a FER2013 row is about 9 KB (2304 values); a longer
#: line is a malformed row, skipped without holding it in memory.
MAX_LINE = 1 << 20
_TOO_LONG = object()  # what _line gives for an over-long line


_NON_BLANK = re.compile(rb"^[ \t\r]*[^ \t\r\n][^\n]*", re.M)


def _lines(fh, tick) -> Iterator[tuple[int, object]]:
    """(line index, bytes without the newline) of every non-blank line, read in
    blocks; an over-long line is consumed without being held and given as
    _TOO_LONG.  Blank lines are skipped by a regular expression, not one by one
    (a file of millions of them).  ``tick(n)``: n more bytes read."""
    pending = b""
    skipping = False
    index = 0  # line index of pending's start
    while True:
        chunk = fh.read(1 << 22)
        if not chunk:
            break
        tick(len(chunk))
        data = pending + chunk
        end = data.rfind(b"\n") + 1  # complete lines: data[:end]
        start = 0
        if skipping and end:  # the rest of an over-long line ends at the first newline
            start = data.index(b"\n") + 1
            index += 1
            skipping = False
        counted = start
        if end > start and data.count(b"\n", start, end) > 1000 and memoryview(data)[start:end].tobytes().isspace():
            index += data.count(b"\n", start, end)  # a block of blank lines: counted in C
            counted = end
        for m in _NON_BLANK.finditer(data, counted, max(counted, end - 1) if end else counted):
            index += data.count(b"\n", counted, m.start())
            counted = m.start()
            yield index, m.group()
        index += data.count(b"\n", counted, end) if end > counted else 0
        pending = data[end:] if end else data
        if len(pending) > MAX_LINE:
            if not skipping:
                yield index, _TOO_LONG
            pending, skipping = b"", True
    if pending.strip() and not skipping:
        yield index, pending


def _text(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise FercliError(f"{path} is not a text CSV file (FER2013 is 'emotion,pixels,Usage' rows)") from None


def _parse_pixels(text: str) -> np.ndarray:
    """'70 80 82 ...' -> int array; numpy's C parser is ~5x faster than str.split."""
    try:
        return np.fromstring(text, dtype=np.int64, sep=" ")
    except AttributeError:  # pragma: no cover - a numpy without the text mode
        return np.array(text.split(), dtype=np.int64)


def fer2013_plan(
    csv_path: str,
    *,
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
) -> BlockPlan:
    """The FER2013 CSV as 48x48 one-frame clips with its Usage as split, in blocks of :data:`BLOCK` rows."""
    if frames.resize is not None or frames.max_side is not None or frames.pad:
        raise FercliError("fer2013 frames are all 48x48: --resize, --pad and --max-side do not apply (align scales faces)")
    if not os.path.exists(csv_path):
        raise FercliError(f"{csv_path} does not exist (expected the FER2013 CSV, e.g. fer2013.csv)")
    if os.path.isdir(csv_path):
        raise FercliError(f"{csv_path} is a folder: give the FER2013 CSV file (fer2013.csv)")
    untrusted.regular_file(csv_path, "the FER2013 CSV file")
    base = os.path.basename(csv_path)
    color = bool(frames.color)  # FER2013 is gray; --color repeats the channel

    def block_clips(block: np.ndarray, labels: list[int], ids: list[str], usage: list[str]) -> Clips:
        return Clips(
            frames=np.ascontiguousarray(gray_or_rgb(block, color)),
            offsets=np.arange(len(labels) + 1, dtype=np.int64),
            labels=np.asarray(labels, dtype=np.int64),
            class_names=list(FER2013_CLASSES),
            subjects=np.asarray(ids, dtype=object),
            clip_ids=np.asarray(ids, dtype=object),
            sources=np.asarray([f"{base}#{i[8:]}" for i in ids], dtype=object),
            split=np.asarray(usage, dtype=object),
            meta={"dataset": "fer2013"},
        )

    def blocks(report: Report) -> Iterator[Clips]:
        try:
            fh = open(csv_path, "rb")
        except OSError as exc:
            raise FercliError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
        # Streamed line by line, each line bounded, written block by block: memory
        # follows one block, never the file's rows (20 MB of blank lines is 20 million rows).
        with fh:
            total = max(1, os.fstat(fh.fileno()).st_size)
            with counting(progress, total) as tick, warnings.catch_warnings():
                # numpy warns (rather than fails) on a malformed pixel string; as an
                # error it marks the row bad instead of printing a warning.
                warnings.simplefilter("error", DeprecationWarning)
                lines = _lines(fh, tick)
                first = next(lines, (0, b""))[1]
                header = [h.strip().lower() for h in _fields(_text(first if isinstance(first, bytes) else b"", csv_path).lstrip("\ufeff"))]
                if "pixels" not in header or "emotion" not in header:
                    raise FercliError(f"{csv_path} is not a FER2013 CSV: its header needs 'emotion' and 'pixels' columns (found: {', '.join(header) or 'nothing'})")
                ie, ip = header.index("emotion"), header.index("pixels")
                iu = header.index("usage") if "usage" in header else None
                need = max(ie, ip, iu if iu is not None else 0) + 1
                block = np.empty((BLOCK, SIDE, SIDE), dtype=np.uint8)
                labels: list[int] = []
                ids: list[str] = []
                usage: list[str] = []
                for line_no, raw in lines:
                    row_no = line_no - 1  # 0-based data row: the header is line 0
                    where = f"{base} row {row_no + 2}"  # +2: 1-based and the header line
                    if raw is _TOO_LONG:
                        report.skip("bad_row", where)
                        continue
                    row = _fields(_text(raw, csv_path))
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
                    block[len(labels)] = values.reshape(SIDE, SIDE)
                    labels.append(code)
                    ids.append(f"fer2013-{row_no:06d}")
                    usage.append(row[iu].strip() if iu is not None else "")
                    if len(labels) == BLOCK:
                        yield block_clips(block, labels, ids, usage)
                        block = np.empty((BLOCK, SIDE, SIDE), dtype=np.uint8)  # the writer may hold the last one
                        labels, ids, usage = [], [], []
                if labels:
                    yield block_clips(block[: len(labels)], labels, ids, usage)

    return BlockPlan(Report(), blocks, Layout(color, SIDE, SIDE), csv_path, strict,
                     lambda report: nothing_usable(csv_path, report, "FER2013 rows look like '0,70 80 82 ...,Training' with 2304 pixel values"))


def ingest_fer2013(csv_path: str, **options) -> tuple[Clips, Report]:
    """:func:`fer2013_plan`'s clips held in memory."""
    return collect(fer2013_plan(csv_path, **options))
