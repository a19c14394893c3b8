"""``train --compile``: torch.compile for the Engine's training step, and its failures in one sentence.

The Engine compiles only its training network (``Engine.net``); ``Engine.model`` stays the
plain module, so checkpoints keep the usual parameter names (no ``_orig_mod.`` prefix).
"""

from __future__ import annotations

import contextlib
import platform
from typing import Optional

import torch

from fercli.errors import FercliError, Interrupted


def check_compile(device: torch.device) -> None:
    """Fail before training, in one sentence, where torch.compile cannot work."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        raise FercliError(f"--compile: torch.compile does not support this Python ({platform.python_version()}); train without --compile")
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise FercliError("--compile on CUDA needs Triton (pip install triton); train without --compile")
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # another torch layout: the first compiled step reports any problem
        return
    try:
        get_cpp_compiler()
    except Exception:
        raise FercliError("--compile on the CPU needs a C++ compiler (install g++ or set CXX); train without --compile") from None



def compile_deterministic() -> None:
    """Give the compiler the deterministic-kernel setting of this process (fercli.device sets
    torch's without importing the compiler, so its own flag is set here, when it is loaded)."""
    import torch._inductor.config as inductor_config

    inductor_config.deterministic = torch.are_deterministic_algorithms_enabled()

@contextlib.contextmanager
def compile_errors(active: bool):
    """torch.compile fails at the first compiled forward or backward: one sentence, not its traceback."""
    try:
        yield
    except Exception as exc:
        import torch._dynamo.exc

        if not active or not isinstance(exc, torch._dynamo.exc.TorchDynamoException):
            raise
        cause: Optional[BaseException] = exc
        while cause is not None:  # a signal during compilation is a stop, not a compile failure
            if isinstance(cause, Interrupted):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FercliError(f"--compile: torch.compile failed on this model/machine ({first[:200]}); train without --compile") from exc
