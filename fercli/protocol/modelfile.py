"""Model artifacts as every stage reads them: weights, optimizer state, per-fold
weights and the partition record -- HDF5 datasets and JSON, no pickle,
``torch.load`` never used.

Layout of a model artifact written by ``fercli train`` (schema: model v1)::

    weights/<state key>          the model (last fold trained for --folds all)
    optimizer/<param>.<name>     optimizer state for --resume (momentum, Adam moments, step)
    folds/<k>/<state key>        --folds all: every completed fold's weights
    partition/<d>/...            the partition record's per-clip arrays (fercli.protocol.partition)
    attrs: arch, config, class_names, history (current fold), extra (JSON):
        extra.run        resolved run configuration (every option, data ids, seed,
                         torch version, device, world size)
        extra.progress   {partition, epoch, complete} -- where --resume continues
        extra.fold       the held-out fold of a single-fold run (None: no folds)
        extra.folds      [{fold, history, test_acc, ...}] of a --folds all run
        extra.partition  the partition record's summary (runs, parts, data identities)
        extra.data_prep  how clips became model inputs (fercli.protocol.samples.SampleSpec)
        extra.optimizer_groups, extra.init
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fercli import artifacts
from fercli.artifacts import ModelRecord
from fercli.errors import FercliError
from fercli.protocol.partition import TEST, TRAIN, PartitionRecord, describe_subjects, read_partition
from fercli.protocol.join import related


@dataclass
class ModelFile:
    record: ModelRecord
    identity: dict
    lineage: list[dict]
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    path: str = ""
    partition: Optional[PartitionRecord] = None

    @property
    def name(self) -> str:
        return artifacts.display_name(self.path) if self.path else "the model"

    @property
    def folds_trained(self) -> list[int]:
        return sorted(int(g.split("/", 1)[1]) for g in self.arrays if g.startswith("folds/"))

    def partition_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """The record's arrays, to carry into a model derived from this one (prune, rebuild)."""
        return self.partition.arrays() if self.partition is not None else {}


def load_model_file(path: str, stage: str) -> ModelFile:
    """A model artifact with its optimizer, per-fold weights and partition record."""
    from fercli.models.registry import stored_config

    name = artifacts.display_name(path)
    with artifacts.open_artifact(path, "model", stage) as f:
        record = artifacts.read_model(f, name)
        record.config = stored_config(record.arch, record.config)
        arrays: dict[str, dict[str, np.ndarray]] = {}
        if "optimizer" in f:
            arrays["optimizer"] = artifacts.read_array_group(f, "optimizer")
        if "folds" in f:
            for k in f["folds"].keys():
                arrays[f"folds/{k}"] = artifacts.read_array_group(f, f"folds/{k}")
        partition = read_partition(f, record.extra.get("partition"), name)
        return ModelFile(record, artifacts.artifact_identity(f, path), artifacts.read_lineage(f), arrays, path, partition)


def save_model_file(path: str, record: ModelRecord, lineage: list[dict], arrays: dict) -> None:
    artifacts.save_model(path, record, lineage, arrays=arrays)


def fold_state(mf: ModelFile, fold: Optional[int], what: str) -> dict[str, np.ndarray]:
    """The weights of ``mf`` to use for training/evaluating fold ``fold``.

    A --folds all artifact gives its fold ``fold``.  Whether a single-run model may
    serve fold ``fold`` is its partition record's to say (:func:`check_transfer`,
    :func:`fercli.protocol.partition.replay`); a model written before records
    trained with another held-out fold is refused: its training set contains this
    fold's test subjects, and the result would leak.
    """
    trained = mf.folds_trained
    if trained:
        if fold is None:
            raise FercliError(f"{what} {mf.name} holds folds {', '.join(map(str, trained))}: give --fold k (or --folds all)")
        if fold not in trained:
            raise FercliError(f"{what} {mf.name} has no fold {fold} (it holds {', '.join(map(str, trained))})")
        return mf.arrays[f"folds/{fold}"]
    own = mf.record.extra.get("fold")
    if mf.partition is None and fold is not None and own is not None and int(own) != int(fold):
        raise FercliError(f"{what} {mf.name} was trained with fold {own} held out, not fold {fold}: its training set holds fold {fold}'s test subjects")
    return mf.record.state


def source_run(mf: ModelFile, fold: Optional[int]) -> int:
    """Index of the source model's run whose weights :func:`fold_state` gives for ``fold``."""
    assert mf.partition is not None
    if len(mf.partition.runs) > 1 or (fold is not None and mf.partition.runs[0].fold == fold):
        return mf.partition.run_of(fold, mf.name)
    return 0


def check_transfer(source: ModelFile, fold: Optional[int], target: PartitionRecord, run: int, what: str) -> None:
    """Refuse weights (``--init-from``, ``--streams``) trained on a subject that run
    ``run`` of ``target`` tests: they would carry that subject into the result.

    Subjects are compared within their data origin (:mod:`fercli.protocol.join`), so a
    face-identity model pre-trained on another data set never conflicts.  A source
    written before partition records falls back to :func:`fold_state`'s fold check.
    """
    if source.partition is None:
        return
    src_run = source_run(source, fold)
    for t in target.data:
        test = t.subjects_in(run, TEST)
        if not test:
            continue
        for s in source.partition.data:
            same_data = s.identity.get("id") and s.identity.get("id") == t.identity.get("id")
            if not (same_data or related(s.origins, t.origins)):
                continue
            shared = sorted(test & s.subjects_in(src_run, TRAIN))
            if shared:
                raise FercliError(f"{what} {source.name} was trained ({source.partition.runs[src_run].name}) on subjects "
                                  f"{describe_subjects(shared)} of {s.name}, which {target.runs[run].name} here tests in {t.name}: "
                                  "its weights would leak them (use a source trained with the same folds)")
