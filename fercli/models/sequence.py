"""Sequence models of chapters 3 and 4: CNN-GRU (Fig 3.3, 4.2.4.3) and the LBP-TOP stream (Fig 3.5).

``cnn-gru`` applies a frame backbone (any registered frame model: plain-cnn,
mobilenet-*, lb-mbnet) to every frame of a clip -- fine-tuned, not frozen -- and
feeds the per-frame vectors to a recurrent layer:

- ``input: features`` -- the backbone's 128-d feature (SF, static feature sequence);
- ``input: probs``    -- the softmax of the backbone's logits (PD, probability
  distribution sequence; chapter 4's live system uses this);
- ``rnn``: ``gru`` (128 hidden), ``lstm`` (Table 4.2), or ``max`` (temporal max
  pooling, Table 3.5's pooling variant: no recurrent parameters);
- then ``fc_layers`` (2) fully connected layers of ``fc`` (128) units, each with
  ReLU and dropout 0.7, and the classifier (3.2.3: "2 fully connected layers with
  128 nodes and a dropout layer with a 0.7 rate for each part"); with ``fc: 0``
  (or ``fc_layers: 0``) the classifier sits directly on the GRU state with no
  dropout (chapter 4, 4.2.4.3: "a single GRU layer with 128 hidden states and a
  softmax layer").

For the live system the two halves run separately: ``frame_vectors(images)``
(B, D) per frame as it arrives, and ``sequence_logits(seq)`` (B, T, D) -> (B, K)
once per window; ``frame_probs`` is the backbone's softmax.

``lbptop-gru`` (3.2.4): for one LBP-TOP plane (``plane: xt | yt``) the same
3-block CNN as the static network on each of the M = 8 code maps, a Bi-GRU of 128
with the two directions' final states *summed* (Keras ``merge_mode='sum'``),
one FC 128 (``fc_layers: 1``), dropout 0.7, classifier. Trained from scratch. Its input name follows the
plane, so the registry resolves its inputs from the config.

Parameter counts (K = 7, gray 64x64, BN on; T = 10 frames / M = 8 maps of 62x62):

    =====================================  ===========  ========
    model                                  trainable    FLOPs
    =====================================  ===========  ========
    cnn-gru  input=features rnn=gru fc=128x2 1,328,462   1.21e10
    cnn-gru  input=probs    rnn=gru fc=128x2 1,281,998   1.21e10
    cnn-gru  input=features rnn=max fc=128x2 1,229,390   1.21e10
    lbptop-gru plane=xt     rnn=gru fc=128   1,459,015   8.89e9
    =====================================  ===========  ========

(``python bench/model_counts.py``; the per-frame CNN dominates the FLOPs.)
"""

from __future__ import annotations

from typing import Annotated, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from fercli.errors import FercliError
from fercli.models.base import DataLayout, FercliModel, SequenceHalves
from fercli.models.checks import FCLayers, Dropout, Hidden, InputSize, Int, JSONObject, OneOf, Switch, Text, Units, Width
from fercli.models.plain import PlainTrunk, plain_widths
from fercli.models.registry import build, get_spec, register

RNNS = ("gru", "lstm", "max")
#: Time steps (frames of a clip, LBP-TOP code maps per clip): far beyond any data set's.
Steps = Annotated[int, Int(1, 10000)]


