"""fercli.device.configure_cpu: deterministic CPU kernels without loading torch's compiler."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

PROBE = """
import sys, torch
from fercli.device import configure_cpu
configure_cpu(1, "cpu")
print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
      "torch._inductor.config" in sys.modules)
from fercli.train.compile import compile_deterministic
compile_deterministic()
import torch._inductor.config as c
print(c.deterministic)
"""


def test_configure_cpu_asks_for_deterministic_kernels_without_importing_the_compiler():
    """torch.use_deterministic_algorithms imports torch._inductor (2 s per process under load);
    the flag is set without it, and the compile path gives the compiler the same setting."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "False", "True"], out.stdout
