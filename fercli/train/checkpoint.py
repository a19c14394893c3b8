"""Model artifacts as checkpoints: weights, optimizer state and per-fold weights
as HDF5 datasets, everything else JSON -- no pickle, ``torch.load`` never used.

The artifact's layout is :data:`fercli.artifacts.MODEL_LAYOUT`; ``fercli train``
fills its JSON ``extra`` attribute with:

        extra.run        resolved run configuration (every option, data ids, seed,
                         torch version, device, world size)
        extra.progress   {partition, epoch, complete} -- where --resume continues
        extra.fold       the held-out fold of a single-fold run (None: no folds)
        extra.folds      [{fold, history, test_acc, ...}] of a --folds all run
        extra.partition  how train/test were chosen (fold source, official split mapping)
        extra.data_prep  how clips became model inputs (evaluate repeats it)
        extra.optimizer_groups, extra.init, extra.streams
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fercli import artifacts
from fercli.artifacts import ModelRecord
from fercli.errors import FercliError


@dataclass
class ModelFile:
    record: ModelRecord
    identity: dict
    lineage: list[dict]
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    path: str = ""

    @property
    def folds_trained(self) -> list[int]:
        return sorted(int(g.split("/", 1)[1]) for g in self.arrays if g.startswith("folds/"))


def load_model_file(path: str, stage: str) -> ModelFile:
    """A model artifact with its optimizer and per-fold array groups."""
    name = artifacts.display_name(path)
    with artifacts.open_artifact(path, "model", stage) as f:
        record = artifacts.read_model(f, name)
        arrays = artifacts.read_model_arrays(f)
        return ModelFile(record, artifacts.artifact_identity(f, path), artifacts.read_lineage(f), arrays, path)


def fold_state(mf: ModelFile, fold: Optional[int], what: str) -> dict[str, np.ndarray]:
    """The weights of ``mf`` to use for training/evaluating fold ``fold``.

    A --folds all artifact gives its fold ``fold``; a single-fold artifact trained
    with another held-out fold is refused: its training set contains this fold's
    test subjects, and the result would leak.
    """
    name = artifacts.display_name(mf.path) if mf.path else "the model"
    trained = mf.folds_trained
    if trained:
        if fold is None:
            raise FercliError(f"{what} {name} holds folds {', '.join(map(str, trained))}: give --fold k (or --folds all)")
        if fold not in trained:
            raise FercliError(f"{what} {name} has no fold {fold} (it holds {', '.join(map(str, trained))})")
        return mf.arrays[f"folds/{fold}"]
    own = mf.record.extra.get("fold")
    if fold is not None and own is not None and int(own) != int(fold):
        raise FercliError(f"{what} {name} was trained with fold {own} held out, not fold {fold}: its training set holds fold {fold}'s test subjects")
    return mf.record.state


def save_model_file(path: str, record: ModelRecord, lineage: list[dict], arrays: dict) -> None:
    artifacts.save_model(path, record, lineage, arrays=arrays)
