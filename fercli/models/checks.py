"""Checks on a model record before it becomes an ``nn.Module`` (docs/security.md).

A model artifact may come from anyone: its config could ask for a network of
terabytes (``width: 1000``), a negative layer size, or a value of the wrong
JSON type, and its weights could be of the wrong shape, incomplete, or not
finite.  Building or loading such a record fails deep inside torch (exit 1,
or memory exhausted); these checks say what is wrong in one sentence first.

- :class:`Rule` -- what one config key accepts.  Each architecture declares its
  rules next to its ``__init__``, as ``Annotated`` keyword types
  (``width: Width = 1.0``, ``depth: Annotated[int, Int(1, 1000)] = 59``); the
  registry reads them with the defaults (:func:`fercli.models.registry.register`).
  The aliases below are the rules several architectures share.
- :func:`check_values` -- one config's values against its architecture's rules
  (the registry walks a cnn-gru's backbone config and a multistream's stream
  configs, :meth:`fercli.models.base.FercliModel.nested_configs`).
- :func:`check_state` -- weight names and shapes against the built
  architecture (missing / unexpected / wrong shape) and finite values.

A leaf module: it knows rules and values, no architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Optional, Sequence

import numpy as np

from fercli.errors import FercliError


@dataclass(frozen=True)
class Rule:
    """What one config key accepts: a JSON type and a range or a set of choices."""

    kind: str  # 'int' | 'float' | 'bool' | 'str' | 'list' | 'ints' (list of whole numbers) | 'dict' | 'ratio' (number or list of numbers)
    min: Optional[float] = None
    max: Optional[float] = None
    above: Optional[float] = None  # strictly greater than
    below: Optional[float] = None  # strictly less than
    choices: Optional[tuple] = None


def Int(min: Optional[float] = None, max: Optional[float] = None) -> Rule:
    """A whole number in [min, max]."""
    return Rule("int", min=min, max=max)


def Num(min: Optional[float] = None, max: Optional[float] = None, above: Optional[float] = None, below: Optional[float] = None) -> Rule:
    """A number in the range (``above``/``below`` strict)."""
    return Rule("float", min=min, max=max, above=above, below=below)


def OneOf(*choices: str) -> Rule:
    """One of these strings."""
    return Rule("str", choices=tuple(choices))


# Rules several architectures share.  Upper bounds keep a config from asking for
# more memory than any machine has (the thesis's largest values are far below them).
InChannels = Annotated[int, Int(1, 4)]
InputSize = Annotated[int, Int(8, 2048)]
Width = Annotated[float, Num(above=0, max=8)]  # a multiplier of every layer's width
Units = Annotated[int, Int(0, 16384)]  # FC units (0: no FC layer)
Hidden = Annotated[int, Int(1, 16384)]
FCLayers = Annotated[int, Int(0, 16)]
Dropout = Annotated[float, Num(min=0, below=1)]
Switch = Annotated[bool, Rule("bool")]
Text = Annotated[str, Rule("str")]
JSONObject = Annotated[Optional[dict], Rule("dict")]
JSONList = Annotated[Sequence, Rule("list")]

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


def _check_value(arch: str, key: str, value: Any, rule: Rule) -> None:
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
    elif rule.kind in ("list", "ints"):
        if not isinstance(value, list) or len(value) > 1000:
            raise FercliError(f"model '{arch}': {key} must be a JSON list (of at most 1000 entries)")
        if rule.kind == "ints":
            for item in value:
                _number(arch, key, item, rule, True)
    else:
        raise ValueError(f"unknown rule kind {rule.kind!r}")


def check_object(arch: str, config: Any, depth: int) -> None:
    """Refuse a config that is not a JSON object, or nests models deeper than :data:`MAX_NESTING`."""
    if not isinstance(config, dict):
        raise FercliError(f"model '{arch}' config must be a JSON object, not {_kind_of(config)}")
    if depth > MAX_NESTING:
        raise FercliError(f"model '{arch}' config nests backbones or streams more than {MAX_NESTING} deep")


def check_values(arch: str, config: dict, rules: dict[str, Rule]) -> None:
    """Refuse a value of ``config`` of the wrong type or out of its key's range, naming the key.

    ``config`` is checked as given: unknown keys are the registry's to refuse.
    """
    for key, value in config.items():
        rule = rules.get(key)
        if rule is not None:
            _check_value(arch, key, value, rule)


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


def check_state(model: Any, state: dict[str, np.ndarray], finite: bool = True, arch: Optional[str] = None) -> None:
    """Weight names, shapes and values of ``state`` against the built ``nn.Module`` ``model``.

    Refuses missing or unexpected weights, a weight of another shape or a
    non-numeric one, and (``finite``) nan or infinite values.
    """
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
