"""Multi-stream fusion network of chapter 3 (thesis 3.2.5).

The four trained streams -- CNN-GRU on the static-feature sequence (F1), CNN-GRU
on the probability-distribution sequence (F2), LBP-TOP XT (F3) and YT (F4) --
each give a 128-d feature; they are concatenated (512-d) and a linear
classifier (softmax in the loss) is trained on top. The streams are frozen by
default (``freeze_streams: true``): their parameters do not train and they stay
in eval mode (fixed BN statistics, no dropout) even when the fusion trains, so
fusing never degrades a stream.

``fusion: average`` is 3.1 (4)'s "accuracy of averaged outputs": the mean of the
streams' class probabilities, nothing trained (``train --epochs 0`` writes it; the
output is ``log`` of the mean, so softmax gives the mean back and the cross-entropy
is that of the averaged distribution).

Config ``streams`` is a list of ``{"arch": name, "config": {...}}``; the inputs
are the union of the streams' inputs in the fixed order ``clip, image, xy, xt,
yt``, and each stream receives the ones it declares. Weights of stream *i* live
under ``streams.<i>.``; :func:`multistream_from_records` builds the network
from trained stream artifacts and loads them.

Parameter count (default four streams, K = 7): 5,532,081 in all; the fusion
classifier alone has 512 x 7 + 7 = 3,591 trainable (the rest frozen); with
``fusion: average`` there is no classifier (0 trainable).
"""

from __future__ import annotations

from typing import Annotated, Iterator, Optional

import numpy as np
import torch
from torch import nn

from fercli.errors import FercliError
from fercli.models.base import FercliModel
from fercli.models.checks import Dropout, JSONList, OneOf, Switch
from fercli.models.registry import build, get_spec, register

INPUT_ORDER = ("clip", "image", "xy", "xt", "yt")

FUSIONS = ("concat", "average")

DEFAULT_STREAMS = (
    {"arch": "cnn-gru", "config": {"input": "features"}},
    {"arch": "cnn-gru", "config": {"input": "probs"}},
    {"arch": "lbptop-gru", "config": {"plane": "xt"}},
    {"arch": "lbptop-gru", "config": {"plane": "yt"}},
)


def _stream_inputs(stream: dict) -> tuple[str, ...]:
    return get_spec(stream["arch"]).input_names(stream.get("config") or {})


def fusion_inputs(config: dict) -> tuple[str, ...]:
    """Union of the streams' inputs, in INPUT_ORDER."""
    names = {n for s in _check_streams(config["streams"]) for n in _stream_inputs(s)}
    return tuple(n for n in INPUT_ORDER if n in names) + tuple(sorted(names - set(INPUT_ORDER)))


def _check_streams(streams) -> list:
    if not isinstance(streams, (list, tuple)) or not streams or not all(isinstance(s, dict) and "arch" in s for s in streams):
        raise FercliError("multistream needs 'streams': a non-empty list of {\"arch\": name, \"config\": {...}}")
    return list(streams)