class TemporalHead(nn.Module):
    """Sequence (B, T, D) -> clip feature: GRU/LSTM last state or max over time
    (optionally bidirectional with summed directions), then ``fc_layers`` x
    (FC ``fc`` + ReLU), dropout between them; ``drop`` is the dropout the owner
    applies before its classifier (none without FC layers)."""

    def __init__(self, in_dim: int, rnn: str = "gru", hidden: int = 128, bidirectional: bool = False, fc: int = 128,
                 fc_layers: int = 1, dropout: float = 0.7):
        super().__init__()
        if rnn not in RNNS:
            raise FercliError(f"rnn must be one of {', '.join(RNNS)}, not {rnn!r}")
        if fc_layers < 0:
            raise FercliError(f"fc_layers must be 0 or more, not {fc_layers}")
        self.rnn_kind = rnn
        if rnn == "max":
            self.rnn = None
            out = in_dim
        else:
            cls = nn.GRU if rnn == "gru" else nn.LSTM
            self.rnn = cls(in_dim, hidden, batch_first=True, bidirectional=bidirectional)
            out = hidden
        layers: list[nn.Module] = []
        for i in range(fc_layers if fc > 0 else 0):
            if i:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(out, fc), nn.ReLU(inplace=True)]
            out = fc
        self.fc = nn.Sequential(*layers) if layers else None
        self.out_dim = out
        self.drop = nn.Dropout(dropout) if layers else nn.Identity()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        if self.rnn is None:
            h = seq.amax(dim=1)
        else:
            _, state = self.rnn(seq)
            h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
            h = h_n.sum(0)  # (directions, B, H): sum merges a Bi-GRU's two directions
        return self.fc(h) if self.fc is not None else h


class CNNGRU(SequenceHalves):
    """Frame backbone per frame -> SF or PD sequence -> GRU/LSTM/max -> FC layers -> classifier."""

    inputs = ("clip",)
    legacy_config = {"fc_layers": 1}  # before 3.2.3's second FC 128 was added

    def __init__(self, num_classes: int, backbone: Text = "plain-cnn", backbone_config: JSONObject = None,
                 input: Annotated[str, OneOf("features", "probs")] = "features", rnn: Annotated[str, OneOf(*RNNS)] = "gru", hidden: Hidden = 128,
                 fc: Units = 128, fc_layers: FCLayers = 2, dropout: Dropout = 0.7, frames: Steps = 10):
        super().__init__()
        if input not in ("features", "probs"):
            raise FercliError(f"input must be 'features' or 'probs', not {input!r}")
        self.backbone, _ = build(backbone, num_classes, backbone_config)
        if not isinstance(self.backbone, FercliModel) or tuple(self.backbone.inputs) != ("image",):
            raise FercliError(f"'{backbone}' is not a frame model (it takes {', '.join(self.backbone.inputs)}), so it cannot be a cnn-gru backbone")
        self.input_kind = input
        self.frames = frames
        in_dim = self.backbone.feature_dim if input == "features" else num_classes
        self.frame_dim = in_dim
        self.temporal = TemporalHead(in_dim, rnn, hidden, False, fc, fc_layers, dropout)
        self.classifier = nn.Linear(self.temporal.out_dim, num_classes)
        self.feature_dim = self.temporal.out_dim

    # -- the config a training run derives ------------------------------------------
    @classmethod
    def config_from_sources(cls, arch: str, config: dict, init: Optional[tuple[str, dict]], streams: list[tuple[str, dict]]) -> dict:
        """Chapter 4: a frame CNN given to ``--init-from`` becomes the frame backbone (its arch and config)."""
        config = super().config_from_sources(arch, config, init, streams)
        if init is not None and "backbone" not in config and get_spec(init[0]).inputs == ("image",):
            config = {**config, "backbone": init[0]}
            config.setdefault("backbone_config", dict(init[1]))
        return config

    @classmethod
    def config_from_data(cls, config: dict, data: DataLayout) -> dict:
        """The backbone's keys from the data (as it derives them), and the clip length."""
        out = dict(config)
        backbone = get_spec(out.get("backbone", cls.config_default("backbone")))
        out["backbone_config"] = backbone.cls.config_from_data(dict(out.get("backbone_config") or {}), data)
        if data.clip_length:
            out.setdefault("frames", data.clip_length)
        return out

    @classmethod
    def nested_configs(cls, arch: str, config: dict, defaults: dict) -> Iterator[tuple[str, dict]]:
        if "backbone" in config or "backbone_config" in config:
            backbone = config.get("backbone", defaults.get("backbone"))
            if isinstance(backbone, str):
                yield backbone, config.get("backbone_config") or {}

    # -- the two halves, for the live system and export ----------------------------
    def frame_model(self) -> FercliModel:
        return self.backbone

    def frame_probs(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, K) softmax of the backbone."""
        return F.softmax(self.backbone(images), dim=1)

    def frame_vectors_and_probs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One backbone pass: (what the recurrent part consumes, the backbone's softmax)."""
        f = self.backbone.features(images)
        probs = F.softmax(self.backbone.classify(f), dim=1)
        return (f if self.input_kind == "features" else probs), probs

    def frame_vectors(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D): what the recurrent part consumes per frame."""
        return self.backbone.features(images) if self.input_kind == "features" else self.frame_probs(images)

    def sequence_features(self, seq: torch.Tensor) -> torch.Tensor:
        return self.temporal(seq)

    def sequence_logits(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, T, D) per-frame vectors -> (B, K) logits."""
        return self.classify(self.temporal(seq))

    # -- whole-clip interface ------------------------------------------------------
    def _per_frame(self, clip: torch.Tensor) -> torch.Tensor:
        b, t = clip.shape[:2]
        return self.frame_vectors(clip.flatten(0, 1)).view(b, t, -1)

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.sequence_features(self._per_frame(clip))

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.temporal.drop(f))

    def dummy_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        (frame,) = self.backbone.dummy_inputs(batch)
        return (frame.unsqueeze(1).expand(-1, self.frames, -1, -1, -1).contiguous(),)


