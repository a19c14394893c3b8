"""Model complexity: trainable / fixed parameter counts and FLOPs (thesis 4.2.3 Eq. 4.1-4.8, Tables 4.4, 5.2-5.5).

Conventions (shared by ``fercli info`` and ``fercli evaluate``):

- ``trainable_params``: parameters with ``requires_grad`` (what the thesis's
  tables call "Trainable Params").
- ``frozen_params``: parameters that exist but do not train (the frozen streams
  inside a multi-stream fusion network).
- ``fixed_params``: weight *buffers* -- values the network computes with that no
  optimiser changes, i.e. the LBC kernels of chapter 5 (9 per LBC channel). BatchNorm
  running statistics are state, not weights, and are reported apart as
  ``bn_stats`` (Keras's "Total params" includes them; Table 4.4 was counted so).
- ``flops``: 2 x multiply-accumulates of one forward pass on one sample of the
  model's nominal input (``model.dummy_inputs(1)``), as
  ``torch.utils.flop_counter.FlopCounterMode`` reports them (convolutions,
  matmuls, recurrent cells; elementwise ops, BN and pooling are not counted, which
  is why LB-MBNet lands 1-2 % under Table 5.2, whose counter included some of them).
  The LBC kernels' zeros are multiplied too, as in the thesis (5.3.3).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _is_bn(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def parameter_counts(model: nn.Module) -> dict:
    """trainable / frozen parameters, fixed weight buffers, BN running statistics."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    fixed = bn = 0
    for module in model.modules():
        for name, buf in module.named_buffers(recurse=False):
            if buf is None:
                continue
            if _is_bn(module):
                if name in ("running_mean", "running_var"):
                    bn += buf.numel()
            elif buf.is_floating_point():
                fixed += buf.numel()
    return {"trainable_params": int(trainable), "frozen_params": int(frozen), "fixed_params": int(fixed), "bn_stats": int(bn)}


def count_flops(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """FLOPs (2 x MACs) of ``model(*inputs)`` in eval mode, without gradients; per batch given."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def complexity(model: nn.Module, inputs: Sequence[torch.Tensor] | None = None) -> dict:
    """Parameter counts plus FLOPs per sample and the input shapes used.

    ``inputs`` default to ``model.dummy_inputs(1)`` (every fercli model has it);
    pass real tensors (batch of any size) to count at another input size -- FLOPs
    are divided by the batch size. Works on the meta device too (no memory for
    the weights), so the 100 M-parameter LB-MBNets are counted in seconds.
    """
    if inputs is None:
        inputs = model.dummy_inputs(1)
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        inputs = tuple(x.to(device) for x in inputs)
    batch = int(inputs[0].shape[0]) if len(inputs) else 1
    out = parameter_counts(model)
    out["flops"] = count_flops(model, inputs) // max(1, batch)
    out["input_shape"] = [list(x.shape[1:]) for x in inputs]
    return out


def model_summary(record) -> dict:
    """What ``fercli info MODEL`` adds for a model artifact: counts, FLOPs, input shape(s)."""
    from fercli.models.registry import from_record

    model = freeze_as_trained(from_record(record, finite=False), record)  # info shows a diverged model too
    c = complexity(model)
    c["inputs"] = list(model.inputs)
    return c


def freeze_as_trained(model: nn.Module, record) -> nn.Module:
    """Mark the parameters ``--init-from ... --freeze`` froze as frozen again, so the
    counts of a rebuilt model say what its training actually trained."""
    frozen = frozen_by_init(record, [name for name, _ in model.named_parameters()])
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    return model


def frozen_by_init(record, parameter_names: Sequence[str]) -> set[str]:
    """The parameters ``train --init-from ... --freeze`` froze (they stayed as loaded),
    from the record's ``extra.init``; models trained before the loaded keys were
    recorded fall back to every parameter the initialisation did not list as new
    or skipped, when those lists are complete."""
    init = (record.extra or {}).get("init") or {}
    if not init.get("frozen"):
        return set()
    if "loaded_keys" in init:
        return set(init["loaded_keys"]) & set(parameter_names)
    new, skipped = init.get("new_keys") or [], init.get("skipped_for_shape_keys") or []
    if len(new) < int(init.get("new", 0)) or len(skipped) < int(init.get("skipped_for_shape", 0)):
        return set()  # truncated lists: which part was frozen is not known
    return set(parameter_names) - set(new) - set(skipped)
