"""LB-MBNet: the depthwise-LBC mobile inverted bottleneck network of chapter 5 (5.2.2, Table 5.1).

Layout (``channels`` = [32, 16, 64, 128, 256, 512] by default; R = 6 for
``depth`` 59, 3 for 32; depth = 5 + 9 R conv layers outside the SE blocks):

    stem     Conv3x3 32, BN, swish                         32x32  (not an LBC layer, never pruned)
    stack 0  LB-MBConv 32 -> 16, ratio 1 (expand conv kept)  32x32
    stack 1  LB-MBConv -> 64,  R blocks, ratio r, stride 2 in the first   32x32 -> 16x16
    stack 2  LB-MBConv -> 128, R blocks, ratio r, stride 2 in the first   16x16 -> 8x8
    stack 3  LB-MBConv -> 256, R blocks, ratio r, stride 2 in the first    8x8 -> 4x4
    top      Conv1x1 512, BN, swish, global average pooling, (dropout), FC -> K

LB-MBConv (Fig 5.2/5.3) is :class:`fercli.models.blocks.InvertedResidual` with the
depthwise conv swapped for :class:`fercli.models.lbc.DepthwiseLBC`: 1x1 expand to
``round(r * c_in)`` channels (+BN+swish), fixed ternary 3x3 depthwise LBC (+BN+swish),
squeeze-and-excitation on the LBC output -- one SE weight per LBC kernel -- with
squeeze width ``int(se_ratio * c_in)`` of the *block input* channels (EfficientNet),
sigmoid gate, linear 1x1 projection + BN, identity residual when the shapes allow.
The 18 (or 9) blocks of stacks 1-3 are the prunable ones (5.3.1: "18 sets of SE
optimization weights ... in the last 3 blocks"); ``expansion`` may be one ratio or
a list with one ratio per prunable block (what a rebuilt model after pruning
carries).

Conventions that reproduce Tables 5.2/5.3/5.5 (checked row by row in
``bench/model_counts.py``): expansion and SE width relative to the block's input
channels; bias-free convs with BN (2 trainable per channel) after the expand, the
LBC and the projection; SE FCs with bias; the stride in the first block's LBC;
the expand conv present in stack 0 even at ratio 1 (that is what makes 59 =
1 + 3 + 18 x 3 + 1 conv layers); FLOPs = 2 x MACs at 32x32 (Table 5.5's FLOPs for
48x48 FER2013 equal these 32x32 figures, so they were counted at 32x32 too).

Trainable parameters (K = 10, RGB) and FLOPs at 32x32, this code vs the thesis
(``python bench/model_counts.py`` prints every row of Tables 5.2/5.3/5.5):

    ==================  ============  ========  ======  =========  =======  ======
    model               trainable     thesis    delta   FLOPs      thesis   delta
    ==================  ============  ========  ======  =========  =======  ======
    LB-MBNet-59-r3         3,627,974   3.63M    -0.06%  2.301e8    2.33e8   -1.2%
    LB-MBNet-59-r6         7,109,558   7.11M    -0.01%  4.505e8    4.57e8   -1.4%
    LB-MBNet-59-r10       11,751,670  11.75M    +0.01%  7.444e8    7.57e8   -1.7%
    LB-MBNet-59-r20       23,356,950  23.36M    -0.01%  1.479e9    1.50e9   -1.4%
    LB-MBNet-59-r40       46,567,510  46.57M    -0.01%  2.949e9    3.00e9   -1.7%
    LB-MBNet-59-r80       92,988,630  92.99M    -0.00%  5.887e9    5.99e9   -1.7%
    LB-MBNet-59-r100     116,199,190  116.20M   -0.00%  7.357e9    7.49e9   -1.8%
    LB-MBNet-32-r3         1,669,430   1.67M    -0.03%  1.115e8    1.12e8   -0.5%
    LB-MBNet-32-r6         3,195,494   3.19M    +0.17%  2.132e8    2.16e8   -1.3%
    LB-MBNet-32-r80       40,838,406  40.84M    -0.00%  2.723e9    2.77e9   -1.7%
    ==================  ============  ========  ======  =========  =======  ======

Fixed (non-trainable) LBC kernel values are counted apart: 9 per LBC channel
(132,480 for 59-r6).

``depthwise: learned`` puts an ordinary learned 3x3 depthwise conv where every LBC
layer is -- 5.3.2's comparison of the LBC layer with the standard convolution:
the same network, its 9 x C kernel values trainable instead of fixed
(LB-MBNet-59-r6: 7,242,038 trainable, 0 fixed; FLOPs unchanged). The FLOP counter skips BN, activations, the SE's
multiplication and residual adds, hence the consistent 1-2 % shortfall.
"""

from __future__ import annotations

from typing import Annotated, Sequence

import torch
from torch import nn

from fercli.errors import FercliError
from fercli.models.blocks import ACTIVATIONS, ConvBNAct, FrameClassifier, InvertedResidual, learned_depthwise
from fercli.models.checks import Dropout, InChannels, InputSize, Int, Num, OneOf, Rule
from fercli.models.lbc import lbc_factory
from fercli.models.recipe import TrainingRecipe
from fercli.models.registry import register

