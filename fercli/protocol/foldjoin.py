"""Joining fold models: the models of one cross-validation run, each trained alone
with ``--fold k`` (one SLURM job per fold, say), become the one artifact that
``--folds all`` writes (thesis 3.3.1: ten folds, subject-independent).

Fold k trained alone is fold k of the ``--folds all`` run: every fold seeds its own
initialisation, batch order and augmentation from (seed, fold) and starts with a fresh
optimizer (:class:`fercli.train.run.FoldRun`), so on CPU the weights are the same bit
for bit.  The join therefore stacks what the folds recorded and writes it the way the
serial run does: ``folds/<k>`` the weights of every fold, ``weights`` and ``history``
the last fold's, ``extra.folds`` one entry per fold, and the partition record with one
run per fold.  ``evaluate``, ``info`` and the tables read the result as they read a
``--folds all`` model.

A fold model that does not belong is refused with one sentence: a model of another
architecture, configuration, class list or training option (epochs, seed, batch,
schedule, ...), one trained on other data artifacts or other folds of them, an
unfinished checkpoint, a model that is already a join, a fold given twice, and a set
that leaves some clips untested (a fold missing).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import numpy as np

from fercli import artifacts
from fercli.artifacts import ModelRecord
from fercli.errors import FercliError
from fercli.protocol.modelfile import ModelFile, load_model_file
from fercli.protocol.partition import TEST, PartitionRecord, Run

#: Training options that say which fold ran, not how: the only ones fold models may differ in.
FOLD_OPTIONS = ("fold", "all_folds")


def artifact_kind(path: str) -> str:
    """The kind of the artifact at ``path`` ('clips' for standard input, read once by its stage)."""
    if path == "-":
        return "clips"
    f = artifacts.open_h5(path)
    try:
        return artifacts.check_kind(f, path, None, "merge")
    finally:
        f.close()


def _fold_of(mf: ModelFile) -> int:
    """The held-out fold of a finished single-fold model, or one sentence why it is not one."""
    extra, part = mf.record.extra, mf.partition
    if mf.folds_trained or (part is not None and len(part.runs) > 1):
        raise FercliError(f"{mf.name} already holds several folds: join the single-fold models (train --fold k) instead")
    if part is None or part.runs[0].fold is None or extra.get("fold") is None:
        raise FercliError(f"{mf.name} was not trained with one fold held out (train --fold k), so it is not a fold of a cross-validation run")
    progress = extra.get("progress") or {}
    run = extra.get("run") or {}
    if not progress.get("complete") or int(progress.get("epoch", -1)) != int(run.get("epochs", -2)):
        raise FercliError(f"{mf.name} is an unfinished checkpoint (epoch {progress.get('epoch')} of {run.get('epochs')}): "
                          "finish it with train --resume first")
    return int(part.runs[0].fold)


def _options(mf: ModelFile) -> dict:
    opts = dict((mf.record.extra.get("run") or {}).get("options") or {})
    for key in FOLD_OPTIONS:
        opts.pop(key, None)
    return opts


def _check_same_run(first: ModelFile, other: ModelFile) -> None:
    """Refuse ``other`` unless it is another fold of ``first``'s run."""
    a, b = first.record, other.record
    what = f"{other.name} is not a fold of the run {first.name} belongs to"
    if a.arch != b.arch:
        raise FercliError(f"{what}: it is a '{b.arch}' model, {first.name} a '{a.arch}'")
    if a.config != b.config:
        keys = sorted(k for k in set(a.config) | set(b.config) if a.config.get(k) != b.config.get(k))
        raise FercliError(f"{what}: its configuration differs ({', '.join(keys)})")
    if list(a.class_names) != list(b.class_names):
        raise FercliError(f"{what}: it was trained for classes {b.class_names}, not {a.class_names}")
    ra, rb = a.extra.get("run") or {}, b.extra.get("run") or {}
    if [d.get("id") for d in ra.get("data", [])] != [d.get("id") for d in rb.get("data", [])]:
        raise FercliError(f"{what}: it was trained on other data artifacts")
    oa, ob = _options(first), _options(other)
    diff = sorted(k for k in set(oa) | set(ob) if oa.get(k) != ob.get(k))
    for key in ("epochs", "seed"):
        if ra.get(key) != rb.get(key):
            diff.append(key)
    if diff:
        raise FercliError(f"{what}: it was trained with other options ({', '.join(sorted(set(diff)))})")
    if bool(ra.get("init_from")) != bool(rb.get("init_from")) or len(ra.get("streams") or []) != len(rb.get("streams") or []):
        raise FercliError(f"{what}: it was initialised from other sources (--init-from, --streams)")
    pa, pb = first.partition, other.partition
    assert pa is not None and pb is not None
    same = (pa.scheme == pb.scheme and pa.settings == pb.settings and len(pa.data) == len(pb.data)
            and all(x.identity.get("id") == y.identity.get("id") and x.role == y.role and x.fold_source == y.fold_source
                    and np.array_equal(x.clip_ids, y.clip_ids) and np.array_equal(x.subjects, y.subjects)
                    and np.array_equal(x.labels, y.labels) for x, y in zip(pa.data, pb.data)))
    if not same:
        raise FercliError(f"{what}: it was trained on other folds of the data (its partition record differs)")


