"""A restricted unpickler for CIFAR-10's python batches (thesis 5.3's dataset).

CIFAR-10 is published as Python pickles, and unpickling runs whatever callables
the file names: a batch downloaded from a mirror could call ``os.system``.
:class:`SafeUnpickler` resolves only the handful of globals a CIFAR batch
needs -- numpy's array reconstruction helpers, ``numpy.ndarray``,
``numpy.dtype`` and latin-1 ``_codecs.encode`` (how Python 3 writes ``bytes`` in
protocol-2 pickles) -- and refuses every other global *before* anything is
called, so a malicious pickle runs nothing.  Plain containers, strings, bytes
and numbers need no globals at all.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Callable

import numpy as np

from fercli.errors import FercliError

try:  # numpy >= 2 keeps the implementation in numpy._core
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol-2 pickles made by Python 3 store bytes as _codecs.encode(text,
    # 'latin1'); no other codec is needed, so no other is reachable.
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin-1 text")
    return obj.encode("latin-1")


def _allowed() -> dict[tuple[str, str], Callable[..., Any]]:
    table: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("__builtin__", "bytearray"): bytearray,
        ("__builtin__", "set"): set,
        ("__builtin__", "frozenset"): frozenset,
    }
    # Every spelling numpy has used for these helpers (1.x 'core', 2.x '_core').
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        table[(f"{package}.multiarray", "scalar")] = _multiarray.scalar
        table[(f"{package}.numeric", "_frombuffer")] = _numeric._frombuffer
    if hasattr(np, "dtypes"):  # numpy >= 1.25 pickles dtypes as numpy.dtypes.UInt8DType etc.
        for name in dir(np.dtypes):
            obj = getattr(np.dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                table[("numpy.dtypes", name)] = obj
    return table


_ALLOWED = _allowed()


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals CIFAR batches need."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None


def load_pickle(data: bytes, name: str) -> Any:
    """Unpickle ``data`` (the contents of file ``name``) safely; FercliError on anything wrong.

    ``encoding='bytes'`` reads the original Python 2 CIFAR files (their str
    keys become bytes, e.g. ``b'data'``) and Python 3 re-pickles alike.
    """
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedGlobal as exc:
        raise FercliError(
            f"{name} is a pickle that asks to call {exc.qualname}: refused, nothing in it was run "
            "(a CIFAR batch holds only plain containers, bytes, numbers and numpy arrays)"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise FercliError(f"{name} is not a readable CIFAR python batch (truncated or corrupt pickle: {detail})") from None
