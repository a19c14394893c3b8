"""CIFAR-10, thesis 5.3 (the pruning/rebuild experiments' general benchmark).

Both published layouts are read, detected from the files present:

* binary (``cifar-10-batches-bin``): ``data_batch_1.bin`` ... ``data_batch_5.bin``,
  ``test_batch.bin``, ``batches.meta.txt``; each record is 1 label byte then
  3072 bytes (1024 red, 1024 green, 1024 blue, row-major 32x32);
* python (``cifar-10-batches-py``): pickles ``data_batch_1`` ... ``test_batch``
  (dicts with b'data' (N, 3072) uint8 and b'labels') and ``batches.meta``
  (b'label_names'), read through :mod:`fercli.ingest.safe_pickle` so a
  pickle that tries to run code is refused and runs nothing.

Each image becomes a one-frame 32x32 RGB clip; split 'train' / 'test'; the
class names are CIFAR's own from the meta file.  Every image is its own
subject (``cifar10-train-00042``).  A batch of the wrong size is an error, not a
skip: a truncated download must not silently become a smaller dataset.
"""

from __future__ import annotations

import os
import re
from typing import Iterator, Optional

import numpy as np

from fercli import untrusted
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.ingest.common import FrameOptions, Report, counting, find_child, gray_or_rgb, list_dir, require_dir
from fercli.ingest.safe_pickle import load_pickle
from fercli.ingest.stream import BlockPlan, Layout, collect
from fercli.progress import ProgressFn

#: Used only when the meta file is missing (they are the names batches.meta holds).
DEFAULT_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SIDE = 32
PIXELS = SIDE * SIDE * 3
RECORD = 1 + PIXELS

_TRAIN = re.compile(r"^data_batch_(\d+)(\.bin)?$")


def _layout(root: str) -> tuple[str, str]:
    """(folder, 'binary' | 'python') holding the batches."""
    for folder in (root, find_child(root, "cifar-10-batches-bin"), find_child(root, "cifar-10-batches-py")):
        if not folder:
            continue
        names = set(os.listdir(folder))
        if any(n.endswith(".bin") and (_TRAIN.match(n) or n == "test_batch.bin") for n in names):
            return folder, "binary"
        if any(_TRAIN.match(n) or n == "test_batch" for n in names):
            return folder, "python"
    raise FercliError(
        f"{root} holds no CIFAR-10 batches: expected data_batch_1.bin ... test_batch.bin (binary layout) "
        "or data_batch_1 ... test_batch (python layout)"
    )


def _batches(folder: str, layout: str) -> list[tuple[str, str]]:
    """[(path, 'train'|'test')] in the published order: data_batch_1..5, test_batch."""
    suffix = ".bin" if layout == "binary" else ""
    train = []
    for n in list_dir(folder):
        m = _TRAIN.match(n)
        if m and (m.group(2) or "") == suffix:
            train.append((int(m.group(1)), os.path.join(folder, n)))
    out = [(p, "train") for _, p in sorted(train)]
    test = os.path.join(folder, "test_batch" + suffix)
    if os.path.isfile(test):
        out.append((test, "test"))
    return out


def _read_binary(path: str) -> tuple[np.ndarray, np.ndarray]:
    name = os.path.basename(path)
    untrusted.regular_file(path, "a CIFAR-10 batch file")
    try:
        untrusted.check_budget(os.path.getsize(path), f"reading {path} needs")
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FercliError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw.size == 0 or raw.size % RECORD:
        raise FercliError(
            f"{name} is {raw.size} bytes, not a whole number of {RECORD}-byte CIFAR-10 records "
            "(truncated or corrupt download, or not a CIFAR-10 batch)"
        )
    records = raw.reshape(-1, RECORD)
    return records[:, 0].astype(np.int64), records[:, 1:]


