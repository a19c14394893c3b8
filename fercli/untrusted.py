"""Limits on what untrusted input may make fercli do (see docs/security.md).

Datasets come from the web and artifacts from other people's machines, so a
file's *declared* sizes are checked before anything is allocated, and a path
is checked to be what it claims to be before it is opened:

- :func:`memory_budget` / :func:`check_budget`: bytes one command may allocate
  for what an input declares (an HDF5 dataset's shape x item size, an option
  such as ``resample -n``).  Default: three quarters of the memory available
  when the command starts (``MemAvailable``, capped by a cgroup limit);
  ``FERCLI_MEMORY_BUDGET`` (bytes, or with K/M/G/T) overrides it.
- :func:`max_pixels` / :func:`check_image_header`: an image's width x height
  is read from its header and refused above 50 megapixels before it is
  decoded; ``FERCLI_MAX_PIXELS`` overrides the limit.
- :func:`regular_file` / :func:`input_path`: a FIFO, device or socket where a
  file is expected is refused at once (opening a FIFO blocks forever).
- :func:`one_line`: control characters from data or paths are escaped, so a
  message stays one line.

This module is the bottom layer: it imports nothing of fercli but the errors.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import stat
import threading
from typing import Iterator, Optional

from fercli.errors import FercliError

BUDGET_ENV = "FERCLI_MEMORY_BUDGET"
PIXELS_ENV = "FERCLI_MAX_PIXELS"
#: Default pixel limit of one image (width x height), checked from its header.
DEFAULT_MAX_PIXELS = 50_000_000
#: Share of the available memory one command may allocate for declared sizes.
BUDGET_SHARE = 0.75
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


# --------------------------------------------------------------------------- sizes


def parse_bytes(text: str, what: str) -> int:
    """'512M' -> 536870912; '1000' -> 1000 (K/M/G/T are powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise FercliError(f"{what} must be a size such as 2G, 512M or 1000000 (got '{text}')")
    value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value <= 0:
        raise FercliError(f"{what} must be positive (got '{text}')")
    return value


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def available_memory() -> int:
    """Bytes the kernel says can be allocated now, capped by this cgroup's limit."""
    available: Optional[int] = None
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
    try:  # cgroup v2: a container's limit is lower than the host's free memory
        with open("/sys/fs/cgroup/memory.max", "rb") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current", "rb") as fh:
            used = int(fh.read().strip())
        if limit != b"max":
            available = min(available, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return available


@functools.lru_cache(maxsize=None)
def _default_budget() -> int:
    return max(256 << 20, int(available_memory() * BUDGET_SHARE))


def memory_budget() -> int:
    """Bytes a command may allocate for what its inputs and options declare."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if text:
        return parse_bytes(text, BUDGET_ENV)
    return _default_budget()


def check_budget(nbytes: int, what: str) -> None:
    """Refuse ``what`` (a phrase: '... needs') if ``nbytes`` exceed the memory budget."""
    budget = memory_budget()
    if nbytes > budget:
        raise FercliError(f"{what} {human_bytes(nbytes)} of memory, more than the {human_bytes(budget)} budget "
                          f"(set {BUDGET_ENV} to allow more)")


# --------------------------------------------------------------------------- images


def max_pixels() -> int:
    text = os.environ.get(PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        raise FercliError(f"{PIXELS_ENV} must be a number of pixels (got '{text}')") from None
    if value <= 0:
        raise FercliError(f"{PIXELS_ENV} must be positive (got '{text}')")
    return value


def image_size(head: bytes) -> Optional[tuple[int, int]]:
    """(width, height) an image file declares in its header, or None if unknown.

    Read with Pillow, which parses only the header on open (PNG, JPEG, GIF, BMP,
    TIFF, WebP, ...); nothing is decoded.
    """
    import io
    import warnings

    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - a declared dependency (pyproject.toml)
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # we judge the size ourselves
            try:
                with Image.open(io.BytesIO(head)) as img:
                    return int(img.size[0]), int(img.size[1])
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except Exception:  # not an image Pillow knows: the decoder decides
        return None


def check_image_header(data: bytes, name: str) -> None:
    """Refuse an image whose header declares more pixels than :func:`max_pixels`."""
    size = image_size(data)
    if size is None:
        return
    w, h = size
    limit = max_pixels()
    if w * h > limit:
        raise FercliError(f"{name} declares {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), more than the "
                          f"{limit / 1e6:g}-megapixel limit (set {PIXELS_ENV} to allow larger images)")


def read_image_file(path: str) -> bytes:
    """The bytes of an image file, after :func:`regular_file`, the memory budget
    and :func:`check_image_header` -- what to hand a decoder."""
    regular_file(path, "an image file")
    try:
        check_budget(os.path.getsize(path), f"reading {one_line(path)} needs")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FercliError(f"cannot read {one_line(path)}: {exc.strerror or exc}") from None
    check_image_header(data, one_line(path))
    return data


# --------------------------------------------------------------------------- paths


def kind_of(mode: int) -> str:
    """'a FIFO (named pipe)', 'a character device', ... for a stat mode."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def regular_file(path: str, what: str = "a file") -> str:
    """``path`` if it is (a link to) a regular file; else one sentence.

    Checked with ``stat`` before anything opens it: opening a FIFO blocks until
    a writer appears, and a device can stream without end.
    """
    return input_path(path, what)


def input_path(path: str, what: str = "a file", folder_ok: bool = False) -> str:
    """A file (or, with ``folder_ok``, a folder) argument: no FIFO, device or socket."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FercliError(f"{one_line(path)} does not exist") from None
    except OSError as exc:
        raise FercliError(f"cannot read {one_line(path)}: {exc.strerror or exc}") from None
    if stat.S_ISREG(st.st_mode) or (folder_ok and stat.S_ISDIR(st.st_mode)):
        return path
    raise FercliError(f"{one_line(path)} is {kind_of(st.st_mode)}, not {what}")


def is_special(path: str) -> bool:
    """True for a FIFO, device or socket (what :func:`regular_file` refuses) -- for folder walks."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


# --------------------------------------------------------------------------- text

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a newline in a path stays on one line)."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"), str(text))


# --------------------------------------------------------------------------- native noise

_QUIET_LOCK = threading.Lock()
_QUIET = {"depth": 0, "saved": -1}


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """File descriptor 2 on /dev/null while C libraries run (libpng prints
    "libpng warning: ..." there whatever OpenCV's log level; a broken file then
    gets fercli's one sentence, not the decoder's lines).  Re-entrant and
    thread-safe: decoding threads share one redirection, undone by the last."""
    with _QUIET_LOCK:
        if _QUIET["depth"] == 0:
            try:
                _QUIET["saved"] = os.dup(2)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 2)
                os.close(null)
            except OSError:
                _QUIET["saved"] = -1
        _QUIET["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET["depth"] -= 1
            if _QUIET["depth"] == 0 and _QUIET["saved"] >= 0:
                os.dup2(_QUIET["saved"], 2)
                os.close(_QUIET["saved"])
                _QUIET["saved"] = -1