def joined_partition(files: Sequence[ModelFile]) -> PartitionRecord:
    """One run per fold, in fold order: the record a ``--folds all`` run of the same data writes."""
    first = files[0].partition
    assert first is not None
    data = []
    for d, part in enumerate(first.data):
        parts = np.concatenate([mf.partition.data[d].parts for mf in files], axis=0)
        untested = int(np.sum(~np.any(parts == TEST, axis=0)))
        if untested:
            have = ", ".join(str(mf.partition.runs[0].fold) for mf in files)
            raise FercliError(f"the fold models given (folds {have}) leave {untested} clips of {part.name} untested: "
                              "join every fold of the run")
        data.append(dataclasses.replace(part, parts=parts))
    return dataclasses.replace(first, runs=[Run(mf.partition.runs[0].fold, mf.partition.runs[0].name) for mf in files], data=data,
                               counts=[copy.deepcopy(mf.partition.counts[0]) for mf in files])


def _fold_entry(mf: ModelFile) -> dict:
    """What ``--folds all`` records of a finished fold (:meth:`fercli.train.run.FoldRun.fold_entry`)."""
    last = mf.record.history[-1] if mf.record.history else {}
    counts = mf.partition.counts[0] if mf.partition.counts else {}
    run = mf.partition.runs[0]
    return {"fold": run.fold, "name": run.name, "history": list(mf.record.history), "test_acc": last.get("test_acc"),
            "test_loss": last.get("test_loss"), "n_train": int((counts.get("train") or {}).get("clips", 0)),
            "n_test": int((counts.get("test") or {}).get("clips", 0))}


def join_folds(files: Sequence[ModelFile]) -> tuple[ModelRecord, dict[str, dict[str, np.ndarray]]]:
    """The ``--folds all`` model of the fold models ``files`` (any order): its record and arrays."""
    if not files:
        raise FercliError("merge needs at least one fold model")
    folds = [_fold_of(mf) for mf in files]
    for mf in files[1:]:
        _check_same_run(files[0], mf)
    if len(set(folds)) != len(folds):
        dup = next(k for k in folds if folds.count(k) > 1)
        names = [mf.name for mf, k in zip(files, folds) if k == dup]
        raise FercliError(f"fold {dup} is given twice ({' and '.join(names)})")
    files = [mf for _, mf in sorted(zip(folds, files), key=lambda t: t[0])]
    partition = joined_partition(files)
    last = files[-1]
    extra = copy.deepcopy(last.record.extra)
    run = extra.get("run") or {}
    run["options"] = {**(run.get("options") or {}), "fold": None, "all_folds": True}
    extra.update(run=run, partition=partition.summary(), fold=None, folds=[_fold_entry(mf) for mf in files],
                 progress={"partition": len(files) - 1, "epoch": int(run.get("epochs", 0)), "complete": True})
    record = ModelRecord(last.record.arch, copy.deepcopy(last.record.config), last.record.state, list(last.record.class_names),
                         list(last.record.history), extra)
    arrays = {"optimizer": last.arrays.get("optimizer", {}), **{f"folds/{mf.partition.runs[0].fold}": mf.record.state for mf in files},
              **partition.arrays()}
    return record, arrays


def join_model_files(paths: Sequence[str]) -> tuple[ModelRecord, list[dict], dict, list[int]]:
    """Load the fold models at ``paths`` and join them: record, lineage, arrays, the folds joined."""
    files = [load_model_file(p, "merge") for p in paths]
    record, arrays = join_folds(files)
    folds = [int(f["fold"]) for f in record.extra["folds"]]
    entry = artifacts.lineage_entry("merge", {"inputs": len(paths), "kind": "model", "folds": folds}, [mf.identity for mf in files])
    return record, artifacts.combine_lineage([mf.lineage for mf in files], entry), arrays, folds
