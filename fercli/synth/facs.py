"""FACS data: the action units' landmark displacements and the CK+ prototypes (thesis 2.1).

Section 2.1 describes the emotions by action units; each class here is the
prototype combination of them, each action unit a displacement field of the 68
landmarks in canonical units (inter-ocular distance 1, x right, y down), and a
clip ramps them from neutral to apex (:func:`_ramp`).
"""

from __future__ import annotations

import numpy as np

from fercli.faces import MIRROR_68


#: FACS prototypes: class -> action units (contempt is unilateral).
PROTOTYPES: dict[str, tuple[int, ...]] = {
    "anger": (4, 5, 7, 23),
    "contempt": (12, 14),
    "disgust": (9, 15, 16),
    "fear": (1, 2, 4, 5, 20, 26),
    "happy": (6, 12),
    "sadness": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
}


UNILATERAL = {"contempt"}


AU_NAMES = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 12: "lip corner puller",
    14: "dimpler", 15: "lip corner depressor", 16: "lower lip depressor", 18: "lip pucker", 20: "lip stretcher",
    23: "lip tightener", 26: "jaw drop",
}


_MID = np.array([8, 27, 28, 29, 30, 33, 51, 57, 62, 66])


#: image-left half of the face (the subject's right); the other half is MIRROR_68 of it
_LEFT = np.array([0, 1, 2, 3, 4, 5, 6, 7, 17, 18, 19, 20, 21, 31, 32, 36, 37, 38, 39, 40, 41, 48, 49, 50, 58, 59, 60, 61, 67])


_BROWS = np.arange(17, 27)


_JAW = np.arange(0, 17)


_NOSE_LOW = np.arange(30, 36)


_EYE_L, _EYE_R = np.arange(36, 42), np.arange(42, 48)


_MOUTH = np.arange(48, 68)


_INNER_UPPER = np.array([61, 62, 63])


_INNER_LOWER = np.array([67, 66, 65])  # pairs with _INNER_UPPER


_OUTER_UPPER = np.array([49, 50, 51, 52, 53])


_OUTER_LOWER = np.array([59, 58, 57, 56, 55])


def _sym(left: dict[int, tuple[float, float]]) -> np.ndarray:
    """A symmetric (68, 2) field from displacements of image-left and midline points."""
    field = np.zeros((68, 2))
    for i, (dx, dy) in left.items():
        field[i] = (0.0 if i in _MID else dx, dy)
        j = MIRROR_68[i]
        if j != i:
            field[j] = (-dx, dy)
    return field


def _one_side(field: np.ndarray, side: int) -> np.ndarray:
    """Keep one half of a symmetric field (side 0: image left, 1: image right); midline halves."""
    out = np.zeros_like(field)
    half = _LEFT if side == 0 else MIRROR_68[_LEFT]
    out[half] = field[half]
    out[_MID] = 0.5 * field[_MID]
    return out