register("cnn-gru", CNNGRU, doc="CNN-GRU: a frame backbone per frame, SF or PD sequence into GRU/LSTM/max pooling (Fig 3.3, 4.2.4.3).")


class LBPTOPGRU(FercliModel):
    """LBP-TOP stream (Fig 3.5): 3-block CNN per code map -> Bi-GRU (summed) -> FC 128 -> classifier."""

    def __init__(self, num_classes: int, plane: Annotated[str, OneOf("xt", "yt", "xy")] = "xt", rnn: Annotated[str, OneOf("gru", "max")] = "gru",
                 hidden: Hidden = 128, fc: Units = 128, fc_layers: FCLayers = 1, dropout: Dropout = 0.7, maps: Steps = 8,
                 input_size: InputSize = 62, batch_norm: Switch = True, width: Width = 1.0):
        super().__init__()
        if plane not in ("xt", "yt", "xy"):
            raise FercliError(f"plane must be xt, yt or xy, not {plane!r}")
        self.inputs = (plane,)
        self.maps, self.input_size = maps, input_size
        self.trunk = PlainTrunk(1, plain_widths(width), batch_norm)
        self.temporal = TemporalHead(self.trunk.out_dim, rnn, hidden, True, fc, fc_layers, dropout)
        self.classifier = nn.Linear(self.temporal.out_dim, num_classes)
        self.feature_dim = self.temporal.out_dim

    @classmethod
    def input_names(cls, config: dict) -> tuple[str, ...]:
        return (config["plane"],)

    @classmethod
    def config_from_data(cls, config: dict, data: DataLayout) -> dict:
        """Code maps per clip and their size from the data's maps of this plane, unless given."""
        out = dict(config)
        layout = data.planes.get(out.get("plane", cls.config_default("plane")))
        if layout is not None:
            out.setdefault("maps", layout[0])
            out.setdefault("input_size", layout[1])
        return out

    def features(self, maps: torch.Tensor) -> torch.Tensor:
        b, m = maps.shape[:2]
        per_map = self.trunk(maps.flatten(0, 1)).view(b, m, -1)
        return self.temporal(per_map)

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.temporal.drop(f))

    def dummy_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, self.maps, 1, self.input_size, self.input_size),)


register("lbptop-gru", LBPTOPGRU, doc="LBP-TOP stream: plain CNN per XT/YT code map + Bi-GRU with summed directions (Fig 3.5).")
