"""Lighting: the subject's directional light over the scene, turned and scaled per
frame when the head moves."""

from __future__ import annotations

import numpy as np

from fercli.synth.identity import Subject


def _light_field(subject: Subject, size: tuple[int, int], centre: np.ndarray, iod: float, gain: float, turn: float, color: bool) -> np.ndarray:
    """The subject's directional light gradient over the scene, turned by ``turn``
    radians and scaled by ``gain`` (the static case's formula, per frame)."""
    w, h = size
    d = subject.light_dir + turn
    lx = ((np.arange(w, dtype=np.float32) - centre[0]) * np.cos(d) / (3.0 * iod))[None, :]
    ly = ((np.arange(h, dtype=np.float32) - centre[1]) * np.sin(d) / (3.0 * iod))[:, None]
    light = (np.clip(1 + subject.light_amp * (lx + ly), 0.6, 1.4) * gain).astype(np.float32)
    return light[..., None] if color else light
