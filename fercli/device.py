"""Which torch device a stage runs its model on (``--device auto|cpu|cuda``)."""

from __future__ import annotations

import sys
from typing import Optional

import torch

from fercli.errors import FercliError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, local_rank: Optional[int] = None) -> torch.device:
    """'auto' = CUDA when available, else the CPU; 'cuda' without a GPU is refused.

    ``local_rank`` picks a torchrun process's own GPU.
    """
    name = (name or "auto").lower()
    if name not in DEVICES:
        raise FercliError(f"--device must be auto, cpu or cuda (got '{name}')")
    if name == "cuda" and not torch.cuda.is_available():
        raise FercliError("--device cuda was asked for but no CUDA GPU is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank if local_rank is not None else torch.cuda.current_device())


def free_memory(device: torch.device) -> tuple[int, str]:
    """(bytes free on ``device`` now, what they are): a GPU's free memory
    (``torch.cuda.mem_get_info``), or the RAM the kernel says can be allocated
    (``MemAvailable`` of /proc/meminfo, capped by the cgroup's limit: :func:`fercli.untrusted.available_memory`)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), torch.cuda.get_device_name(device)
    from fercli.untrusted import available_memory

    return available_memory(), "available RAM"


def configure_cpu(threads: int, device: str = "auto") -> None:
    """Fix torch's CPU thread count, ask for deterministic kernels, keep freed memory.

    A float reduction split over another number of threads rounds differently, so a
    seeded CPU run repeats exactly only with the thread count fixed (the default 1;
    ``make -j`` then uses the cores for independent runs); 0 keeps torch's default
    (one thread per core: faster, machine-dependent).  Deterministic algorithms are
    asked for on the CPU only (``warn_only``: an op without a deterministic kernel
    warns instead of failing); CUDA runs keep cuDNN's fast nondeterministic kernels.
    """
    if threads < 0:
        raise FercliError(f"--threads must be 0 (torch's default) or a positive count, not {threads}")
    if threads:
        torch.set_num_threads(threads)
    if (device or "auto").lower() == "cpu" or not torch.cuda.is_available():
        _deterministic_kernels()
    _keep_freed_memory()


def _deterministic_kernels() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without importing the compiler.

    The public call also sets ``torch._inductor.config.deterministic``, and importing that
    config imports torch's compiler stack: 2 s of every train, evaluate and prune process on
    the loaded 2-core machine, in runs where nothing is compiled.  Only torch.compile reads
    that flag, so ``train --compile`` sets it when it compiles
    (:func:`fercli.train.compile.compile_deterministic`).
    """
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None or "torch._inductor.config" in sys.modules:  # another torch, or the compiler already loaded
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        set_flag(True, warn_only=True)


def _keep_freed_memory() -> None:
    """Stop glibc from handing every freed tensor buffer back to the OS.

    Above its (adaptive) mmap threshold glibc maps each large block afresh and unmaps
    it on free, and trims the heap top; a training step's tensors are then
    page-faulted in again at every step.  Measured on the chapter-3 fusion (2 epochs,
    2 cores): 3.7 M minor page faults and 11.0 s of system time by default, 0.2 M and
    0.9 s with both thresholds fixed high.  Only glibc has ``mallopt``; elsewhere this
    does nothing.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    mallopt(M_MMAP_MAX, 0)  # every block from the heap (a threshold is capped at 32 MB, below a batch's activations)
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
