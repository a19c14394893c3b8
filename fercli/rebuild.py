"""Rebuild the pruned LB-MBNet at the new expansion ratio, carrying the kept channels' weights (thesis 5.3.2).

For every prunable block with kept channel indices K (from a ``pruning``
artifact), the rebuilt block takes:

- the 1x1 expand conv's output rows K and its BatchNorm's entries K,
- the LBC kernels K (fixed buffers: the *selected* kernels, not new random ones)
  and the following BatchNorm's entries K,
- the SE's first FC input columns K and its second FC's output rows and biases K,
- the 1x1 project conv's input columns K (its BatchNorm is unchanged);

every other tensor (stem, stack 0, top, classifier, SE squeeze biases) is copied
as is. The rebuilt network then computes exactly what the source computes with
the dropped channels removed at the SE -- zero SE input and gate 0 for them
(:func:`mask_dropped`) -- which :func:`check_equivalence` measures.

Its config is the source's with ``expansion`` set to the step's ratio r'; a
model built from that config has ``round(r' x c_in)`` channels per block, the
kept counts, so the rebuilt model is a plain LB-MBNet-r' artifact usable with
``fercli train --init-from``.  It inherits the source run's partition record
(``Pruning.source_arrays``): its weights come from that training part, so
``evaluate`` and a retraining ``--init-from`` check it as they check the source.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from fercli.artifacts import ModelRecord
from fercli.errors import FercliError
from fercli.prune import Pruning

# (state-key suffix inside a block, axis indexed by the expanded channel)
_SLICED = (
    ("expand.0.weight", 0), ("expand.1.weight", 0), ("expand.1.bias", 0), ("expand.1.running_mean", 0), ("expand.1.running_var", 0),
    ("dw.weight", 0), ("dw_bn.weight", 0), ("dw_bn.bias", 0), ("dw_bn.running_mean", 0), ("dw_bn.running_var", 0),
    ("se.fc1.weight", 1), ("se.fc2.weight", 0), ("se.fc2.bias", 0),
    ("project.weight", 1),
)


def pruned_state(state: dict[str, np.ndarray], block_names: Sequence[str], kept: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The source state with each block's expanded-channel tensors reduced to its kept indices."""
    out = dict(state)
    for name, idx in zip(block_names, kept):
        for suffix, axis in _SLICED:
            key = f"{name}.{suffix}"
            if key not in state:
                raise FercliError(f"the source weights lack '{key}', so they cannot be pruned")
            out[key] = np.ascontiguousarray(np.take(state[key], idx, axis=axis))
    return out


def rebuild(p: Pruning, step: int = 0) -> ModelRecord:
    """The LB-MBNet at ``p.schedule[step]`` with the kept channels' weights."""
    from fercli.models import registry

    if not 0 <= step < len(p.schedule):
        raise FercliError(f"--step must be 0..{len(p.schedule) - 1} for the schedule {','.join(map(str, p.schedule))}, not {step}")
    ratio = p.schedule[step]
    src = p.source
    config = copy.deepcopy(src.config)
    if "expansion" not in config and "expansion" not in registry.get_spec(src.arch).defaults:
        raise FercliError(f"architecture '{src.arch}' has no expansion ratio to rebuild at")
    # The source weights are sliced by channel below: first they must fit the source
    # architecture (names, shapes, finite values) and its blocks the pruning's channel counts,
    # or a damaged artifact fails inside numpy (a scalar weight: IndexError).
    source_blocks = list(registry.from_record(src).prunable_blocks())
    if len(source_blocks) != len(p.blocks):
        raise FercliError(f"the pruning holds {len(p.blocks)} blocks but its source {src.arch} has {len(source_blocks)}")
    for (n, b), s in zip(source_blocks, p.blocks):
        if n != s.name or b.mid_chs != s.mid_chs:
            raise FercliError(f"the pruning's block {s.name} has {s.mid_chs} channels but the source's {n} has {b.mid_chs}")
    config["expansion"] = ratio
    model, resolved = registry.build(src.arch, len(src.class_names), config)
    names = [n for n, _ in model.prunable_blocks()]
    if len(names) != len(p.blocks):
        raise FercliError(f"the pruning holds {len(p.blocks)} blocks but a rebuilt {src.arch} has {len(names)}")
    for (n, b), s, idx in zip(model.prunable_blocks(), p.blocks, p.kept[step]):
        if b.mid_chs != len(idx) or n != s.name:
            raise FercliError(f"{n} of the rebuilt model has {b.mid_chs} channels but the pruning keeps {len(idx)}")
    state = pruned_state(src.state, names, p.kept[step])
    target = model.state_dict()
    bad = [k for k in target if k not in state or tuple(np.shape(state[k])) != tuple(target[k].shape)]
    if bad:
        raise FercliError(f"the pruned weights do not fit the rebuilt model (e.g. '{bad[0]}')")
    extra = {
        "rebuilt": {"from_arch": src.arch, "from_expansion": src.config.get("expansion"), "expansion": ratio, "step": step,
                    "schedule": list(p.schedule), "samples": p.samples, "kept": [len(k) for k in p.kept[step]]},
    }
    for key in ("data_prep", "partition", "fold"):  # how it was fed, what it (the source) trained on
        if src.extra.get(key) is not None:
            extra[key] = copy.deepcopy(src.extra[key])
    return ModelRecord(src.arch, resolved, {k: state[k] for k in target}, list(src.class_names), [], extra)


def mask_dropped(model, kept: Sequence[np.ndarray]) -> None:
    """Force the dropped channels' SE input and gate to zero in the (large) source model."""
    import torch

    for (_, b), idx in zip(model.prunable_blocks(), kept):
        mask = torch.zeros(b.mid_chs)
        mask[torch.as_tensor(np.asarray(idx, dtype=np.int64))] = 1.0
        b.se.channel_mask = mask


def check_equivalence(p: Pruning, record: ModelRecord, step: int = 0, batch: int = 4, seed: int = 0) -> float:
    """Max |logit difference| between the rebuilt model and the masked source on random inputs (eval mode)."""
    import torch

    from fercli.models import registry

    source = registry.from_record(p.source).eval()
    mask_dropped(source, p.kept[step])
    small = registry.from_record(record).eval()
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(x.shape, generator=g) for x in small.dummy_inputs(batch)]
    with torch.no_grad():
        return float((source(*xs) - small(*xs)).abs().max())
