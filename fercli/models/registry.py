"""Model registry: ``name -> (model class, default config, config rules, training recipe)``.

Every network of every chapter is built by name from a JSON-able config, so a
model artifact (arch name + config JSON + weights as HDF5 datasets) rebuilds
the exact module without pickle.

A registered class implements :class:`fercli.models.base.FercliModel` (its
``inputs``, ``features``/``classify``, ``dummy_inputs``); its default config is
read once from its ``__init__`` signature (every keyword after ``num_classes``),
so a default is written in exactly one place, and so is what each key accepts: its
``Annotated`` :class:`~fercli.models.checks.Rule` in the same signature.  ``fixed``
keywords are set by the registration itself (``mobilenet-v2`` is :class:`MobileNet`
with ``variant='v2'``) and are not config keys.  ``recipe`` is how the thesis
trained the architecture (:class:`~fercli.models.recipe.TrainingRecipe`; chapters
3-4's when not given).

:meth:`ModelSpec.config_for_training` completes a config from what a training run
has (a model to start from, stream models, the data): each class derives its own
keys (:meth:`~fercli.models.base.FercliModel.config_from_sources`,
:meth:`~fercli.models.base.FercliModel.config_from_data`).
"""

from __future__ import annotations

import copy
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from torch import nn

from fercli.errors import FercliError
from fercli.models import checks
from fercli.models.base import DataLayout, FercliModel
from fercli.models.recipe import TrainingRecipe


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


def signature_rules(cls: type, keys: Sequence[str]) -> dict[str, checks.Rule]:
    """The :class:`~fercli.models.checks.Rule` annotated on each config keyword of ``cls.__init__``."""
    hints = typing.get_type_hints(cls.__init__, include_extras=True)
    rules = {}
    for key in keys:
        rule = next((m for m in getattr(hints.get(key), "__metadata__", ()) if isinstance(m, checks.Rule)), None)
        if rule is None:
            raise TypeError(f"{cls.__name__}.__init__ argument {key!r} needs an Annotated checks.Rule to be a config key")
        rules[key] = rule
    return rules


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    defaults: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    doc: str = ""
    rules: dict = field(default_factory=dict)
    recipe: TrainingRecipe = field(default_factory=TrainingRecipe)

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

    def config_for_training(self, config: dict, data: DataLayout, init: Optional[tuple[str, dict]] = None,
                            streams: Sequence[tuple[str, dict]] = ()) -> dict:
        """``config`` (the keys the user gave) completed for a training run, resolved.

        ``init`` is the (arch, config) of the model that initialises this one and
        ``streams`` those of the fusion's stream models.  A model of this same
        architecture passes on its shape options (depth, per-block expansion,
        widths, LBC seeds: a rebuilt LB-MBNet, a model trained further) unless
        given, so every weight fits without repeating them; then the class derives
        its keys from the sources and the data.
        """
        cfg, init, streams = copy.deepcopy(config), copy.deepcopy(init), copy.deepcopy(list(streams))
        if init is not None and init[0] == self.name:
            for key, value in init[1].items():
                if key not in cfg and key != "input_size" and key in self.defaults:
                    cfg[key] = copy.deepcopy(value)
        cfg = self.cls.config_from_sources(self.name, cfg, init, streams)
        return self.resolve(self.cls.config_from_data(cfg, data))


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, cls: type, fixed: dict | None = None, doc: str = "", recipe: TrainingRecipe | None = None) -> None:
    """Register ``cls`` (a :class:`~fercli.models.base.FercliModel`) as architecture ``name``,
    trained by default with ``recipe`` (chapters 3-4's when None)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    if not issubclass(cls, FercliModel):
        raise TypeError(f"{cls.__name__} does not implement FercliModel")
    fixed = dict(fixed or {})
    defaults = signature_defaults(cls, set(fixed))
    _REGISTRY[name] = ModelSpec(name, cls, defaults, fixed, doc or (cls.__doc__ or "").strip().split("\n")[0],
                                signature_rules(cls, list(defaults)), recipe or TrainingRecipe())


def _load_all() -> None:
    # Importing the package registers every architecture.
    import fercli.models  # noqa: F401


def available() -> list[str]:
    """Every registered architecture's name (``fercli train --help`` lists them)."""
    _load_all()
    return sorted(_REGISTRY)


def recipes() -> dict[str, TrainingRecipe]:
    """Every architecture's training recipe (``fercli train --help`` prints their defaults)."""
    return {name: get_spec(name).recipe for name in available()}


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


def check_config(name: str, config: Any, depth: int = 0) -> None:
    """Refuse a config value of the wrong type or out of range, naming the key; the
    configs nested in it (a cnn-gru's backbone, a multistream's streams) against
    their own architectures' rules."""
    checks.check_object(name, config, depth)
    spec = get_spec(name)
    checks.check_values(name, config, spec.rules)
    for arch, nested in spec.cls.nested_configs(name, config, spec.defaults):
        check_config(arch, nested, depth + 1)


def build(name: str, num_classes: int, config: dict | None = None) -> tuple[nn.Module, dict]:
    """Build a model by name; returns (module, resolved config)."""
    spec = get_spec(name)
    resolved = spec.resolve(config)
    check_config(name, resolved)  # types and ranges before anything is allocated
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

    checks.check_state(model, state, finite=finite, arch=arch or type(model).__name__)
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
