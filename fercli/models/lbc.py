"""Depthwise local binary convolution (thesis 5.2.1, Fig 5.1 d/e; LBCNN, Juefei-Xu et al. 2017).

A 3x3 depthwise convolution whose kernels are fixed, sparse and ternary
{-1, 0, +1}. Each kernel starts as zeros; then exactly ``n = floor(sparsity * 9)``
of its 9 positions (at least one), drawn *without replacement*, are set to +1
or -1 with equal probability. ``sparsity`` is LBCNN's term for the fraction of
*non-zero* weights; the thesis uses "50 % sparse" kernels (5.3.3), so the
default 0.5 gives 4 non-zeros per 3x3 kernel (LBCNN also floors
``numElements * sparsity``).

The kernels are registered as a *buffer* (``weight``), never a parameter: no
optimiser can touch them and they count as fixed, not trainable, parameters.
They are drawn from a numpy generator seeded with ``(seed, index)`` -- the model
config stores the seed and every LBC layer knows its index -- so a model
artifact rebuilds identical kernels from its config alone; they are also saved in
the state dict, so a pruned-and-rebuilt model carries the *selected* kernels.

Cost: 0 trainable parameters; 9 x C fixed values; FLOPs like a depthwise conv
(2 x 9 x C x H_out x W_out -- the zeros are still multiplied, as in the thesis).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def lbc_kernels(channels: int, sparsity: float = 0.5, seed: int = 0, index: int = 0, kernel_size: int = 3) -> np.ndarray:
    """(channels, 1, k, k) float32 ternary kernels with exactly floor(sparsity*k*k) non-zeros each."""
    if not 0.0 < sparsity <= 1.0:
        raise ValueError("LBC sparsity must be in (0, 1]")
    taps = kernel_size * kernel_size
    nonzero = max(1, int(np.floor(sparsity * taps + 1e-9)))
    rng = np.random.default_rng([int(seed), int(index)])
    # Per kernel, the first `nonzero` entries of a random permutation of the taps:
    # positions drawn without replacement, exactly `nonzero` of them.
    pos = np.argsort(rng.random((channels, taps)), axis=1)[:, :nonzero]
    signs = np.where(rng.random((channels, nonzero)) < 0.5, -1.0, 1.0).astype(np.float32)
    out = np.zeros((channels, taps), dtype=np.float32)
    np.put_along_axis(out, pos, signs, axis=1)
    return out.reshape(channels, 1, kernel_size, kernel_size)


class DepthwiseLBC(nn.Module):
    """Fixed ternary 3x3 depthwise conv (no bias); kernels in the ``weight`` buffer."""

    def __init__(self, channels: int, kernel_size: int = 3, stride: int = 1, sparsity: float = 0.5, seed: int = 0, index: int = 0):
        super().__init__()
        self.channels, self.kernel_size, self.stride = channels, kernel_size, stride
        self.sparsity, self.seed, self.index = sparsity, seed, index
        self.register_buffer("weight", torch.from_numpy(lbc_kernels(channels, sparsity, seed, index, kernel_size)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), None, self.stride, (self.kernel_size - 1) // 2, 1, self.channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, k={self.kernel_size}, stride={self.stride}, sparsity={self.sparsity}, seed={self.seed}, index={self.index}"


def lbc_factory(sparsity: float, seed: int, index: int):
    """A ``dw_factory`` for :class:`fercli.models.blocks.InvertedResidual` making a DepthwiseLBC."""

    def make(channels: int, kernel_size: int, stride: int) -> DepthwiseLBC:
        return DepthwiseLBC(channels, kernel_size, stride, sparsity, seed, index)

    return make