DEFAULT_CHANNELS = (32, 16, 64, 128, 256, 512)
#: The depthwise layer of every block: the fixed LBC (the thesis's) or a learned conv (5.3.2's baseline).
DEPTHWISE = ("lbc", "learned")


def repeats_for_depth(depth: int) -> int:
    """Blocks per stack for a conv-layer depth: 59 -> 6, 32 -> 3 (depth = 5 + 9 R)."""
    if depth < 14 or (depth - 5) % 9:
        raise FercliError(f"LB-MBNet depth must be 5 + 9*R conv layers (59, 32, 23, 14), not {depth}")
    return (depth - 5) // 9


def block_widths(depth: int, expansion, channels: Sequence[int] = DEFAULT_CHANNELS) -> list[tuple[int, int, int, int]]:
    """(in, mid, out, stride) of every prunable block (stacks 1-3) for an expansion ratio or per-block list."""
    reps = repeats_for_depth(depth)
    n = 3 * reps
    ratios = list(expansion) if isinstance(expansion, (list, tuple)) else [expansion] * n
    if len(ratios) != n:
        raise FercliError(f"LB-MBNet-{depth} has {n} prunable blocks, but 'expansion' lists {len(ratios)} ratios")
    out, c_in, i = [], channels[1], 0
    for stack in range(3):
        c_out = channels[2 + stack]
        for rep in range(reps):
            r = float(ratios[i])
            mid = max(1, int(round(r * c_in)))
            if r <= 0:
                raise FercliError(f"expansion ratios must be positive, got {r}")
            out.append((c_in, mid, c_out, 2 if rep == 0 else 1))
            c_in, i = c_out, i + 1
    return out


class LBMBNet(FrameClassifier):
    """LB-MBNet-{depth}-r{expansion} (Table 5.1)."""

    def __init__(self, num_classes: int, depth: Annotated[int, Int(1, 1000)] = 59,
                 expansion: Annotated[float | list[float], Rule("ratio", above=0, max=100)] = 6,  # one ratio, or one per prunable block
                 in_channels: InChannels = 3, input_size: InputSize = 32,
                 lbc_sparsity: Annotated[float, Num(above=0, max=1)] = 0.5, lbc_seed: Annotated[int, Int(0, 2**63 - 1)] = 0,
                 se_ratio: Annotated[float, Num(above=0, max=1)] = 0.25, act: Annotated[str, OneOf(*ACTIVATIONS)] = "swish",
                 dropout: Dropout = 0.0, channels: Annotated[Sequence[int], Rule("ints", min=1, max=16384)] = DEFAULT_CHANNELS,
                 depthwise: Annotated[str, OneOf(*DEPTHWISE)] = "lbc"):
        super().__init__()
        if depthwise not in DEPTHWISE:
            raise FercliError(f"LB-MBNet depthwise must be one of {', '.join(DEPTHWISE)}, not {depthwise!r}")
        if len(channels) != 6:
            raise FercliError("LB-MBNet 'channels' lists 6 widths: stem, stack 0, stacks 1-3, top")
        if not 0 < lbc_sparsity <= 1:
            raise FercliError(f"lbc_sparsity is the fraction of non-zero LBC taps and must be in (0, 1], not {lbc_sparsity}")
        self.in_channels, self.input_size, self.depth = in_channels, input_size, depth

        def se_width(c_in: int) -> int:
            return max(1, int(c_in * se_ratio))

        def lb_block(index: int, c_in: int, mid: int, c_out: int, stride: int) -> InvertedResidual:
            return InvertedResidual(c_in, mid, c_out, 3, stride, act=act, se_squeeze=se_width(c_in), se_act=act, se_gate="sigmoid",
                                    dw_factory=lbc_factory(lbc_sparsity, lbc_seed, index) if depthwise == "lbc" else learned_depthwise,
                                    expand_when_equal=True)

        self.stem = ConvBNAct(in_channels, channels[0], 3, 1, act=act)
        self.stack0 = lb_block(0, channels[0], channels[0], channels[1], 1)
        widths = block_widths(depth, expansion, channels)
        self.blocks = nn.ModuleList(lb_block(i + 1, *w) for i, w in enumerate(widths))
        self.top = ConvBNAct(channels[4], channels[5], 1, act=act)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels[5], num_classes)
        self.feature_dim = channels[5]

    def prunable_blocks(self) -> list[tuple[str, InvertedResidual]]:
        """The LBC blocks chapter 5 prunes (stacks 1-3; never the stem or stack 0)."""
        return [(f"blocks.{i}", b) for i, b in enumerate(self.blocks)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stack0(self.stem(x))
        for b in self.blocks:
            x = b(x)
        return self.top(x).mean((2, 3))


#: 5.3.1: SGD lr 0.1, x0.1 at 40/70/90 % of the epochs (= 80, 140, 180 of 200), batches of 128,
#: 4-pixel shifts and flips, no rotation.
LB_MBNET_RECIPE = TrainingRecipe(optimizer="sgd", lr=0.1, schedule="step@0.4,0.7,0.9", epochs=200, batch_size=128, rotation=0.0, shift=4,
                                 source="5.3.1")

register("lb-mbnet", LBMBNet, recipe=LB_MBNET_RECIPE, doc="LB-MBNet: depthwise-LBC inverted bottlenecks with SE (chapter 5, Table 5.1).")
