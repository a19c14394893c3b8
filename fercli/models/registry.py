"""Model registry: ``name -> (input spec, default config, builder)``.

Every network of every chapter is built by name from a JSON-able config, so a
model artifact (arch name + config JSON + weights as HDF5 datasets) rebuilds
the exact module without pickle.

Input convention (what the one training engine feeds ``forward``): a model
declares ``inputs``, a tuple of names, and ``forward`` takes one float tensor
per name, in that order, returning logits (B, K):

    "image"   (B, C, H, W)        one frame per sample, values in [0, 1]
    "clip"    (B, T, C, H, W)     a fixed-length frame sequence, values in [0, 1]
    "xt"/"yt"/"xy"  (B, M, 1, h, w)  LBP-TOP code maps of a clip, codes / 255

Frame models (backbones) also provide ``features(x) -> (B, D)``,
``classify(features) -> logits`` and ``feature_dim`` so sequence models and the
fusion network can reuse them; stream models provide ``features`` for fusion.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from fercli.errors import FercliError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]  # builder(num_classes: int, **config) -> nn.Module
    inputs: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    doc: str = ""
    # Set when the inputs depend on the config (lbptop-gru's plane, multistream's
    # streams): inputs_fn(resolved_config) -> tuple; ``inputs`` then holds the
    # default config's inputs.
    inputs_fn: Callable[[dict], tuple[str, ...]] | None = None

    def input_names(self, config: dict | None = None) -> tuple[str, ...]:
        """The forward inputs of this architecture for ``config`` (defaults overlaid)."""
        if self.inputs_fn is None:
            return self.inputs
        return tuple(self.inputs_fn(self.resolve(config)))

    def resolve(self, config: dict | None) -> dict:
        """Defaults overlaid with ``config``; unknown keys are refused with a sentence."""
        config = dict(config or {})
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise FercliError(f"model '{self.name}' has no option(s) {', '.join(unknown)} (it takes {', '.join(sorted(self.defaults)) or 'none'})")
        resolved = copy.deepcopy(self.defaults)
        resolved.update(config)
        return resolved


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, inputs: tuple[str, ...] | Callable[[dict], tuple[str, ...]], defaults: dict | None = None, doc: str = "") -> Callable:
    """Decorator: ``@register("plain-cnn", inputs=("image",), defaults={...})``.

    ``inputs`` may also be a callable of the resolved config returning the tuple,
    for architectures whose inputs depend on their config.
    """

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        inputs_fn = inputs if callable(inputs) else None
        fixed = tuple(inputs(copy.deepcopy(dict(defaults or {})))) if inputs_fn else tuple(inputs)
        _REGISTRY[name] = ModelSpec(name, builder, fixed, dict(defaults or {}), doc or (builder.__doc__ or "").strip().split("\n")[0], inputs_fn)
        return builder

    return wrap


def _load_all() -> None:
    # Importing the package registers every architecture.
    import fercli.models  # noqa: F401


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _load_all()
    if name not in _REGISTRY:
        raise FercliError(f"unknown architecture '{name}' (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def inputs_for(name: str, config: dict | None = None) -> tuple[str, ...]:
    """The forward input names of architecture ``name`` built with ``config``."""
    return get_spec(name).input_names(config)


def build(name: str, num_classes: int, config: dict | None = None) -> tuple[nn.Module, dict]:
    """Build a model by name; returns (module, resolved config)."""
    from fercli.models.checks import check_config

    spec = get_spec(name)
    resolved = spec.resolve(config)
    check_config(name, resolved, spec.defaults)  # types and ranges before anything is allocated
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= 100_000:
        raise FercliError(f"model '{name}' needs between 1 and 100000 classes, not {num_classes}")
    return spec.builder(num_classes=num_classes, **resolved), resolved


def from_record(record, finite: bool = True) -> nn.Module:
    """Rebuild a module from a :class:`fercli.artifacts.ModelRecord` (no pickle).

    Parameters and buffers come from the record's HDF5 datasets; a record that
    names an unknown architecture, has config values of the wrong type or range,
    or weights that do not fit it (names, shapes, and -- unless ``finite`` is
    False -- finite values) is refused with a sentence (:mod:`fercli.models.checks`).
    """
    model, _ = build(record.arch, num_classes=len(record.class_names), config=record.config)
    return load_weights(model, record.arch, record.state, finite)


def load_weights(model: nn.Module, arch: str, state: dict, finite: bool = True) -> nn.Module:
    """Load ``state`` (numpy arrays) into a built ``model`` after :func:`~fercli.models.checks.check_state`."""
    import numpy as np
    import torch

    from fercli.models.checks import check_state

    check_state(model, None, state, finite=finite, arch=arch)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    return model


def state_to_numpy(model: nn.Module) -> dict:
    """Parameters and buffers as numpy arrays for a ModelRecord (bf16 -> float32)."""
    import torch

    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        out[key] = value.numpy().copy()
    return out
