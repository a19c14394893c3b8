"""Which torch device a stage runs its model on (``--device auto|cpu|cuda``)."""

from __future__ import annotations

import os
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
