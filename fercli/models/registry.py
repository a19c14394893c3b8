"""Model registry: ``name -> (model class, default config)``.

Every network of every chapter is built by name from a JSON-able config, so a
model artifact (arch name + config JSON + weights as HDF5 datasets) rebuilds
the exact module without pickle.

A registered class implements :class:`fercli.models.base.FercliModel` (its
``inputs``, ``features``/``classify``, ``dummy_inputs``); its default config is
read once from its ``__init__`` signature (every keyword after ``num_classes``),
so a default is written in exactly one place.  ``fixed`` keywords are set by the
registration itself (``mobilenet-v2`` is :class:`MobileNet` with
``variant='v2'``) and are not config keys.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from fercli.errors import FercliError


def _jsonable(value: Any) -> Any:
    """Defaults as JSON values: tuples become lists (recursively)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def signature_defaults(cls: type, exclude: set[str]) -> dict:
    """Keyword defaults of ``cls.__init__`` after ``num_classes`` (minus ``exclude``)."""
    out = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "num_classes") or name in exclude or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{cls.__name__}.__init__ argument {name!r} needs a default to be a config key")
        out[name] = _jsonable(p.default)
    return out


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    defaults: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    doc: str = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        """The forward inputs with the default config."""
        return self.input_names(None)

    def input_names(self, config: dict | None = None) -> tuple[str, ...]:
        """The forward inputs of this architecture for ``config`` (defaults overlaid)."""
        return tuple(self.cls.input_names(self.resolve(config)))

    def resolve(self, config: dict | None) -> dict:
        """Defaults overlaid with ``config``; unknown keys are refused with a sentence."""
        config = dict(config or {})
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            raise FercliError(f"model '{self.name}' has no option(s) {', '.join(unknown)} (it takes {', '.join(sorted(self.defaults)) or 'none'})")
        resolved = copy.deepcopy(self.defaults)
        resolved.update(config)
        return resolved

    def builder(self, num_classes: int, **config) -> nn.Module:
        return self.cls(num_classes, **self.fixed, **config)


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, cls: type, fixed: dict | None = None, doc: str = "") -> None:
    """Register ``cls`` (a :class:`~fercli.models.base.FercliModel`) as architecture ``name``."""
    from fercli.models.base import FercliModel

    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    if not issubclass(cls, FercliModel):
        raise TypeError(f"{cls.__name__} does not implement FercliModel")
    fixed = dict(fixed or {})
    _REGISTRY[name] = ModelSpec(name, cls, signature_defaults(cls, set(fixed)), fixed, doc or (cls.__doc__ or "").strip().split("\n")[0])


def _load_all() -> None:
    # Importing the package registers every architecture.
    import fercli.models  # noqa: F401


def available() -> list[str]:
    """Every registered architecture's name (``fercli train --help`` lists them)."""
    _load_all()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _load_all()
    if name not in _REGISTRY:
        raise FercliError(f"unknown architecture '{name}' (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def stored_config(name: str, config: dict) -> dict:
    """A config read from an artifact, with the values its (older) writer used for
    keys added since (:attr:`FercliModel.legacy_config`); fusion streams too."""
    spec = get_spec(name)
    out = copy.deepcopy(dict(config or {}))
    for key, value in spec.cls.legacy_config.items():
        out.setdefault(key, copy.deepcopy(value))
    if isinstance(out.get("streams"), list):
        out["streams"] = [dict(s, config=stored_config(s["arch"], s.get("config") or {})) if isinstance(s, dict) and "arch" in s else s
                          for s in out["streams"]]
    return out


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
    model, _ = build(record.arch, num_classes=len(record.class_names), config=stored_config(record.arch, record.config))
    load_state(model, record.state, record.arch, finite)
    return model


def load_state(model: nn.Module, state: dict, arch: str = "", finite: bool = True) -> nn.Module:
    """Load numpy weights into ``model`` exactly, after :func:`~fercli.models.checks.check_state`
    (every key, every shape, finite values unless ``finite=False``), or refuse with a sentence."""
    import numpy as np
    import torch

    from fercli.models.checks import check_state

    check_state(model, None, state, finite=finite, arch=arch or type(model).__name__)
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
