"""Reusable building blocks shared by chapters 3-5 (one implementation each).

- :class:`HSigmoid`, :class:`HSwish` -- the piecewise-linear activations of
  MobileNetV3 (thesis 4.2.3; Howard et al. 2019): ``hsig(x) = relu6(x + 3) / 6``,
  ``hswish(x) = x * hsig(x)``.
- :class:`ConvBNAct` -- conv -> BatchNorm -> activation (bias-free conv, since the
  BN's shift makes a conv bias redundant).
- :class:`SqueezeExcite` -- squeeze-and-excitation (thesis 4.2.3 / 5.2.2, Fig 5.3).
  Its squeeze width is a fraction of the *block input* channels as in EfficientNet
  (``se_ratio * in_chs``) or of the gated channels as in MobileNetV3; it keeps the
  last gate values (``last_gate``, shape (B, C)) and calls optional observers so
  chapter 5's SE-weight pruning can collect statistics without touching forward.
- :class:`InvertedResidual` -- the MBConv / inverted bottleneck of MobileNetV2/V3
  and LB-MBNet: 1x1 expand -> depthwise kxk -> optional SE -> 1x1 project (linear),
  residual when stride 1 and in == out. The depthwise conv is *pluggable*
  (``dw_factory``), so the LB-MBConv of chapter 5 is this block with a depthwise
  local binary convolution in place of the learned depthwise conv.

Parameter counts (bias-free convs, BN = 2 trainable per channel):
    ConvBNAct(cin, cout, k)           cin*cout*k*k + 2*cout
    SqueezeExcite(C, squeeze s)       (C*s + s) + (s*C + C)       (FCs with bias)
    InvertedResidual(cin, e, cout)    cin*e + 2e  +  dw(e)  +  SE  +  e*cout + 2*cout
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from fercli.models.base import DataLayout, FercliModel


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10 %
    (the rule of the MobileNet reference implementations, so counts match them)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class HSigmoid(nn.Module):
    """Hard sigmoid ``relu6(x + 3) / 6`` (MobileNetV3's cheap gate)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardsigmoid(x)


class HSwish(nn.Module):
    """Hard swish ``x * relu6(x + 3) / 6`` (MobileNetV3, thesis Eq. 4.x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


_ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hswish": HSwish,
    "swish": nn.SiLU,
    "hsigmoid": HSigmoid,
    "sigmoid": nn.Sigmoid,
    "none": nn.Identity,
}
#: Activation names a config may give (``act``).
ACTIVATIONS = tuple(_ACTS)


def make_act(name: str | None) -> nn.Module:
    """Activation by name: relu, relu6, hswish, swish, hsigmoid, sigmoid, none."""
    name = name or "none"
    if name not in _ACTS:
        raise ValueError(f"unknown activation {name!r}")
    return _ACTS[name]()


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation, 'same' padding for odd k."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, groups: int = 1, act: str | None = "relu"):
        super().__init__(
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_chs),
            make_act(act),
        )
        self.out_chs = out_chs


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: GAP -> FC(C->s) -> act -> FC(s->C) -> gate -> x * gate.

    ``channels`` is the number of gated channels (the depthwise output), ``squeeze``
    the bottleneck width, computed by the caller (EfficientNet: ``se_ratio * block
    input channels``; MobileNetV3: ``make_divisible(channels / 4)``). The FCs are 1x1
    convs with bias, as in both reference implementations.

    The most recent gate values, detached, are kept in ``last_gate`` (B, C) when
    ``keep_gate`` is true, and every callable in ``observers`` is called with the
    gate (B, C) -- chapter 5 collects per-kernel SE statistics through this.
    ``channel_mask`` (None, or a (C,) 0/1 tensor; an analysis tool, not saved)
    zeroes masked channels both where the SE squeezes them and in its output (their
    gate is forced to 0): exactly what removing those channels from the block does,
    which is how chapter 5's rebuild equivalence is checked.
    """

    def __init__(self, channels: int, squeeze: int, act: str = "relu", gate: str = "sigmoid"):
        super().__init__()
        if gate not in ("sigmoid", "hsigmoid"):
            raise ValueError(f"SE gate must be sigmoid or hsigmoid, not {gate!r}")
        self.channels = channels
        self.squeeze = squeeze
        self.fc1 = nn.Conv2d(channels, squeeze, 1, bias=True)
        self.act = make_act(act)
        self.fc2 = nn.Conv2d(squeeze, channels, 1, bias=True)
        self.gate = make_act(gate)
        self.keep_gate = False
        self.last_gate: Optional[torch.Tensor] = None
        self.observers: list[Callable[[torch.Tensor], None]] = []
        self.channel_mask: Optional[torch.Tensor] = None  # set by pruning analysis only; not saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_mask is not None:
            x = x * self.channel_mask.view(1, -1, 1, 1).to(x.dtype)
        s = x.mean((2, 3), keepdim=True)
        g = self.gate(self.fc2(self.act(self.fc1(s))))
        if self.channel_mask is not None:
            g = g * self.channel_mask.view(1, -1, 1, 1).to(g.dtype)
        if self.keep_gate or self.observers:
            flat = g.detach().flatten(1)
            if self.keep_gate:
                self.last_gate = flat
            for fn in self.observers:
                fn(flat)
        return x * g


DWFactory = Callable[[int, int, int], nn.Module]  # (channels, kernel_size, stride) -> module


def learned_depthwise(channels: int, kernel_size: int, stride: int) -> nn.Module:
    """The ordinary learned depthwise conv (MobileNets)."""
    return nn.Conv2d(channels, channels, kernel_size, stride, (kernel_size - 1) // 2, groups=channels, bias=False)


class InvertedResidual(nn.Module):
    """MBConv / inverted bottleneck (MobileNetV2 Sandler 2018; V3; LB-MBConv, Fig 5.2).

    ``mid_chs`` channels after the 1x1 expansion (skipped when ``mid_chs == in_chs``
    and ``expand_when_equal`` is false, as in MobileNetV2's first block and V3's
    expansion-1 blocks), depthwise ``kernel_size`` conv made by ``dw_factory``
    followed by BN + act, optional SE on the depthwise output (``se_squeeze`` > 0),
    linear 1x1 projection + BN, identity residual when stride == 1 and
    in_chs == out_chs.
    """

    def __init__(
        self,
        in_chs: int,
        mid_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: str = "relu6",
        se_squeeze: int = 0,
        se_act: str = "relu",
        se_gate: str = "sigmoid",
        dw_factory: DWFactory = learned_depthwise,
        expand_when_equal: bool = False,
        residual: bool = True,
    ):
        super().__init__()
        self.in_chs, self.mid_chs, self.out_chs, self.stride = in_chs, mid_chs, out_chs, stride
        if mid_chs != in_chs or expand_when_equal:
            self.expand = ConvBNAct(in_chs, mid_chs, 1, act=act)
        else:
            self.expand = nn.Identity()
        self.dw = dw_factory(mid_chs, kernel_size, stride)
        self.dw_bn = nn.BatchNorm2d(mid_chs)
        self.dw_act = make_act(act)
        self.se = SqueezeExcite(mid_chs, se_squeeze, act=se_act, gate=se_gate) if se_squeeze > 0 else None
        self.project = nn.Conv2d(mid_chs, out_chs, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_chs)
        self.use_residual = residual and stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        y = self.dw_act(self.dw_bn(self.dw(y)))
        if self.se is not None:
            y = self.se(y)
        y = self.project_bn(self.project(y))
        return x + y if self.use_residual else y


class FrameClassifier(FercliModel):
    """Base of every frame backbone: ``features(x)`` -> (B, D), then the classifier.

    Subclasses set ``in_channels``, ``input_size``, ``feature_dim``, ``drop`` and
    ``classifier`` and define ``features``; sequence models and the fusion
    network reuse ``features``/``classify`` (:class:`~fercli.models.base.FercliModel`).
    """

    inputs = ("image",)

    @classmethod
    def config_from_data(cls, config: dict, data: DataLayout) -> dict:
        """Channels (gray 1 / colour 3) and input size from the data unless given."""
        out = dict(config)
        out.setdefault("in_channels", data.channels)
        out.setdefault("input_size", data.frame_size)
        return out

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(f))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(image))

    def dummy_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, self.in_channels, self.input_size, self.input_size),)

