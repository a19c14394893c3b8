"""What every artifact module shares: the kinds and their schema versions, the string type of
HDF5 text datasets, how a path and an error are named in a sentence."""

from __future__ import annotations


import h5py


#: Current schema version of each kind.  Readers accept versions <= these.
SCHEMA = {"clips": 1, "model": 1, "report": 1, "pruning": 1}

STR = h5py.string_dtype("utf-8")


def display_name(path: str) -> str:
    return "standard input" if path == "-" else path


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
