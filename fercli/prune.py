"""SE-weight statistics and kernel selection for model pruning (thesis 5.2.3, 5.3.2, Fig 5.3/5.4).

In an LB-MBConv block the squeeze-and-excitation gate follows the depthwise LBC
directly, so each SE weight belongs to one fixed 3x3 LBC kernel (Fig 5.3). Run
over a data set (the training set, 5.3.2), the mean SE weight of a channel scores
how useful its kernel is; pruning an expansion ratio r block to r' keeps the
``round(r' x c_in)`` channels with the largest mean weight in every prunable
block (stacks 1-3; never the stem, never stack 0) -- the same count a freshly
built model with ratio r' has, so the rebuilt model is exactly LB-MBNet-r'.

:func:`se_statistics` collects, per prunable block, the per-kernel mean and
standard deviation of the gate over all samples and a histogram of all gate
values; :func:`select_kept` turns them into kept-channel indices for each ratio
of a schedule (segmented pruning, 5.3.2: ``40,20,10,6`` -- the Makefile retrains
between steps; one-shot is a single ratio). The result, with the source model
embedded (arch, config, weights), is a ``pruning`` artifact that
:mod:`fercli.rebuild` turns into the smaller model.

The artifact's layout (kind ``pruning``) is in :mod:`fercli.artifacts`.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np

from fercli import artifacts
# The pruning artifact's records and its reader/writer live with the other layouts.
from fercli.artifacts import BlockStats, ModelRecord, Pruning, load_pruning, save_pruning  # noqa: F401
from fercli.errors import FercliError
from fercli.progress import ProgressFn


# --------------------------------------------------------------------------- statistics


def prunable_blocks(model) -> list:
    """The model's LBC blocks with SE, or a one-sentence refusal."""
    get = getattr(model, "prunable_blocks", None)
    blocks = get() if get is not None else []
    if not blocks:
        raise FercliError("this model has no LBC blocks with SE weights to prune (prune works on lb-mbnet models)")
    return blocks


def se_statistics(model, batches: Iterable[Sequence], total: int, bins: int = 50, progress: Optional[ProgressFn] = None) -> tuple[list[BlockStats], int]:
    """Run ``model`` (eval, no grad) over ``batches`` of input tensors; SE gate statistics per prunable block.

    Means and variances are accumulated in float64 (sums over up to 50 K x 20 K
    gate values); returns (stats, number of samples seen).
    """
    import torch

    blocks = prunable_blocks(model)
    sums = [None] * len(blocks)
    sq = [None] * len(blocks)
    hists = [torch.zeros(bins, dtype=torch.float64) for _ in blocks]
    observers = []

    def observer(i):
        def fn(gate):
            g = gate.double()
            s, q = g.sum(0), (g * g).sum(0)
            sums[i] = s if sums[i] is None else sums[i] + s
            sq[i] = q if sq[i] is None else sq[i] + q
            hists[i] += torch.histc(g.float(), bins=bins, min=0.0, max=1.0).double().cpu()
        return fn

    for i, (_, b) in enumerate(blocks):
        fn = observer(i)
        b.se.observers.append(fn)
        observers.append((b.se, fn))
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with torch.no_grad():
            for xs in batches:
                model(*xs)
                seen += int(xs[0].shape[0])
                if progress:
                    progress(seen, total)
    finally:
        for se, fn in observers:
            se.observers.remove(fn)
        model.train(was_training)
    if not seen:
        raise FercliError("there are no samples to collect SE statistics from")
    out = []
    for i, (name, b) in enumerate(blocks):
        mean = (sums[i] / seen).cpu().numpy()
        var = np.maximum((sq[i] / seen).cpu().numpy() - mean * mean, 0.0)
        out.append(BlockStats(name, b.in_chs, b.mid_chs, mean, np.sqrt(var), hists[i].numpy().astype(np.int64)))
    return out, seen


def kept_count(ratio: float, in_chs: int) -> int:
    """Channels an r' block keeps: round(r' x c_in), as LB-MBNet-r' is built."""
    return max(1, int(round(float(ratio) * in_chs)))


def select_kept(stats: Sequence[BlockStats], ratio: float) -> list[np.ndarray]:
    """Per block, the sorted indices of the round(r' c_in) kernels with the largest mean SE weight."""
    out = []
    for s in stats:
        k = kept_count(ratio, s.in_chs)
        if k > s.mid_chs:
            raise FercliError(f"cannot prune {s.name} to expansion {ratio:g}: it would keep {k} channels but has only {s.mid_chs}")
        order = np.argsort(-s.mean, kind="stable")  # ties: lower index first, deterministic
        out.append(np.sort(order[:k]).astype(np.int64))
    return out


