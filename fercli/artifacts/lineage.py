"""Lineage: what an artifact records of the stages and inputs that made it."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from typing import Iterable, Sequence

import h5py

from fercli import __version__
from fercli.artifacts.attributes import _as_str, read_json_attr

def artifact_identity(f: h5py.File, path: str) -> dict:
    """What a lineage entry records about one input."""
    return {
        "path": "-" if path == "-" else os.path.abspath(path),
        "kind": _as_str(f.attrs.get("fercli_kind", "?")),
        "id": _as_str(f.attrs.get("fercli_id", "?")),
    }


def read_lineage(f: h5py.File) -> list[dict]:
    value = read_json_attr(f, "fercli_lineage", [])
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- lineage


def lineage_entry(stage: str, parameters: dict, inputs: Iterable[dict] = ()) -> dict:
    """One record of a stage touching the data (command, parameters, version, time, inputs)."""
    return {
        "stage": stage,
        "command": shlex.join(["fercli", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "",
        "parameters": parameters,
        "fercli_version": __version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "inputs": list(inputs),
    }


def combine_lineage(parents: Sequence[Sequence[dict]], entry: dict) -> list[dict]:
    """Lineage of an artifact made from several: every parent entry once, then ``entry``."""
    seen: set[str] = set()
    out: list[dict] = []
    for parent in parents:
        for item in parent:
            key = json.dumps(item, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(item)
    out.append(entry)
    return out
