"""What ``train --resume`` reads from a checkpoint, checked before any of it is applied (issue 20).

A checkpoint is a model artifact written every epoch (docs/train.md): the
weights (checked by :func:`fercli.models.checks.check_state`), a progress
record (which run, which epoch, finished folds) and the optimizer's state as
flat arrays ``'<param index>.<name>'`` with its parameter groups as JSON.  A
damaged one -- a progress record that is not an object, a momentum buffer of
another shape, a learning rate that is a string -- is one sentence here,
never an AttributeError or a broadcast error in the middle of an epoch, and
since nothing is written before the first epoch ends, the checkpoint stays as
it was.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import numpy as np

from fercli.errors import FercliError
from fercli.untrusted import one_line

#: State names each optimizer keeps per parameter ('step' is a scalar, the others the parameter's shape).
STATE_NAMES = {"SGD": {"momentum_buffer"}, "Adam": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}}


def _count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def progress_record(extra: Any, name: str) -> Optional[dict]:
    """The checkpoint's progress record (None when there is none), its fields checked."""
    if not isinstance(extra, dict):
        raise FercliError(f"{name}: the checkpoint's record is not a JSON object, so --resume cannot continue it")
    prog = extra.get("progress")
    if prog is None:
        return None
    if not isinstance(prog, dict):
        raise FercliError(f"{name}: the checkpoint's progress record is {type(prog).__name__}, not an object, so --resume cannot continue it")
    for key in ("partition", "epoch"):
        if key in prog and not _count(prog[key]):
            raise FercliError(f"{name}: the checkpoint's progress '{key}' must be a count (got {one_line(repr(prog[key]))[:60]})")
    if "complete" in prog and not isinstance(prog["complete"], bool):
        raise FercliError(f"{name}: the checkpoint's progress 'complete' must be true or false")
    folds = extra.get("folds", [])
    if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
        raise FercliError(f"{name}: the checkpoint's finished folds must be a list of objects")
    return prog


def _same_kind(saved: Any, current: Any) -> bool:
    if isinstance(current, bool) or isinstance(saved, bool):
        return isinstance(current, bool) and isinstance(saved, bool)
    if isinstance(current, numbers.Real):
        return isinstance(saved, numbers.Real) and math.isfinite(saved)
    if isinstance(current, (list, tuple)):  # Adam's betas come back from JSON as a list
        return isinstance(saved, (list, tuple)) and len(saved) == len(current) and all(_same_kind(s, c) for s, c in zip(saved, current))
    return current is None and saved is None or type(saved) is type(current)


def check_optimizer_state(optimizer, arrays: Any, groups: Any) -> None:
    """Every state array and parameter group of a checkpoint fits ``optimizer``, or one sentence.

    Checked: the groups are the optimizer's (same count, same parameter indices,
    same keys, values of the same kind); each array belongs to a parameter of
    this optimizer, has a name this optimizer keeps, the parameter's shape
    (a scalar for 'step'), a floating dtype and finite values.
    """
    kind = type(optimizer).__name__
    current = optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(current) or not all(isinstance(g, dict) for g in groups):
        raise FercliError(f"the checkpoint's optimizer groups do not fit this {kind} ({len(current)} group(s) expected)")
    for saved, group in zip(groups, current):
        if saved.get("params") != group["params"]:
            raise FercliError("the checkpoint's optimizer groups list other parameters than this model has")
        for key, value in group.items():
            if key != "params" and key in saved and not _same_kind(saved[key], value):
                raise FercliError(f"the checkpoint's optimizer setting '{one_line(key)}' is {one_line(repr(saved[key]))[:40]}, "
                                  f"not like this {kind}'s {value!r}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    allowed = STATE_NAMES.get(kind)
    if not isinstance(arrays, dict):
        raise FercliError("the checkpoint's optimizer state is not a group of arrays")
    for key, value in arrays.items():
        index, _, state = str(key).partition(".")
        if not index.isdigit() or int(index) >= len(params) or (allowed is not None and state not in allowed):
            raise FercliError(f"the checkpoint's optimizer state '{one_line(str(key))[:60]}' is not one this {kind} of "
                              f"{len(params)} parameters keeps")
        value = np.asarray(value)
        want = () if state == "step" else tuple(params[int(index)].shape)
        if value.shape != want and not (state == "step" and value.shape == (1,)):
            raise FercliError(f"the checkpoint's optimizer state '{key}' has shape {list(value.shape)}, but this model's "
                              f"parameter {index} needs {list(want)}: the checkpoint does not fit this model")
        if value.dtype.kind not in "fiu" or value.dtype.kind in "iu" and state != "step":
            raise FercliError(f"the checkpoint's optimizer state '{key}' holds {value.dtype} values, not floating point")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise FercliError(f"the checkpoint's optimizer state '{key}' holds nan or infinite values")
