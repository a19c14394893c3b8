"""Which torch device a stage runs its model on (``--device auto|cpu|cuda``)."""

from __future__ import annotations

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