class MultiStream(FercliModel):
    """Concatenated stream features -> dropout -> linear classifier (3.2.5), or the
    streams' averaged class probabilities (``fusion: average``, 3.1 (4))."""

    def __init__(self, num_classes: int, streams: JSONList = DEFAULT_STREAMS, freeze_streams: Switch = True, dropout: Dropout = 0.0,
                 fusion: Annotated[str, OneOf(*FUSIONS)] = "concat"):
        super().__init__()
        if fusion not in FUSIONS:
            raise FercliError(f"multistream fusion must be one of {', '.join(FUSIONS)}, not {fusion!r}")
        streams = _check_streams(streams)
        self.fusion, self.num_classes = fusion, num_classes
        self.streams = nn.ModuleList()
        self.stream_inputs: list[tuple[str, ...]] = []
        for s in streams:
            model, _ = build(s["arch"], num_classes, s.get("config") or {})
            self.streams.append(model)
            self.stream_inputs.append(_stream_inputs(s))
        self.inputs = fusion_inputs({"streams": streams})
        self.freeze_streams = freeze_streams
        if freeze_streams:
            for p in self.streams.parameters():
                p.requires_grad_(False)
        if fusion == "average":  # the features are the streams' logits, side by side
            self.feature_dim = num_classes * len(self.streams)
        else:
            self.feature_dim = sum(m.feature_dim for m in self.streams)
            self.drop = nn.Dropout(dropout)
            self.classifier = nn.Linear(self.feature_dim, num_classes)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_streams:
            self.streams.eval()  # frozen streams keep their BN statistics and no dropout
        return self

    def features(self, *xs: torch.Tensor) -> torch.Tensor:
        if len(xs) != len(self.inputs):
            raise FercliError(f"multistream takes {len(self.inputs)} inputs ({', '.join(self.inputs)}), got {len(xs)}")
        by_name = dict(zip(self.inputs, xs))
        feats = [m.features(*(by_name[n] for n in names)) for m, names in zip(self.streams, self.stream_inputs)]
        if self.fusion == "average":
            feats = [m.classify(f) for m, f in zip(self.streams, feats)]
        return torch.cat(feats, dim=1)

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        if self.fusion == "average":
            probs = torch.softmax(f.view(f.shape[0], len(self.streams), self.num_classes), dim=2).mean(1)
            return torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))
        return self.classifier(self.drop(f))

    @classmethod
    def input_names(cls, config: dict) -> tuple[str, ...]:
        return fusion_inputs(config)

    @classmethod
    def config_from_sources(cls, arch: str, config: dict, init: Optional[tuple[str, dict]], streams: list[tuple[str, dict]]) -> dict:
        """The trained stream models (``--streams``) are the streams, unless given."""
        if not streams:
            return config
        return {"streams": [{"arch": a, "config": c} for a, c in streams]} | config

    @classmethod
    def nested_configs(cls, arch: str, config: dict, defaults: dict) -> Iterator[tuple[str, dict]]:
        for i, stream in enumerate(config.get("streams") or []):
            if not isinstance(stream, dict) or not isinstance(stream.get("arch"), str) or not isinstance(stream.get("config", {}), dict):
                raise FercliError(f"model '{arch}' stream {i + 1} must be {{\"arch\": name, \"config\": {{...}}}}")
            yield stream["arch"], stream.get("config", {})

    def dummy_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        by_name: dict[str, torch.Tensor] = {}
        for m, names in zip(self.streams, self.stream_inputs):
            by_name.update(zip(names, m.dummy_inputs(batch)))
        return tuple(by_name[n] for n in self.inputs)


register("multistream", MultiStream, doc="Multi-stream fusion: concatenated 128-d stream features -> softmax (3.2.5).")


def multistream_from_records(records: list, freeze_streams: bool = True, dropout: float = 0.0, fusion: str = "concat") -> tuple[MultiStream, dict]:
    """Build the fusion network from trained stream ModelRecords and load their weights.

    All streams must share class names; returns (model, resolved config).
    """
    if not records:
        raise FercliError("multistream needs at least one trained stream model")
    names = list(records[0].class_names)
    for r in records[1:]:
        if list(r.class_names) != names:
            raise FercliError(f"the streams disagree on class names ({names} vs {list(r.class_names)}), so they cannot be fused")
    config = {"streams": [{"arch": r.arch, "config": dict(r.config)} for r in records], "freeze_streams": freeze_streams, "dropout": dropout,
              "fusion": fusion}
    model, resolved = build("multistream", len(names), config)
    for i, r in enumerate(records):
        state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in r.state.items()}
        missing, unexpected = model.streams[i].load_state_dict(state, strict=False)
        if missing or unexpected:
            raise FercliError(f"stream {i} ('{r.arch}') weights do not fit its architecture ({len(missing)} missing, {len(unexpected)} unexpected)")
    return model, resolved
