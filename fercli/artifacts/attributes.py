"""JSON attributes: how fercli stores metadata, lineage and configurations."""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from fercli.errors import FercliError

def _as_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def read_json_attr(f: h5py.File | h5py.Group, name: str, default: Any = None) -> Any:
    raw = f.attrs.get(name)
    if raw is None:
        return default
    try:
        return json.loads(_as_str(raw))
    except json.JSONDecodeError as exc:
        raise FercliError(f"attribute '{name}' is not valid JSON: {exc}") from exc
    except RecursionError:
        raise FercliError(f"attribute '{name}' nests JSON too deeply to be read") from None


def write_json_attr(f: h5py.File | h5py.Group, name: str, value: Any) -> None:
    f.attrs[name] = json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
