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
embedded (arch, config, weights, the partition record of the run used), is a
``pruning`` artifact that :mod:`fercli.rebuild` turns into the smaller model.

The statistics come from the training part the model's partition record lists
(:func:`choose_samples`, 5.3.2 "on the training set"): never from a clip or a
subject the model was tested on, whatever folds the model was trained with.

The artifact's layout (kind ``pruning``) is in :mod:`fercli.artifacts`.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np

# The pruning artifact's records and its reader/writer live with the other layouts.
from fercli.artifacts import BlockStats, ModelRecord, Pruning, load_pruning, read_pruning, save_pruning  # noqa: F401
from fercli.errors import FercliError
from fercli.progress import ProgressFn


# --------------------------------------------------------------------------- statistics


def prunable_blocks(model) -> list:
    """The model's LBC blocks with SE, or a one-sentence refusal."""
    blocks = model.prunable_blocks()
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
          data: Optional[dict] = None, progress: Optional[ProgressFn] = None, source_arrays: Optional[dict] = None) -> Pruning:
    """SE statistics of ``model`` (built from ``source``) over ``batches`` and the kept kernels per step."""
    prunable_blocks(model)  # refuse before running anything
    stats_probe = [BlockStats(n, b.in_chs, b.mid_chs, np.zeros(b.mid_chs), np.zeros(b.mid_chs), np.zeros(0)) for n, b in model.prunable_blocks()]
    for r in schedule:  # refuse impossible ratios before the (long) data pass
        select_kept(stats_probe, r)
    stats, seen = se_statistics(model, batches, total, bins, progress)
    kept = [select_kept(stats, r) for r in schedule]
    return Pruning(source, list(schedule), stats, kept, seen, dict(data or {}), dict(source_arrays or {}))


# --------------------------------------------------------------------------- data


def source_of(mf, fold: Optional[int]) -> tuple[ModelRecord, dict]:
    """The record pruning works on -- ``fold``'s weights of a --folds all model -- and the
    partition record arrays of that run (what a rebuilt model inherits)."""
    from fercli.protocol.modelfile import fold_state, source_run

    state = fold_state(mf, fold, "prune")
    extra = {k: v for k, v in mf.record.extra.items() if k in ("data_prep", "fold", "run", "rebuilt")}
    arrays: dict = {}
    if mf.partition is not None:
        run = source_run(mf, fold)
        own = mf.partition.only_run(run)
        extra["partition"] = own.summary()
        extra["fold"] = own.runs[0].fold
        arrays = own.arrays()
    return ModelRecord(mf.record.arch, mf.record.config, state, mf.record.class_names, mf.record.history, extra), arrays


def choose_samples(mf, clips, identity: dict, model, split: str = "train", fold: Optional[int] = None,
                   limit: Optional[int] = None, seed: int = 0):
    """uint8 model inputs for the SE statistics, prepared as the model was trained.

    ``split='train'`` (5.3.2): the clips of DATA that the model's partition record
    puts in the training part of the run whose weights are pruned (matched as
    ``evaluate`` matches them; a copy of the data by subject and sequence id);
    ``'all'``: every clip of DATA.  Returns (Samples, info).
    """
    from fercli.protocol import partition as P
    from fercli.protocol.modelfile import source_run
    from fercli.protocol.samples import SampleReader, SampleSpec, clip_labels

    if split not in ("train", "all"):
        raise FercliError(f"--split must be train or all, not '{split}'")
    rec = mf.record
    spec = SampleSpec.from_json(rec.extra.get("data_prep") or {}, model, rec.config)
    data = P.DataSet(clips, dict(identity or {}), clip_labels(clips, list(rec.class_names), spec.task))
    info: dict = {"split": split}
    if split == "all":
        index = np.arange(len(clips))
    elif mf.partition is None:
        raise FercliError(f"{mf.name} has no partition record (it was written by an older fercli), so its training part is unknown: "
                          "give --split all to collect statistics over every clip of DATA")
    else:
        run = source_run(mf, fold)
        rp = P.replay(mf.partition, run, data)
        index = rp.where(P.TRAIN) if rp.match == "same" else rp.trained
        info.update(run=mf.partition.runs[run].name, fold=mf.partition.runs[run].fold, match=rp.match)
        if not len(index):
            raise FercliError(f"{data.name} holds none of the clips {mf.name} trained on ({P.run_label(mf.partition.runs[run])}): "
                              "give the data it was trained on, or --split all to use every clip of DATA")
    if limit is not None and limit < len(index):
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(index, size=limit, replace=False))
        info["limit"] = limit
    spec.check(clips, data.name)
    samples = SampleReader([(clips, index, data.labels)], list(rec.class_names), spec)  # read a load at a time (batches_of)
    info.update(clips=int(len(index)), samples=len(samples), input_names=list(spec.input_names))
    return samples, info


#: Bytes of samples read from the data at a time (whole batches of them): the data may
#: be larger than memory, as for ``evaluate``.
LOAD_BYTES = 256 << 20


def batches_of(samples, batch_size: int, device: str = "cpu"):
    """Float batches of every input, in input order; ``samples`` (a
    :class:`~fercli.protocol.samples.SampleReader`) are read a load of whole batches at a time."""
    import torch

    from fercli.protocol.samples import to_float

    names = list(samples.spec.input_names)
    n = len(samples)
    load = max(1, LOAD_BYTES // max(1, samples.sample_bytes) // batch_size) * batch_size
    for lo in range(0, n, load):
        part = samples.read(np.arange(lo, min(n, lo + load)))
        for start in range(0, len(part), batch_size):
            yield [to_float(torch.from_numpy(np.ascontiguousarray(part.inputs[k][start:start + batch_size])).to(device)) for k in names]


