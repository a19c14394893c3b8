"""The plain static CNN of chapter 3 (thesis 3.2.3, Fig 3.2).

Three convolutional blocks of two 3x3 convs + 2x2 max-pool (64, 64, 128, 128,
256, 256 filters), ReLU after every conv, global average pooling, two fully
connected layers of 128 with dropout 0.7, then the classifier (softmax in the
loss). 64x64 input, gray (``in_channels`` 1) or colour (3).

The thesis (Keras, DTAN-like) does not mention batch normalisation; the
``batch_norm`` option (default on) adds a BN after every conv because the same
trunk is trained from scratch on tiny data sets (CK+, synth) and in short CPU
runs, where plain ReLU stacks with dropout 0.7 often fail to start learning.
``batch_norm: false`` gives the thesis's layers exactly.

Parameter counts (K classes, conv bias on when BN off; BN adds 2 per channel and
drops the conv bias):

    ============================  ===========  ==========  ===================
    variant                       trainable    FLOPs       input
    ============================  ===========  ==========  ===================
    gray, BN, K=7                 1,195,463    1.21e9      1x64x64
    colour, BN, K=7               1,196,615    1.22e9      3x64x64
    gray, no BN, K=7              1,194,567    1.21e9      1x64x64
    ============================  ===========  ==========  ===================

(FLOPs = 2 x multiply-accumulates, torch.utils.flop_counter; see docs/models.md.)
"""

from __future__ import annotations

import torch
from torch import nn

from fercli.models.blocks import FrameClassifier
from fercli.models.checks import Dropout, InChannels, InputSize, Switch, Units, Width
from fercli.models.registry import register

PLAIN_WIDTHS = (64, 128, 256)


def plain_widths(width: float = 1.0) -> tuple[int, ...]:
    """The trunk's filter counts scaled by ``width`` (1.0 = the thesis's 64/128/256).

    Narrower trunks exist for CPU smoke runs (``make demo``); results meant to
    be compared with the thesis use 1.0.
    """
    if width <= 0:
        from fercli.errors import FercliError

        raise FercliError(f"width must be positive, not {width}")
    return tuple(max(4, int(round(w * width))) for w in PLAIN_WIDTHS)


class PlainTrunk(nn.Module):
    """The 3 conv blocks + GAP, shared by the static CNN and the LBP-TOP stream (Fig 3.5).

    Input (B, C, H, W) -> (B, 256).
    """

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = PLAIN_WIDTHS, batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            for _ in range(2):
                layers.append(nn.Conv2d(c, w, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(w))
                layers.append(nn.ReLU(inplace=True))
                c = w
            layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.out_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))


class PlainCNN(FrameClassifier):
    """Static plain CNN: trunk -> FC 128 -> dropout -> FC 128 -> dropout -> classifier.

    ``features(x)`` is the second FC's 128-d ReLU output (the SF of Fig 3.3),
    ``classify(f)`` applies its dropout and the classifier.
    """

    def __init__(self, num_classes: int, in_channels: InChannels = 1, input_size: InputSize = 64, fc: Units = 128, dropout: Dropout = 0.7,
                 batch_norm: Switch = True, width: Width = 1.0):
        super().__init__()
        self.in_channels, self.input_size = in_channels, input_size
        self.trunk = PlainTrunk(in_channels, plain_widths(width), batch_norm)
        self.head = nn.Sequential(
            nn.Linear(self.trunk.out_dim, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc, fc), nn.ReLU(inplace=True),
        )
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(fc, num_classes)
        self.feature_dim = fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


register("plain-cnn", PlainCNN, doc="Plain 6-conv static CNN of chapter 3 (Fig 3.2), 64x64 input.")