# Displacements at full intensity, canonical units (inter-ocular distance = 1;
# x right, y down; negative dx on the image-left side = outward).  Magnitudes
# follow the FACS manual's appearance changes, sized so an apex expression moves
# the mouth/brows by 0.1-0.25 inter-ocular distances, like CK+ apex frames.
AU_FIELDS: dict[int, np.ndarray] = {
    1: _sym({21: (0.01, -0.13), 20: (0.0, -0.10), 19: (0.0, -0.06), 18: (0.0, -0.03), 17: (0.0, -0.01),
             38: (0.0, -0.01), 39: (0.0, -0.005)}),
    2: _sym({17: (-0.01, -0.11), 18: (0.0, -0.12), 19: (0.0, -0.09), 20: (0.0, -0.05), 21: (0.0, -0.02),
             37: (0.0, -0.01), 36: (0.0, -0.005)}),
    4: _sym({21: (0.06, 0.09), 20: (0.04, 0.08), 19: (0.02, 0.06), 18: (0.01, 0.04), 17: (0.0, 0.02),
             37: (0.0, 0.015), 38: (0.005, 0.02), 27: (0.0, 0.01)}),
    5: _sym({37: (0.0, -0.05), 38: (0.0, -0.05), 36: (0.0, -0.01), 39: (0.0, -0.01), 40: (0.0, 0.01), 41: (0.0, 0.01),
             19: (0.0, -0.01), 20: (0.0, -0.01)}),
    6: _sym({40: (0.0, -0.035), 41: (0.0, -0.035), 36: (0.0, -0.012), 1: (0.01, -0.03), 2: (0.015, -0.035),
             3: (0.01, -0.025), 31: (0.0, -0.01), 17: (0.0, 0.01)}),
    7: _sym({40: (0.0, -0.04), 41: (0.0, -0.04), 37: (0.0, 0.02), 38: (0.0, 0.02), 36: (0.01, 0.0), 39: (-0.005, 0.0)}),
    9: _sym({31: (0.01, -0.06), 32: (0.0, -0.06), 33: (0.0, -0.05), 30: (0.0, -0.04), 29: (0.0, -0.025), 28: (0.0, -0.01),
             49: (0.0, -0.04), 50: (0.0, -0.05), 51: (0.0, -0.05), 61: (0.0, -0.04), 62: (0.0, -0.04),
             48: (0.0, -0.02), 60: (0.0, -0.02), 21: (0.02, 0.05), 20: (0.01, 0.03), 40: (0.0, -0.02), 41: (0.0, -0.02)}),
    12: _sym({48: (-0.12, -0.08), 60: (-0.10, -0.07), 49: (-0.05, -0.03), 50: (-0.02, -0.01), 59: (-0.07, -0.05),
              58: (-0.03, -0.02), 61: (-0.04, -0.02), 67: (-0.05, -0.03), 57: (0.0, -0.01), 3: (-0.01, -0.02),
              4: (-0.015, -0.02), 31: (0.0, -0.005)}),
    14: _sym({48: (-0.045, -0.02), 60: (-0.04, -0.015), 49: (-0.015, 0.0), 59: (-0.015, 0.0), 50: (0.0, 0.01),
              51: (0.0, 0.012), 58: (0.0, -0.01), 57: (0.0, -0.012), 4: (-0.01, 0.0)}),
    15: _sym({48: (0.01, 0.10), 60: (0.01, 0.08), 49: (0.0, 0.03), 59: (0.0, 0.06), 58: (0.0, 0.03), 61: (0.0, 0.02),
              67: (0.0, 0.04), 57: (0.0, 0.01), 5: (0.0, 0.01), 6: (0.0, 0.01)}),
    16: _sym({58: (0.0, 0.07), 57: (0.0, 0.08), 59: (0.0, 0.04), 67: (0.0, 0.07), 66: (0.0, 0.08), 48: (0.0, 0.01),
              60: (0.0, 0.01), 7: (0.0, 0.01), 8: (0.0, 0.01)}),
    # Lip pucker: the corners draw in and the lips bunch into a round mouth (speech's
    # rounded vowels, o/u; no prototype uses it).
    18: _sym({48: (0.07, 0.0), 60: (0.06, 0.0), 49: (0.03, -0.012), 59: (0.03, 0.012), 50: (0.01, -0.015),
              58: (0.01, 0.015), 51: (0.0, -0.015), 57: (0.0, 0.015), 61: (0.02, 0.0), 67: (0.02, 0.0)}),
    20: _sym({48: (-0.13, 0.02), 60: (-0.11, 0.02), 49: (-0.06, 0.005), 50: (-0.025, 0.0), 59: (-0.07, 0.01),
              58: (-0.03, 0.005), 61: (-0.05, 0.0), 67: (-0.05, 0.01), 5: (-0.01, 0.0), 4: (-0.01, 0.0)}),
    23: _sym({48: (0.035, 0.0), 60: (0.045, 0.0), 49: (0.02, 0.015), 50: (0.01, 0.02), 51: (0.0, 0.02),
              59: (0.02, -0.015), 58: (0.01, -0.02), 57: (0.0, -0.02)}),
    26: _sym({4: (0.0, 0.03), 5: (0.005, 0.08), 6: (0.01, 0.14), 7: (0.005, 0.19), 8: (0.0, 0.22),
              59: (0.0, 0.14), 58: (0.0, 0.18), 57: (0.0, 0.20), 67: (0.0, 0.16), 66: (0.0, 0.19),
              48: (0.01, 0.05), 60: (0.01, 0.05), 61: (0.0, 0.01), 62: (0.0, 0.01)}),
}


def expression_field(class_name: str, intensities: dict[int, float], side: int = 0) -> np.ndarray:
    """Apex displacement (68, 2) of a prototype with given AU intensities."""
    field = np.zeros((68, 2))
    for au, k in intensities.items():
        f = AU_FIELDS[au]
        if class_name in UNILATERAL:
            f = _one_side(f, side)
        field += k * f
    return field


def _ramp(n: int, onset: int, plateau: int, power: float, lag: float) -> np.ndarray:
    """Neutral for ``onset`` frames, smoothstep to 1, optionally held at apex."""
    t = np.arange(n, dtype=np.float64)
    span = max(1.0, (n - 1 - plateau) - onset + 1)
    u = np.clip((t - onset + 1) / span - lag, 0, 1) / max(1e-6, 1 - lag) if lag > 0 else np.clip((t - onset + 1) / span, 0, 1)
    u = np.clip(u, 0, 1) ** power
    r = u * u * (3 - 2 * u)
    if n > 1:
        r[n - 1] = 1.0  # the last frame is the apex, as in CK+
    return r
