"""Checks on a model record before it becomes an ``nn.Module`` (docs/security.md).

A model artifact may come from anyone: its config could ask for a network of
terabytes (``width: 1000``), a negative layer size, or a value of the wrong
JSON type, and its weights could be of the wrong shape, incomplete, or not
finite.  Building or loading such a record fails deep inside torch (exit 1,
or memory exhausted); these checks say what is wrong in one sentence first.

- :func:`check_config` -- every config value's type and range, per key; a
  cnn-gru's backbone config and a multistream's stream configs recursively.
- :func:`check_state` -- weight names and shapes against the built
  architecture (missing / unexpected / wrong shape) and finite values.

:mod:`fercli.models.registry` calls them where a record is built (``build``,
``from_record``, ``load_state``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from fercli.errors import FercliError


@dataclass(frozen=True)
class Rule:
    """What one config key accepts: a JSON type and a range or a set of choices."""

    kind: str  # 'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' | 'ratio' (number or list of numbers)
    min: Optional[float] = None
    max: Optional[float] = None
    above: Optional[float] = None  # strictly greater than
    below: Optional[float] = None  # strictly less than
    choices: Optional[tuple] = None


#: Config keys and what they accept, for every architecture that has the key.
#: Upper bounds keep a config from asking for more memory than any machine has
#: (the thesis's largest values are far below them).
RULES: dict[str, Rule] = {
    "width": Rule("float", above=0, max=8),
    "width_mult": Rule("float", above=0, max=8),
    "fc": Rule("int", min=0, max=16384),  # 0: no FC layer
    "fc_layers": Rule("int", min=0, max=16),
    "hidden": Rule("int", min=1, max=16384),
    "dropout": Rule("float", min=0, below=1),
    "in_channels": Rule("int", min=1, max=4),
    "input_size": Rule("int", min=8, max=2048),
    "frames": Rule("int", min=1, max=10000),
    "maps": Rule("int", min=1, max=10000),
    "batch_norm": Rule("bool"),
    "freeze_streams": Rule("bool"),
    "depth": Rule("int", min=1, max=1000),
    "expansion": Rule("ratio", above=0, max=100),
    "lbc_sparsity": Rule("float", above=0, max=1),
    "lbc_seed": Rule("int", min=0, max=2**63 - 1),
    "se_ratio": Rule("float", above=0, max=1),
    "act": Rule("str", choices=("relu", "relu6", "hswish", "swish", "hsigmoid", "sigmoid", "none")),
    "channels": Rule("list", min=1, max=16384),
    "last_point": Rule("int", min=0, max=16384),
    "plane": Rule("str", choices=("xt", "yt", "xy")),
    "rnn": Rule("str", choices=("gru", "lstm", "max")),
    "pool": Rule("str", choices=("gru", "max")),
    "input": Rule("str", choices=("features", "probs")),
    "backbone": Rule("str"),
    "backbone_config": Rule("dict"),
    "streams": Rule("list"),
}
#: Nesting of backbone / stream configs deeper than this is not a model fercli builds.
MAX_NESTING = 4
_JSON = {int: "int", float: "float", bool: "bool", str: "str", list: "list", dict: "dict"}


def _kind_of(value: Any) -> str:
    return _JSON.get(type(value), type(value).__name__)


def _number(arch: str, key: str, value: Any, rule: Rule, integer: bool) -> None:
    shown = repr(value) if not isinstance(value, (int, float)) else f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FercliError(f"model '{arch}': {key} must be a {'whole number' if integer else 'number'}, not {_kind_of(value)} {shown}")
    if integer and isinstance(value, float) and not value.is_integer():
        raise FercliError(f"model '{arch}': {key} must be a whole number (got {shown})")
    if not math.isfinite(value):
        raise FercliError(f"model '{arch}': {key} must be finite (got {shown})")
    if rule.min is not None and value < rule.min:
        raise FercliError(f"model '{arch}': {key} must be at least {rule.min:g} (got {shown})")
    if rule.above is not None and not value > rule.above:
        raise FercliError(f"model '{arch}': {key} must be greater than {rule.above:g} (got {shown})")
    if rule.max is not None and value > rule.max:
        raise FercliError(f"model '{arch}': {key} must be at most {rule.max:g} (got {shown})")
    if rule.below is not None and not value < rule.below:
        raise FercliError(f"model '{arch}': {key} must be less than {rule.below:g} (got {shown})")


def _check_value(arch: str, key: str, value: Any, rule: Rule, depth: int) -> None:
    if rule.kind in ("int", "float"):
        _number(arch, key, value, rule, rule.kind == "int")
    elif rule.kind == "ratio":  # one expansion ratio, or one per prunable block
        for item in (value if isinstance(value, list) and value else [value]):
            _number(arch, key, item, rule, False)
    elif rule.kind == "bool":
        if not isinstance(value, bool):
            raise FercliError(f"model '{arch}': {key} must be true or false, not {_kind_of(value)} {value!r}")
    elif rule.kind == "str":
        if not isinstance(value, str):
            raise FercliError(f"model '{arch}': {key} must be a string, not {_kind_of(value)} {value!r}")
        if rule.choices and value not in rule.choices:
            raise FercliError(f"model '{arch}': {key} must be one of {', '.join(rule.choices)} (got '{value}')")
    elif rule.kind == "dict":
        if not isinstance(value, dict) and value is not None:  # None: "the default" (a backbone's own config)
            raise FercliError(f"model '{arch}': {key} must be a JSON object, not {_kind_of(value)}")
    elif rule.kind == "list":
        if not isinstance(value, list) or len(value) > 1000:
            raise FercliError(f"model '{arch}': {key} must be a JSON list (of at most 1000 entries)")
        if key == "channels":
            for item in value:
                _number(arch, key, item, rule, True)


def check_config(arch: str, config: Optional[dict], defaults: Optional[dict] = None, _depth: int = 0) -> None:
    """Refuse a config value of the wrong type or out of range, naming the key.

    ``config`` is checked as given (unknown keys are the registry's to refuse);
    keys without a rule in :data:`RULES` must have the JSON type of their
    default.  A cnn-gru's ``backbone_config`` and a multistream's stream configs
    are checked against their own architectures.
    """
    from fercli.models import registry

    if not isinstance(config, dict):
        raise FercliError(f"model '{arch}' config must be a JSON object, not {_kind_of(config)}")
    if _depth > MAX_NESTING:
        raise FercliError(f"model '{arch}' config nests backbones or streams more than {MAX_NESTING} deep")
    if defaults is None:
        defaults = registry.get_spec(arch).defaults
    for key, value in config.items():
        rule = RULES.get(key)
        if rule is not None:
            _check_value(arch, key, value, rule, _depth)
        elif key in defaults and defaults[key] is not None and not _same_json_type(value, defaults[key]):
            raise FercliError(f"model '{arch}': {key} must be a {_kind_of(defaults[key])}, not {_kind_of(value)} {value!r}")
    if "backbone" in config or "backbone_config" in config:
        backbone = config.get("backbone", defaults.get("backbone"))
        if isinstance(backbone, str):
            check_config(backbone, config.get("backbone_config") or {}, None, _depth + 1)
    for i, stream in enumerate(config.get("streams") or []):
        if not isinstance(stream, dict) or not isinstance(stream.get("arch"), str) or not isinstance(stream.get("config", {}), dict):
            raise FercliError(f"model '{arch}' stream {i + 1} must be {{\"arch\": name, \"config\": {{...}}}}")
        check_config(stream["arch"], stream.get("config", {}), None, _depth + 1)


def _same_json_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(default, float) or float(value).is_integer())
    return isinstance(value, type(default))


def non_finite(state: dict[str, np.ndarray]) -> Optional[str]:
    """The first weight name holding nan or an infinity, or None."""
    for key, value in state.items():
        arr = np.asarray(value)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            return key
    return None


def check_finite(state: dict[str, np.ndarray], what: str = "the model") -> None:
    """Refuse weights holding nan or infinities (a diverged training run)."""
    key = non_finite(state)
    if key is not None:
        raise FercliError(f"{what} holds non-finite weights (nan or inf, e.g. in '{key}'): "
                          "it comes from a diverged training run and cannot be used")


def check_state(model_or_arch: Any, config: Optional[dict], state: dict[str, np.ndarray], finite: bool = True,
                num_classes: Optional[int] = None, arch: Optional[str] = None) -> None:
    """Weight names, shapes and values of ``state`` against the built architecture.

    ``model_or_arch`` is the built ``nn.Module`` (or an architecture name, then
    built from ``config`` with ``num_classes``).  Refuses missing or unexpected
    weights, a weight of another shape or a non-numeric one, and (``finite``)
    nan or infinite values.
    """
    if isinstance(model_or_arch, str):
        from fercli.models import registry

        if num_classes is None:
            raise ValueError("check_state(arch, ...) needs num_classes")
        arch = model_or_arch
        model, _ = registry.build(arch, num_classes, config)
    else:
        model = model_or_arch
        arch = arch or type(model).__name__
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. '{unexpected[0]}')")
        raise FercliError(f"the weights do not fit architecture '{arch}': {', '.join(parts)}")
    for key, want in target.items():
        have = np.asarray(state[key])
        if have.dtype.kind not in "biuf":
            raise FercliError(f"weight '{key}' holds {have.dtype} values, not numbers")
        if tuple(have.shape) != tuple(want.shape):
            raise FercliError(f"weight '{key}' has shape {_shape(have.shape)} where architecture '{arch}' needs {_shape(want.shape)}")
    if finite:
        check_finite(state)


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"