def _get(d: dict, key: str):
    # Python 2 pickles give bytes keys (encoding='bytes'); re-pickles may use str.
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def _read_python(path: str) -> tuple[np.ndarray, np.ndarray]:
    name = os.path.basename(path)
    untrusted.regular_file(path, "a CIFAR-10 batch file")
    try:
        untrusted.check_budget(os.path.getsize(path), f"reading {path} needs")
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise FercliError(f"cannot read {path}: {exc.strerror or exc}") from None
    obj = load_pickle(raw, name)
    if not isinstance(obj, dict):
        raise FercliError(f"{name} is not a CIFAR-10 python batch (it unpickles to a {type(obj).__name__}, not a dict)")
    data, labels = _get(obj, "data"), _get(obj, "labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise FercliError(f"{name} is not a CIFAR-10 python batch (no b'data' array and b'labels' list)")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise FercliError(f"{name} holds data of shape {data.shape} {data.dtype}, not (N, {PIXELS}) uint8 CIFAR-10 images (corrupt batch?)")
    try:
        labels = np.asarray(labels, dtype=np.int64).ravel()
    except (TypeError, ValueError):
        raise FercliError(f"{name} has labels that are not integers (corrupt batch?)") from None
    if len(labels) != len(data):
        raise FercliError(f"{name} has {len(labels)} labels for {len(data)} images (corrupt batch?)")
    return labels, data


def _names(folder: str, layout: str, report: Report) -> list[str]:
    if layout == "binary":
        path = os.path.join(folder, "batches.meta.txt")
        if os.path.isfile(path):
            with open(path, "r", encoding="utf-8", errors="replace") as fh:
                names = [line.strip() for line in fh if line.strip()]
            if names:
                return names
    else:
        path = os.path.join(folder, "batches.meta")
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                meta = load_pickle(fh.read(), "batches.meta")
            names = _get(meta, "label_names") if isinstance(meta, dict) else None
            if isinstance(names, (list, tuple)) and names:
                return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]
            raise FercliError("batches.meta is not a CIFAR-10 meta file (no b'label_names' list)")
    report.note(f"no {os.path.basename(path)} in {folder}: used CIFAR-10's standard class names")
    return list(DEFAULT_NAMES)


def cifar10_plan(
    root: str,
    *,
    frames: FrameOptions = FrameOptions(),
    strict: bool = False,
    progress: Optional[ProgressFn] = None,
) -> BlockPlan:
    """CIFAR-10 (binary or python layout) as 32x32 one-frame clips, a block per batch file."""
    if frames.resize is not None or frames.max_side is not None or frames.pad:
        raise FercliError("cifar10 images are all 32x32: --resize, --pad and --max-side do not apply")
    require_dir(root, "the CIFAR-10 folder (cifar-10-batches-bin or cifar-10-batches-py)")
    folder, layout = _layout(root)
    report = Report()
    batches = _batches(folder, layout)
    n_train = sum(1 for _, s in batches if s == "train")
    if n_train != 5 or len(batches) == n_train:
        missing = [f"data_batch_{i}" for i in range(1, 6) if not any(os.path.basename(p).startswith(f"data_batch_{i}") for p, _ in batches)]
        if len(batches) == n_train:
            missing.append("test_batch")
        report.note(f"{layout} layout without {', '.join(missing)}: ingested the {len(batches)} batches present")
    names = _names(folder, layout, report)
    reader = _read_binary if layout == "binary" else _read_python
    color = True if frames.color is None else frames.color

    def blocks(report: Report) -> Iterator[Clips]:
        counters = {"train": 0, "test": 0}
        with counting(progress, len(batches)) as tick:
            for path, split in batches:
                y, x = reader(path)
                bad = (y < 0) | (y >= len(names))
                base = os.path.basename(path)
                for i in np.flatnonzero(bad)[: report.EXAMPLES]:
                    report.skip("unknown_label", f"{base} image {int(i)} (label {int(y[i])})")
                if bad.sum() > report.EXAMPLES:
                    report.counts["unknown_label"] += int(bad.sum()) - report.EXAMPLES
                start = counters[split]
                index = np.arange(start, start + len(y))
                counters[split] += len(y)
                keep = ~bad
                ids = [f"cifar10-{split}-{i:05d}" for i in index[keep]]
                # Channel planes -> (N, 32, 32, 3) RGB.
                rgb = np.ascontiguousarray(x[keep].reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))
                yield Clips(
                    frames=np.ascontiguousarray(gray_or_rgb(rgb, color)),
                    offsets=np.arange(len(rgb) + 1, dtype=np.int64),
                    labels=y[keep],
                    class_names=names,
                    subjects=np.asarray(ids, dtype=object),
                    clip_ids=np.asarray(ids, dtype=object),
                    sources=np.asarray([f"{base}#{i - start}" for i in index[keep]], dtype=object),
                    split=np.asarray([split] * len(ids), dtype=object),
                    meta={"dataset": "cifar10", "layout": layout},
                )
                tick()

    return BlockPlan(report, blocks, Layout(color, SIDE, SIDE), root, strict,
                     lambda report: FercliError(f"no usable images in {folder}: {report.summary()}"))


def ingest_cifar10(root: str, **options) -> tuple[Clips, Report]:
    """:func:`cifar10_plan`'s clips held in memory."""
    return collect(cifar10_plan(root, **options))
