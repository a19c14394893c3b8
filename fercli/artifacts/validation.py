"""Validation of an artifact before anything is read from it (untrusted files).

Each kind registers its layout check in :data:`LAYOUTS`."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import h5py
import numpy as np

from fercli import untrusted
from fercli.errors import FercliError
from fercli.artifacts.attributes import read_json_attr
from fercli.artifacts.base import _short

# --------------------------------------------------------------------------- validation
#
# An artifact from someone else's machine is untrusted: HDF5 can point a
# dataset at any file on this machine (external storage, external links,
# virtual datasets), loop links, or declare a dataset of terabytes that
# compresses to kilobytes.  :func:`validate` refuses all of that, and checks
# the layout of the artifact's kind (the readers below then only meet
# datasets of the right type and shape), before anything is allocated.

#: More objects than this in one artifact is not something fercli wrote.
MAX_OBJECTS = 100_000
#: Memory charged per element of a variable-length string dataset (the
#: pointer plus a small Python string; the text itself is bounded by the file).
STRING_ELEMENT_BYTES = 64


def _damaged(name: str, kind: str, why: str) -> FercliError:
    return FercliError(f"{name} is a damaged '{kind}' artifact: {why}")


def stored_datasets(f: h5py.File, name: str, kind: str) -> dict[str, h5py.Dataset]:
    """Every dataset of ``f`` by path, after refusing what is not stored inside the file.

    Soft and external links, external raw storage, virtual datasets, named
    datatypes and objects linked twice (hard-link loops) are refused: fercli
    writes none of them, and each can make a reader touch another file or loop.
    """
    datasets: dict[str, h5py.Dataset] = {}
    seen: set[int] = set()
    stack: list[tuple[str, h5py.Group]] = [("", f)]
    while stack:
        prefix, group = stack.pop()
        try:
            keys = list(group.keys())
        except (OSError, RuntimeError) as exc:
            raise _damaged(name, kind, f"group '/{prefix}' cannot be listed ({_short(exc)})") from None
        for key in keys:
            where = f"{prefix}/{key}" if prefix else key
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.SoftLink):
                raise FercliError(f"{name} holds a soft link '/{where}' -> '{link.path}': refused (fercli artifacts hold no links)")
            if isinstance(link, h5py.ExternalLink):
                raise FercliError(f"{name} holds an external link '/{where}' to {link.filename}: refused, an artifact may not read other files")
            if not isinstance(link, h5py.HardLink):
                raise FercliError(f"{name} holds a link '/{where}' of an unknown type: refused")
            try:
                obj = group[key]
                addr = h5py.h5o.get_info(obj.id).addr
            except (KeyError, OSError, RuntimeError, ValueError) as exc:
                raise _damaged(name, kind, f"'/{where}' cannot be opened ({_short(exc)})") from None
            if addr in seen:
                raise FercliError(f"{name} links one object twice ('/{where}'): refused (a loop or an alias)")
            seen.add(addr)
            if len(seen) > MAX_OBJECTS:
                raise FercliError(f"{name} holds more than {MAX_OBJECTS} objects: not a fercli artifact")
            if isinstance(obj, h5py.Group):
                stack.append((where, obj))
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    raise FercliError(f"{name}: dataset '/{where}' is a virtual dataset (data from other files): refused")
                if obj.id.get_create_plist().get_external_count():
                    raise FercliError(f"{name}: dataset '/{where}' keeps its data in external files: refused, an artifact may not read other files")
                datasets[where] = obj
            else:
                raise FercliError(f"{name} holds '/{where}', which is neither a group nor a dataset: refused")
    return datasets


def declared_bytes(ds: h5py.Dataset) -> int:
    """Memory reading ``ds`` whole takes, from its shape and type (compressed or not)."""
    size = int(np.prod(ds.shape, dtype=object)) if ds.shape else 1
    item = STRING_ELEMENT_BYTES if ds.dtype.kind == "O" else ds.dtype.itemsize
    return size * item


# Expected dataset types, as _check_dataset names them.
_KIND_TEST = {
    "uint8": lambda dt: dt == np.uint8,
    "int": lambda dt: dt.kind in "iu",
    "float": lambda dt: dt.kind == "f",
    "flag": lambda dt: dt.kind in "biu",
    "number": lambda dt: dt.kind in "biuf",
    "str": lambda dt: h5py.check_string_dtype(dt) is not None,
}


def _check_dataset(ds: Optional[h5py.Dataset], where: str, kind: str, name: str, art: str,
                   ndim: Sequence[int] | int, length: Optional[int] = None, required: bool = True) -> None:
    """One dataset of a layout: present (if required), its type, rank and first dimension."""
    if ds is None:
        if required:
            raise _damaged(name, art, f"the dataset '{where}' is missing")
        return
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if ds.ndim not in ndims:
        raise _damaged(name, art, f"'{where}' must have {' or '.join(map(str, ndims))} dimension(s), found shape {ds.shape}")
    if not _KIND_TEST[kind](ds.dtype):
        shown = "str" if ds.dtype.kind == "O" else str(ds.dtype)
        want = {"flag": "bool", "number": "numbers"}.get(kind, kind)
        raise _damaged(name, art, f"'{where}' must hold {want} values, found {shown}")
    if length is not None and ds.shape[0] != length:
        raise _damaged(name, art, f"'{where}' has {ds.shape[0]} entries where {length} are needed")


def _json(f: h5py.File | h5py.Group, attr: str, name: str, art: str, want: type, default: Any, required: bool = False,
          items: Optional[type] = None) -> Any:
    """A JSON attribute of the expected type (and item type for lists)."""
    if attr not in f.attrs:
        if required:
            raise _damaged(name, art, f"the attribute '{attr}' is missing")
        return default
    value = read_json_attr(f, attr, default)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise _damaged(name, art, f"'{attr}' must be a JSON {_JSON_NAMES[want]}, found {_JSON_NAMES.get(type(value), type(value).__name__)}")
    if items is not None:
        bad = next((v for v in value if not isinstance(v, items)), _MISSING)
        if bad is not _MISSING:
            raise _damaged(name, art, f"every entry of '{attr}' must be a JSON {_JSON_NAMES[items]}, found {_JSON_NAMES.get(type(bad), type(bad).__name__)}")
    return value


_MISSING = object()
_JSON_NAMES = {list: "list", dict: "object", str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def validate(f: h5py.File, kind: str, name: str, whole: bool = True) -> None:
    """Check an open artifact of ``kind`` before anything is read (see the section comment)."""
    datasets = stored_datasets(f, name, kind)
    total = sum(declared_bytes(ds) for path, ds in datasets.items() if whole or not _is_bulk(kind, path))
    untrusted.check_budget(total, f"reading {name} needs")
    _json(f, "fercli_lineage", name, kind, list, [], items=dict)
    _json(f, "fercli_meta", name, kind, dict, {})
    LAYOUTS[kind](f, datasets, name)


#: kind -> its layout check, run by :func:`validate` (each kind's module registers its own).
LAYOUTS: dict[str, Any] = {}

#: Arrays ``fercli info`` does not read (left out of its budget): kind -> path prefixes.
#: Each kind's module registers its own (clips: every per-frame field, histograms, code maps).
BULK: dict[str, tuple[str, ...]] = {"model": (), "report": (), "pruning": ()}


def _is_bulk(kind: str, path: str) -> bool:
    return any(path == b or (b.endswith("/") and path.startswith(b) and path != "planes/offsets") for b in BULK.get(kind, ()))
