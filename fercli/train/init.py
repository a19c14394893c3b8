"""``--init-from``: transfer weights between models (thesis 3.2.3 transfer to the
CNN-GRU, 4.2.6 two-stage fine-tuning, 5.3.2 retraining a rebuilt pruned model).

Matching rule, per source weight (parameters AND buffers, e.g. BatchNorm
statistics and LBC kernels):

1. the same key with the same shape in the target -> loaded;
2. else the same key under one module prefix of the target (plain-cnn
   ``trunk.body.0.weight`` -> cnn-gru ``backbone.trunk.body.0.weight``) with the same
   shape -> loaded.  The prefix is chosen once, as the one that places the most
   source weights, so the source lands in one coherent sub-module;
3. a key that is found but has another shape (e.g. a classifier for another
   class count) is *skipped for shape*; target weights nothing was loaded into
   are *new* (left as initialised).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from fercli.errors import FercliError


@dataclass
class InitReport:
    source: str
    prefix: str = ""
    loaded: list[str] = field(default_factory=list)
    skipped_shape: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)

    def counts(self) -> dict:
        return {"loaded": len(self.loaded), "new": len(self.new), "skipped_for_shape": len(self.skipped_shape), "unused": len(self.unused)}

    def as_json(self) -> dict:
        # loaded_keys in full: `info` / `evaluate` rebuild the model and must know which part --freeze froze.
        return {"source": self.source, "prefix": self.prefix, **self.counts(),
                "skipped_for_shape_keys": self.skipped_shape[:50], "new_keys": self.new[:50], "loaded_keys": list(self.loaded)}


def best_prefix(source_keys: list[str], target_keys: list[str]) -> str:
    """The module prefix that maps the most source keys onto target keys."""
    target = set(target_keys)
    votes: Counter = Counter()
    for key in source_keys:
        if key in target:
            votes[""] += 1
        suffix = "." + key
        for t in target_keys:
            if t.endswith(suffix):
                votes[t[: -len(key)]] += 1
    if not votes:
        return ""
    # most matches first; on a tie the shortest (outermost) prefix
    return sorted(votes.items(), key=lambda kv: (-kv[1], len(kv[0])))[0][0]


def load_matching(model: nn.Module, state: dict[str, np.ndarray], source: str = "", prefix: str | None = None) -> InitReport:
    """Copy every matching weight of ``state`` into ``model`` (in place)."""
    from fercli.models.checks import check_finite

    check_finite(state, source or "the initialising model")
    target = model.state_dict()
    keys = list(target)
    if prefix is None:
        prefix = best_prefix(list(state), keys)
    report = InitReport(source=source, prefix=prefix)
    new_state = {}
    for key, value in state.items():
        for candidate in ([prefix + key, key] if prefix else [key]):
            if candidate in target:
                if tuple(target[candidate].shape) == tuple(np.shape(value)):
                    new_state[candidate] = torch.from_numpy(np.ascontiguousarray(value)).to(target[candidate].dtype)
                    report.loaded.append(candidate)
                else:
                    report.skipped_shape.append(candidate)
                break
        else:
            report.unused.append(key)
    model.load_state_dict(new_state, strict=False)
    got = set(report.loaded)
    report.new = [k for k in keys if k not in got]
    return report


def freeze(model: nn.Module, keys: list[str]) -> int:
    """requires_grad=False for the parameters among ``keys``; returns how many."""
    wanted = set(keys)
    n = 0
    for name, p in model.named_parameters():
        if name in wanted:
            p.requires_grad_(False)
            n += 1
    return n


def find_stream_prefix(model: nn.Module, index: int, state: dict[str, np.ndarray]) -> str:
    """Module prefix of stream ``index`` in a fusion model: the sub-module named
    '<anything>.<index>' (e.g. ``streams.2``) whose weights cover ``state``."""
    target = model.state_dict()
    names = [n for n, _ in model.named_modules() if n.split(".")[-1] == str(index)]
    for name in sorted(names, key=len):
        p = name + "."
        if all(p + k in target and tuple(target[p + k].shape) == tuple(np.shape(v)) for k, v in state.items()):
            return p
    raise FercliError(f"stream {index + 1}'s weights do not fit any stream of this fusion model")
