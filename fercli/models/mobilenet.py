"""MobileNetV2 and MobileNetV3 (Large, Small): the frame CNNs of chapter 4 (4.2.3).

Built from the project's one inverted-bottleneck / SE / h-swish implementation
(:mod:`fercli.models.blocks`). The block tables are those published by Sandler et
al. 2018 (V2, Table 2) and Howard et al. 2019 (V3, Tables 1-2), written out here:
``(kernel, expanded, out, SE, activation, stride)``. Width multiplier ``width_mult``
scales every width with the reference rounding (multiples of 8).

Head as the thesis's (4.2.3, 4.2.6): the last 1x1 conv of the reference (V2:
1280, V3-Large: 960, V3-Small: 576 channels), global average pooling, FC 128 +
ReLU (the feature used by cnn-gru's SF input), dropout, FC to the classes. The
reference V3's extra 1x1 "last point" conv (1280 / 1024) is left out: the thesis's
head is the FC 128 and its counts (Table 4.4) have no room for it; ``last_point``
puts it back (e.g. 1280) for experiments.

Which variant gives Table 4.4's counts (colour 96x96 input, K = 7 classes, FC 128):

    ==========================  ===========  ==========  =======  ======  ============
    model                       trainable    + BN stats  thesis   delta   FLOPs 96x96
    ==========================  ===========  ==========  =======  ======  ============
    mobilenet-v2                2,388,743    2,422,855   2.40M    -0.5 %  1.10e8
    mobilenet-v3-large          3,095,863    3,120,263   3.12M    -0.8 %  0.81e8
    cnn-gru(v3-large, probs,    3,149,374    3,173,774   3.17M    -0.7 %  5 x CNN
      GRU 128, fc 0)
    mobilenet-v3-small          1,001,767    1,013,879   -                0.21e8
    ==========================  ===========  ==========  =======  ======  ============

So the thesis's "MobileNetV3" is V3-**Large** (V3-Small is ~1 M; Large plus the
reference's 1280-wide last-point conv would be 4.3 M): the registry alias
``mobilenet-v3`` is V3-Large. "MobileNetV3 + GRU" (3.17 M) is that CNN plus a GRU
of 128 over the 7-class probability sequence and a softmax layer directly
(4.2.4.3: 3 x (7 x 128 + 128 x 128 + 2 x 128) + 128 x 7 + 7 = 53,511), i.e.
``cnn-gru`` with ``input: probs, fc: 0``. The thesis counted with Keras, whose summary's "Total params" also includes the
BatchNorm running statistics: on that count V3-Large is 3.12 M and V3 + GRU
3.17 M exactly, and V2 2.42 M (+0.95 %); the trainable counts, which
``fercli info`` reports, are all within 1 % below the table.
(Figures from ``python bench/model_counts.py``.)
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from fercli.errors import FercliError
from fercli.models.blocks import ConvBNAct, FrameClassifier, InvertedResidual, make_act, make_divisible
from fercli.models.checks import Dropout, InChannels, InputSize, OneOf, Units, Width
from fercli.models.registry import register

# (kernel, expanded width, out width, SE, activation, stride)
V2_SETTINGS = [  # (t, c, n, s) of Sandler et al. Table 2, unrolled
    (3, t, c, False, "relu6", s if i == 0 else 1)
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    for i in range(n)
]

V3_LARGE = [
    (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1), (5, 960, 160, True, "hswish", 1),
]

V3_SMALL = [
    (3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1), (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1), (5, 576, 96, True, "hswish", 1),
]

VARIANTS = {
    # name: (stem width, stem act, block table, last conv width, last act)
    "v2": (32, "relu6", V2_SETTINGS, 1280, "relu6"),
    "v3-large": (16, "hswish", V3_LARGE, 960, "hswish"),
    "v3-small": (16, "hswish", V3_SMALL, 576, "hswish"),
}


class MobileNet(FrameClassifier):
    """Stem conv s2 -> inverted residual blocks -> 1x1 conv -> GAP -> [last point] -> FC 128 -> dropout -> FC K."""

    def __init__(self, num_classes: int, variant: Annotated[str, OneOf(*VARIANTS)] = "v3-large", in_channels: InChannels = 3,
                 input_size: InputSize = 96, width_mult: Width = 1.0, fc: Units = 128, dropout: Dropout = 0.2, last_point: Units = 0):
        super().__init__()
        if variant not in VARIANTS:
            raise FercliError(f"MobileNet variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        if width_mult <= 0:
            raise FercliError(f"width_mult must be positive, not {width_mult}")
        self.in_channels, self.input_size, self.variant = in_channels, input_size, variant
        stem, stem_act, table, last, last_act = VARIANTS[variant]
        v2 = variant == "v2"
        c = make_divisible(stem * width_mult)
        layers: list[nn.Module] = [ConvBNAct(in_channels, c, 3, 2, act=stem_act)]
        for k, exp, out, se, act, s in table:
            # V2's table gives the expansion *ratio* t; V3's gives the expanded width.
            mid = c * exp if v2 else make_divisible(exp * width_mult)
            out_c = make_divisible(out * width_mult)
            squeeze = make_divisible(mid // 4) if se else 0
            layers.append(InvertedResidual(c, mid, out_c, k, s, act=act, se_squeeze=squeeze, se_act="relu", se_gate="hsigmoid"))
            c = out_c
        # V2 never shrinks its last conv below 1280 (reference); V3 scales it (6 x last width).
        last_c = make_divisible(last * max(1.0, width_mult)) if v2 else make_divisible(last * width_mult)
        layers.append(ConvBNAct(c, last_c, 1, act=last_act))
        self.body = nn.Sequential(*layers)
        d = last_c
        if last_point:
            self.last_point = nn.Sequential(nn.Linear(d, last_point), make_act(last_act))
            d = last_point
        else:
            self.last_point = None
        self.fc = nn.Sequential(nn.Linear(d, fc), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(fc, num_classes)
        self.feature_dim = fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x).mean((2, 3))
        if self.last_point is not None:
            f = self.last_point(f)
        return self.fc(f)


register("mobilenet-v2", MobileNet, fixed={"variant": "v2"}, doc="MobileNetV2 (Sandler et al. 2018) with the thesis's FC-128 head (chapter 4).")
register("mobilenet-v3-large", MobileNet, fixed={"variant": "v3-large"}, doc="MobileNetV3-Large (Howard et al. 2019) with the thesis's FC-128 head (chapter 4).")
register("mobilenet-v3", MobileNet, fixed={"variant": "v3-large"}, doc="MobileNetV3 as in the thesis = V3-Large (3.12 M parameters, Table 4.4).")
register("mobilenet-v3-small", MobileNet, fixed={"variant": "v3-small"}, doc="MobileNetV3-Small (Howard et al. 2019) with the thesis's FC-128 head (live system on CPU).")
