"""The 'model' kind: a network's architecture, configuration and weights, free of code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import h5py
import numpy as np

from fercli.errors import FercliError
from fercli.artifacts.arrays import write_array
from fercli.artifacts.attributes import _as_str, read_json_attr, write_json_attr
from fercli.artifacts.base import _short, display_name
from fercli.artifacts.lineage import artifact_identity, read_lineage
from fercli.artifacts.opening import open_artifact
from fercli.artifacts.output import create_artifact
from fercli.artifacts.validation import LAYOUTS, _check_dataset, _damaged, _json

# --------------------------------------------------------------------------- model


@dataclass
class ModelRecord:
    """A trained (or initialised) network, free of code: no pickle anywhere.

    ``arch`` names a builder in :mod:`fercli.models`; ``config`` is its JSON
    configuration; ``state`` maps state-dict keys to numpy arrays (parameters and
    buffers); ``history`` the per-epoch training record; ``extra`` anything else
    JSON (resolved run configuration, training state for --resume, ...).
    """

    arch: str
    config: dict
    state: dict[str, np.ndarray]
    class_names: list[str]
    history: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def write_model(f: h5py.File, record: ModelRecord, arrays: Optional[dict[str, dict[str, np.ndarray]]] = None) -> None:
    f.attrs["arch"] = record.arch
    write_json_attr(f, "config", record.config)
    write_json_attr(f, "class_names", list(record.class_names))
    write_json_attr(f, "history", record.history)
    write_json_attr(f, "extra", record.extra)
    g = f.create_group("weights")
    for key, value in record.state.items():
        g.create_dataset(key, data=np.asarray(value))
    # optional named groups of arrays (optimizer state for --resume, per-fold
    # weights, the partition record's per-clip ids -- strings as UTF-8 datasets)
    for group_name, items in (arrays or {}).items():
        sub = f.create_group(group_name)
        for key, value in items.items():
            value = np.asarray(value)
            if value.dtype == object or value.dtype.kind == "U":
                write_array(sub, key, value)
            elif value.dtype.kind == "S" and value.size:
                # fixed-length UTF-8 bytes compress (ids repeat prefixes); variable-length strings do not
                sub.create_dataset(key, data=value, chunks=True, compression="gzip", compression_opts=4, shuffle=True)
            else:
                sub.create_dataset(key, data=value)


def read_model(f: h5py.File | h5py.Group, name: str = "model") -> ModelRecord:
    """The record of a model artifact (or of a pruning's ``source`` group), its layout already validated."""
    try:
        g = f["weights"]
        state = {key: g[key][()] for key in g.keys()}
        arch = _as_str(f.attrs["arch"])
    except KeyError as exc:
        raise FercliError(f"{name} is a damaged 'model' artifact: {_short(exc)}") from exc
    return ModelRecord(
        arch=arch,
        config=read_json_attr(f, "config", {}) or {},
        state=state,
        class_names=list(read_json_attr(f, "class_names", []) or []),
        history=list(read_json_attr(f, "history", []) or []),
        extra=read_json_attr(f, "extra", {}) or {},
    )


def read_array_group(f: h5py.File, group_name: str) -> dict[str, np.ndarray]:
    if group_name not in f:
        return {}
    g = f[group_name]
    return {key: g[key][()] for key in g.keys()}


def read_model_arrays(f: h5py.File) -> dict[str, dict[str, np.ndarray]]:
    """A model artifact's optional array groups: ``optimizer`` and ``folds/<k>`` (see :data:`MODEL_LAYOUT`)."""
    arrays: dict[str, dict[str, np.ndarray]] = {}
    if "optimizer" in f:
        arrays["optimizer"] = read_array_group(f, "optimizer")
    if "folds" in f:
        for k in f["folds"].keys():
            arrays[f"folds/{k}"] = read_array_group(f, f"folds/{k}")
    return arrays


#: What a model artifact holds (schema: model v1); ``fercli train`` writes all of it.
MODEL_LAYOUT = """
    weights/<state key>          the model (last fold trained for --folds all)
    optimizer/<param>.<name>     optimizer state for --resume (momentum, Adam moments, step)
    folds/<k>/<state key>        --folds all: every completed fold's weights
    attrs: arch, config, class_names, history (current fold), extra (JSON objects)
"""


def _array_group(f: h5py.File | h5py.Group, ds: dict[str, h5py.Dataset], group: str, name: str, art: str, required: bool) -> None:
    """``group`` is a flat group of numeric arrays (state-dict keys never hold '/')."""
    if group not in f:
        if required:
            raise _damaged(name, art, f"the group '{group}' is missing")
        return
    if not isinstance(f[group], h5py.Group):
        raise _damaged(name, art, f"'{group}' must be a group of arrays")
    for key, obj in f[group].items():
        if not isinstance(obj, h5py.Dataset):
            raise _damaged(name, art, f"'{group}/{key}' must be an array, found a group")
        _check_dataset(obj, f"{group}/{key}", "number", name, art, range(0, 33))


def _model_layout(f: h5py.File | h5py.Group, ds: dict[str, h5py.Dataset], name: str, art: str = "model") -> None:
    """The 'model' layout: arch, JSON attributes of the right types, numeric weight arrays."""
    arch = f.attrs.get("arch")
    if arch is None:
        raise _damaged(name, art, "the attribute 'arch' is missing")
    if not isinstance(arch, (str, bytes)):
        raise _damaged(name, art, "'arch' must be the name of an architecture")
    _json(f, "config", name, art, dict, {})
    _json(f, "class_names", name, art, list, [], items=str)
    for epoch, entry in enumerate(_json(f, "history", name, art, list, [], items=dict), 1):
        bad = next((k for k, v in entry.items() if not (v is None or isinstance(v, (int, float, str)))), None)
        if bad is not None:  # an epoch's record is figures (loss, accuracies, lr, seconds), drawn by `show`
            raise _damaged(name, art, f"'history' epoch {epoch}: '{bad}' must be a number, found a JSON "
                                      f"{'object' if isinstance(entry[bad], dict) else 'list'}")
    _json(f, "extra", name, art, dict, {})
    _array_group(f, ds, "weights", name, art, required=True)
    _array_group(f, ds, "optimizer", name, art, required=False)
    if "partition" in f:  # the partition record's per-clip arrays (fercli.protocol.partition)
        if not isinstance(f["partition"], h5py.Group):
            raise _damaged(name, art, "'partition' must be a group of per-data-artifact groups")
        for key, g in f["partition"].items():
            where = f"partition/{key}"
            if not key.isdigit() or not isinstance(g, h5py.Group):
                raise _damaged(name, art, f"'{where}' must be a group named by a data artifact's number")
            n = g["clip_id"].shape[0] if isinstance(g.get("clip_id"), h5py.Dataset) else None
            for field_name, kind in (("clip_id", "str"), ("subject", "str"), ("sequence_id", "str"), ("label", "int")):
                _check_dataset(g.get(field_name), f"{where}/{field_name}", kind, name, art, 1, n)
            _check_dataset(g.get("part"), f"{where}/part", "int", name, art, 2)
            if g["part"].shape[1] != n:
                raise _damaged(name, art, f"'{where}/part' must have one column per clip ({n}), found {g['part'].shape}")
    if "folds" in f:
        if not isinstance(f["folds"], h5py.Group):
            raise _damaged(name, art, "'folds' must be a group of per-fold weights")
        for key in f["folds"].keys():
            if not key.isdigit():
                raise _damaged(name, art, f"'folds/{key}' must be named by a fold number")
            _array_group(f, ds, f"folds/{key}", name, art, required=True)


def load_model(path: str, stage: str) -> tuple[ModelRecord, dict, list[dict]]:
    with open_artifact(path, "model", stage) as f:
        return read_model(f, display_name(path)), artifact_identity(f, path), read_lineage(f)


def save_model(path: str, record: ModelRecord, lineage: Sequence[dict], arrays: Optional[dict] = None, meta: Optional[dict] = None) -> None:
    with create_artifact(path, "model", lineage, meta) as f:
        write_model(f, record, arrays)


def fold_runs(extra: dict, history: list) -> list[dict]:
    """The fold runs a model artifact holds, each {fold, part, history, test_acc,
    n_test}: the finished folds of a ``--folds all`` run (``extra.folds``), then
    the run in progress, or the only run (``history``)."""
    runs = []
    for entry in extra.get("folds") or []:
        if isinstance(entry, dict):
            runs.append({"fold": entry.get("fold"), "part": str(entry.get("name", "")), "history": list(entry.get("history") or []),
                         "test_acc": entry.get("test_acc"), "n_test": entry.get("n_test")})
    if history and not any(run["history"] == history for run in runs):
        fold = extra.get("fold")
        last = history[-1] if isinstance(history[-1], dict) else {}
        runs.append({"fold": fold, "part": f"fold {fold}" if fold is not None else ("in progress" if runs else "all"),
                     "history": list(history), "test_acc": last.get("test_acc"), "n_test": extra.get("n_test")})
    return runs


def read_model_header(f: h5py.File | h5py.Group) -> ModelRecord:
    """A model's arch, config, classes, history and extra without its weights (``state``
    empty): what tables and figures need, without reading 100 M parameters."""
    return ModelRecord(
        arch=_as_str(f.attrs.get("arch", "")),
        config=read_json_attr(f, "config", {}) or {},
        state={},
        class_names=list(read_json_attr(f, "class_names", []) or []),
        history=list(read_json_attr(f, "history", []) or []),
        extra=read_json_attr(f, "extra", {}) or {},
    )


LAYOUTS["model"] = _model_layout
