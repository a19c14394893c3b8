"""The one interface every registered network implements (thesis 3.2-3.3, 4.2, 5.2).

The stages (train, evaluate, prune, export, live) and the composite models
(cnn-gru over a frame backbone, the multi-stream fusion) use a model only
through what :class:`FercliModel` declares, so none of them probes a model with
``hasattr``:

- ``inputs``: the names of ``forward``'s arguments, in order (``image`` (B,C,H,W),
  ``clip`` (B,T,C,H,W), ``xt``/``yt``/``xy`` (B,M,1,h,w); floats in [0, 1]).  A class
  whose inputs depend on its config overrides :meth:`input_names`.
- ``features(*inputs) -> (B, feature_dim)`` and ``classify(features) -> logits``;
  ``forward`` is their composition.
- ``dummy_inputs(batch)``: zeros at the nominal input size (FLOPs, export, the
  channel count the data must be converted to).
- ``prunable_blocks()``: chapter 5's LBC blocks with SE (empty for other models).
- ``sequence_halves``: True for models that run as a per-frame CNN plus a
  per-window recurrent part (4.2.7, Fig 4.3); they also implement
  :class:`SequenceHalves`'s methods.

What a class's config means is the class's too: its ``__init__`` keywords are the
config keys, annotated with what each accepts (:mod:`fercli.models.checks`);
:meth:`~FercliModel.config_from_data` and :meth:`~FercliModel.config_from_sources`
fill in the keys a training run derives (channels and frame size from the data, a
cnn-gru's backbone from ``--init-from``, a fusion's streams);
:meth:`~FercliModel.nested_configs` names the configs of other architectures it holds.
"""

from __future__ import annotations

import abc
import inspect
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import torch
from torch import nn

from fercli.errors import FercliError


@dataclass(frozen=True)
class DataLayout:
    """What a training run's data looks like, for the config keys a model derives from it."""

    channels: int  # of a frame: 1 gray, 3 colour
    frame_size: int  # frame side (height) the samples get (--size, else the data's)
    clip_length: Optional[int] = None  # --frames, else the length every clip has (None: clips differ)
    planes: dict[str, tuple[int, int]] = field(default_factory=dict)  # LBP-TOP plane -> (code maps per clip, map height)


class FercliModel(nn.Module, metaclass=abc.ABCMeta):
    inputs: tuple[str, ...] = ("image",)
    feature_dim: int = 0
    sequence_halves: bool = False
    #: Values of config keys added after artifacts were first written: a stored
    #: config without the key was trained with this value (old models still load).
    legacy_config: dict = {}

    @classmethod
    def input_names(cls, config: dict[str, Any]) -> tuple[str, ...]:
        """The forward inputs of this class built with the (resolved) ``config``."""
        return tuple(cls.inputs)

    @classmethod
    def config_default(cls, key: str) -> Any:
        """The default of config key ``key`` (its ``__init__`` keyword's)."""
        return inspect.signature(cls.__init__).parameters[key].default

    @classmethod
    def config_from_data(cls, config: dict, data: DataLayout) -> dict:
        """``config`` with the keys this class derives from the training data filled in
        where not given (none here)."""
        return config

    @classmethod
    def config_from_sources(cls, arch: str, config: dict, init: Optional[tuple[str, dict]], streams: list[tuple[str, dict]]) -> dict:
        """``config`` with the keys this class (registered as ``arch``) derives from the
        (arch, config) of the model that initialises it and of stream models, where not given."""
        if streams:
            raise FercliError(f"--streams is for the fusion architecture; '{arch}' takes no streams")
        return config

    @classmethod
    def nested_configs(cls, arch: str, config: dict, defaults: dict) -> Iterator[tuple[str, Any]]:
        """(architecture, config) of every model whose config ``config`` holds (checked with it)."""
        return iter(())

    @abc.abstractmethod
    def features(self, *inputs: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) representation of a batch."""

    @abc.abstractmethod
    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) from :meth:`features`."""

    @abc.abstractmethod
    def dummy_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """Zeros shaped like one batch of every input, at the nominal size."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(*inputs))

    def prunable_blocks(self) -> list:
        return []

    def frame_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one frame this model (or its per-frame CNN) takes."""
        for name, x in zip(self.inputs, self.dummy_inputs(1)):
            if name == "image":
                return tuple(int(v) for v in x.shape[1:])  # type: ignore[return-value]
            if name == "clip":
                return tuple(int(v) for v in x.shape[2:])  # type: ignore[return-value]
        raise ValueError("this model takes no frames")


class SequenceHalves(FercliModel):
    """A clip model that splits into a per-frame CNN and a per-window recurrent part.

    ``frame_vectors(images) -> (B, frame_dim)`` is what the recurrent part consumes
    per frame; ``frame_vectors_and_probs`` also returns the CNN's own softmax (what
    the live overlay shows) from the same forward pass; ``sequence_logits(seq)`` maps
    (B, T, frame_dim) to logits; ``frames`` is the nominal window length.
    """

    sequence_halves = True
    frame_dim: int = 0
    frames: int = 0

    @abc.abstractmethod
    def frame_vectors(self, images: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def frame_vectors_and_probs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    @abc.abstractmethod
    def sequence_logits(self, seq: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def frame_model(self) -> FercliModel:
        """The per-frame CNN (its ``dummy_inputs`` give the frame size)."""