def parse_schedule(text: str) -> list[float]:
    """'40,20,10,6' -> [40, 20, 10, 6]; positive, strictly decreasing."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise FercliError(f"--expansion takes a ratio or a comma-separated list of ratios (got '{text}')") from None
    if any(not math.isfinite(v) for v in values):
        raise FercliError(f"--expansion ratios must be finite numbers (got '{text}')")
    if not values or any(v <= 0 for v in values):
        raise FercliError(f"--expansion ratios must be positive (got '{text}')")
    if any(b >= a for a, b in zip(values, values[1:])):
        raise FercliError(f"a segmented --expansion schedule must decrease step by step (got '{text}')")
    return [int(v) if float(v).is_integer() else v for v in values]


def prune(source: ModelRecord, model, batches: Iterable[Sequence], total: int, schedule: Sequence[float], bins: int = 50,
          data: Optional[dict] = None, progress: Optional[ProgressFn] = None) -> Pruning:
    """SE statistics of ``model`` (built from ``source``) over ``batches`` and the kept kernels per step."""
    prunable_blocks(model)  # refuse before running anything
    stats_probe = [BlockStats(n, b.in_chs, b.mid_chs, np.zeros(b.mid_chs), np.zeros(b.mid_chs), np.zeros(0)) for n, b in model.prunable_blocks()]
    for r in schedule:  # refuse impossible ratios before the (long) data pass
        select_kept(stats_probe, r)
    stats, seen = se_statistics(model, batches, total, bins, progress)
    kept = [select_kept(stats, r) for r in schedule]
    return Pruning(source, list(schedule), stats, kept, seen, dict(data or {}))


# --------------------------------------------------------------------------- data


def choose_samples(clips, record: ModelRecord, split: str = "train", fold: Optional[int] = None, n_folds: int = 10, seed: int = 0,
                   limit: Optional[int] = None, model=None):
    """uint8 model inputs for the SE statistics, prepared as the model was trained.

    ``split``: train (default, 5.3.2) | val | test | all. With ``fold`` the train part
    is every clip outside that subject-independent fold. Returns (Samples, info).
    """
    from fercli.train import data as D

    if split not in ("train", "val", "test", "all"):
        raise FercliError(f"--split must be train, val, test or all, not '{split}'")
    info: dict = {"split": split}
    if split == "all":
        index = np.arange(len(clips))
    elif fold is not None:
        ids, source = D.fold_assignment(clips, n_folds, seed)
        if split == "val":
            raise FercliError("--split val needs an official split, not --fold")
        index = np.flatnonzero((ids >= 0) & (ids != fold)) if split == "train" else np.flatnonzero(ids == fold)
        info.update(fold=fold, fold_source=source)
    else:
        parts = D.official_parts(clips.split)
        if parts is None:
            if split != "train":
                raise FercliError(f"--split {split} needs an official split or --fold, and the data has neither")
            index = np.arange(len(clips))
            info["note"] = "no official split or fold given: every clip used"
        else:
            index = {"train": parts[0], "val": parts[1], "test": parts[2]}[split]
    if not len(index):
        raise FercliError(f"the '{split}' part of the data is empty")
    if limit is not None and limit < len(index):
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(index, size=limit, replace=False))
        info["limit"] = limit
    prep = dict(record.extra.get("data_prep") or {})
    names = tuple(prep.get("input_names") or getattr(model, "inputs", ("image",)))
    channels = int(prep.get("channels") or record.config.get("in_channels", 1))
    size = prep.get("size")
    if not size and "input_size" in record.config and "image" in names:
        size = [record.config["input_size"]] * 2
    labels = np.asarray(clips.labels, dtype=np.int64)
    samples = D.build_samples(clips, index, labels, list(record.class_names), names, channels, prep.get("frame") or "last",
                              prep.get("frames"), tuple(size) if size else None)
    info.update(clips=int(len(index)), samples=len(samples), input_names=list(names))
    return samples, info


def batches_of(samples, batch_size: int, device: str = "cpu"):
    """Float batches (uint8 / 255) of every input, in input order."""
    import torch

    names = list(samples.inputs)
    n = len(samples)
    for start in range(0, n, batch_size):
        yield [torch.from_numpy(np.ascontiguousarray(samples.inputs[k][start:start + batch_size])).to(device).float().div_(255.0) for k in names]


# --------------------------------------------------------------------------- figure


def plot_se_histograms(p: Pruning, path: str, step: int = 0, bins: int = 20, columns: Optional[int] = None) -> None:
    """Fig 5.4 as PNG: per prunable block, the distribution of per-kernel mean SE weights.

    x: mean SE weight in [0, 1]; y: proportion of the block's kernels; the red line
    marks the smallest mean kept at ``schedule[step]``. Drawn with OpenCV (no
    matplotlib dependency).
    """
    import cv2

    n = len(p.blocks)
    cols = columns or max(1, min(6, n))
    rows = (n + cols - 1) // cols
    pw, ph, m = 260, 190, 28
    img = np.full((rows * ph + 40, cols * pw, 3), 255, np.uint8)
    title = f"SE weight means per LBC kernel ({p.samples} samples); red: cut for r'={p.schedule[step]}"
    cv2.putText(img, title, (10, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for i, s in enumerate(p.blocks):
        r, c = divmod(i, cols)
        x0, y0 = c * pw + m, 40 + r * ph + 18
        w, h = pw - m - 10, ph - 18 - m
        counts, _ = np.histogram(np.clip(s.mean, 0, 1), bins=bins, range=(0, 1))
        prop = counts / max(1, counts.sum())
        top = max(float(prop.max()), 1e-9)
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), 1)
        bw = w / bins
        for j, v in enumerate(prop):
            if v > 0:
                cv2.rectangle(img, (int(x0 + j * bw) + 1, int(y0 + h - v / top * (h - 2))), (int(x0 + (j + 1) * bw) - 1, y0 + h - 1), (180, 110, 40), -1)
        kept = p.kept[step][i]
        if len(kept) < s.mid_chs:
            cut = float(np.min(s.mean[kept]))
            xc = int(x0 + np.clip(cut, 0, 1) * w)
            cv2.line(img, (xc, y0), (xc, y0 + h), (0, 0, 220), 1)
        label = f"{s.name} r={s.mid_chs / s.in_chs:g} keep {len(kept)}/{s.mid_chs}"
        cv2.putText(img, label, (x0, y0 - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "0", (x0 - 4, y0 + h + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "1", (x0 + w - 4, y0 + h + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{top:.2f}", (x0 - m + 2, y0 + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (0, 0, 0), 1, cv2.LINE_AA)
    with artifacts.atomic_path(path, ".png") as tmp:
        if not cv2.imwrite(tmp, img):
            raise FercliError(f"could not write the figure {path}")
