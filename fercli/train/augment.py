"""On-device data augmentation of a training batch (thesis 3.2.2, 5.3.1).

3.2.2: random rotation and horizontal flip, the SAME parameters for every frame
of a clip (a clip batch (B, T, C, H, W) is sampled as (B, T*C, H, W), so one
sampling grid moves all of its frames together).  5.3.1: width/height shifts of
up to 4 pixels and horizontal flips.  Only training batches are augmented.

Rotation, flip and shift are one affine map per sample, applied with
``affine_grid`` + ``grid_sample`` on the device that holds the batch.  Shifts
are whole pixels: with ``align_corners=False`` and no rotation, the sampling
points fall exactly on pixel centres, so a shift (and a flip) is an exact
pixel move with zero fill (the pad-and-crop of CIFAR training).

LBP-TOP code maps (``xt``/``yt``/``xy`` inputs) are never augmented: a code is
the bit pattern of a pixel's neighbours in a fixed order, so interpolating codes
(rotation) produces codes no pixel has, and a horizontal flip reverses the
neighbour order -- the flipped map is not the LBP-TOP of the flipped clip unless
every code is also bit-permuted.  Rather than approximate that, planes pass
through untouched.

The random parameters are drawn on the CPU from the engine's per-epoch
generator for the GLOBAL batch, so a run is repeatable, a resumed run draws the
same parameters, and DDP ranks (which take slices of the global batch) apply
exactly what a single process would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch
import torch.nn.functional as F

from fercli.models.recipe import TrainingRecipe


@dataclass
class AugmentConfig:
    """What augments training batches; ``None`` = the architecture's recipe
    (:meth:`with_recipe`, done by :func:`fercli.train.resolve_options`)."""

    rotation: Optional[float] = None  # degrees, uniform in [-rotation, rotation]
    flip: Optional[bool] = None  # horizontal flip with probability 1/2
    shift: Optional[int] = None  # whole pixels, uniform in [-shift, shift] on each axis

    def with_recipe(self, recipe: TrainingRecipe) -> "AugmentConfig":
        """Every field left ``None`` taken from ``recipe``."""
        return replace(self, **{k: getattr(recipe, k) for k in ("rotation", "flip", "shift") if getattr(self, k) is None})

    @property
    def active(self) -> bool:
        if None in (self.rotation, self.flip, self.shift):
            raise ValueError("AugmentConfig has fields left to the recipe: resolve it first (AugmentConfig.with_recipe)")
        return self.rotation > 0 or self.flip or self.shift > 0


def draw(n: int, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """(n, 4) parameters: angle (rad), flip sign (+1/-1), dx, dy (pixels)."""
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    angle = (u[:, 0] * 2 - 1) * math.radians(cfg.rotation)
    flip = torch.where(u[:, 1] < 0.5, -1.0, 1.0).double() if cfg.flip else torch.ones(n, dtype=torch.float64)
    if cfg.shift > 0:
        shifts = torch.randint(-cfg.shift, cfg.shift + 1, (n, 2), generator=generator).double()
    else:
        shifts = torch.zeros(n, 2, dtype=torch.float64)
    return torch.stack([angle, flip, shifts[:, 0], shifts[:, 1]], dim=1)


def apply(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Augment a float batch (B, C, H, W) or (B, T, C, H, W) with ``params`` (B, 4)."""
    shape = x.shape
    if x.ndim == 5:
        x = x.reshape(shape[0], shape[1] * shape[2], shape[3], shape[4])
    b, _, h, w = x.shape
    p = params.to(device=x.device, dtype=torch.float32)
    cos, sin = torch.cos(p[:, 0]), torch.sin(p[:, 0])
    flip = p[:, 1]
    # Output pixel (u, v) samples input (flip * (cos u - sin v) + tx, sin u + cos v + ty),
    # coordinates normalised to [-1, 1]; a shift of d pixels is 2 d / size there.
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=torch.float32)
    theta[:, 0, 0] = flip * cos
    theta[:, 0, 1] = -flip * sin
    theta[:, 1, 0] = sin
    theta[:, 1, 1] = cos
    theta[:, 0, 2] = -2.0 * p[:, 2] / w
    theta[:, 1, 2] = -2.0 * p[:, 3] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(shape)
