"""A restricted unpickler for CIFAR-10's python batches (thesis 5.3's dataset).

CIFAR-10 is published as Python pickles, and unpickling runs whatever callables
the file names: a batch downloaded from a mirror could call ``os.system``.
:class:`SafeUnpickler` resolves only the handful of globals a CIFAR batch
needs -- numpy's array reconstruction helpers, ``numpy.ndarray``,
``numpy.dtype`` and latin-1 ``_codecs.encode`` (how Python 3 writes ``bytes`` in
protocol-2 pickles) -- and refuses every other global *before* anything is
called, so a malicious pickle runs nothing.  Plain containers, strings, bytes
and numbers need no globals at all.

The allowed callables are also bounded: a 39-byte pickle can ask for
``bytearray(10**9)`` or a numpy array of any shape.  Every allocation they make
is charged against the pickle's own size (a CIFAR batch carries its pixels as
bytes inside the file, so nothing legitimate allocates more than twice that);
anything beyond is refused before it is allocated.
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


class TooLarge(pickle.UnpicklingError):
    """An allowed callable was asked to allocate more than the pickle's size allows."""


def _shape_bytes(shape: Any, dtype: Any) -> int:
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise pickle.UnpicklingError("an array shape that is not a tuple of sizes")
    count = 1
    for d in dims:
        count *= d
    return count * np.dtype(dtype).itemsize


class SafeUnpickler(pickle._Unpickler):
    """Unpickler that resolves only the globals CIFAR batches need, and charges
    every allocation their calls make against ``limit`` bytes in all.

    Python's own (pure-Python) unpickler, so the calls can be inspected before
    they run: REDUCE (``f(*args)``) and NEWOBJ (``cls.__new__(cls, *args)``).
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: Any, *, limit: int, **kwargs: Any):
        super().__init__(file, **kwargs)
        self.left = limit

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def _charge(self, func: Any, args: Any) -> None:
        """Refuse a call whose allocation would exceed what is left."""
        if not isinstance(args, tuple):
            raise pickle.UnpicklingError("call arguments that are not a tuple")
        if func is bytearray:
            if args and not isinstance(args[0], (bytes, bytearray, str)):
                raise pickle.UnpicklingError("bytearray() is only allowed from bytes or text")
            nbytes = len(args[0]) if args else 0
        elif func is np.ndarray or func is _multiarray._reconstruct:
            if func is _multiarray._reconstruct:
                if not args or args[0] is not np.ndarray:
                    raise pickle.UnpicklingError("_reconstruct() is only allowed for numpy.ndarray")
                args = args[1:]
            nbytes = _shape_bytes(args[0] if args else (), args[1] if len(args) > 1 else float)
        elif func is _numeric._frombuffer:
            nbytes = _shape_bytes(args[2], args[1]) if len(args) >= 3 else 0
        elif func is _multiarray.scalar:
            nbytes = np.dtype(args[0]).itemsize if args else 0
        else:  # dtypes, sets of what the pickle holds, latin-1 text: no more than the pickle's size
            nbytes = 0
        if nbytes > self.left:
            raise TooLarge(f"{nbytes} bytes")
        self.left -= nbytes

    def load_reduce(self) -> None:
        self._charge(self.stack[-2], self.stack[-1])
        super().load_reduce()

    def load_newobj(self) -> None:
        self._charge(self.stack[-2], self.stack[-1])
        super().load_newobj()

    def load_newobj_ex(self) -> None:
        self._charge(self.stack[-3], self.stack[-2])
        super().load_newobj_ex()

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex


def load_pickle(data: bytes, name: str) -> Any:
    """Unpickle ``data`` (the contents of file ``name``) safely; FercliError on anything wrong.

    ``encoding='bytes'`` reads the original Python 2 CIFAR files (their str
    keys become bytes, e.g. ``b'data'``) and Python 3 re-pickles alike.
    """
    try:
        return SafeUnpickler(io.BytesIO(data), limit=2 * len(data) + (1 << 20), encoding="bytes").load()
    except TooLarge as exc:
        raise FercliError(f"{name} is a {len(data)}-byte pickle that asks for {exc}: refused, a CIFAR batch "
                          "allocates no more than it carries") from None
    except RefusedGlobal as exc:
        raise FercliError(
            f"{name} is a pickle that asks to call {exc.qualname}: refused, nothing in it was run "
            "(a CIFAR batch holds only plain containers, bytes, numbers and numpy arrays)"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, UnicodeDecodeError, RecursionError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise FercliError(f"{name} is not a readable CIFAR python batch (truncated or corrupt pickle: {detail})") from None
