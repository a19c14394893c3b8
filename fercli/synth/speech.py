"""A talking mouth (``--motion speech``): syllables at 3-6 Hz move the jaw and lips
by viseme (issue 22: trackers that treat a talking face as rigid lag at the mouth)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fercli.synth.facs import AU_FIELDS
from fercli.synth.motion import MOTION_FPS


#: Syllable rate of speech (syllables, i.e. jaw open-close cycles, per second).
SPEECH_HZ = (3.0, 6.0)


#: Visemes of a syllable's vowel: (jaw drop, lip rounding, lip spreading) at its
#: peak, relative.  Open a, spread e/i, rounded o/u (the classic vowel visemes).
VISEMES: dict[str, tuple[float, float, float]] = {
    "a": (1.0, 0.0, 0.2), "e": (0.6, 0.0, 0.6), "i": (0.3, 0.0, 1.0), "o": (0.7, 0.8, 0.0), "u": (0.35, 1.0, 0.0),
}


@dataclass(frozen=True)
class SpeechTrack:
    """Per-frame action-unit intensities of a talking mouth."""

    rate: float            # syllables per second (the clip's mean)
    jaw: np.ndarray        # (n,) AU26 jaw drop
    rounding: np.ndarray   # (n,) AU18 lip pucker
    spreading: np.ndarray  # (n,) AU20 lip stretcher

    def field(self, t: int) -> np.ndarray:
        """The mouth's displacement (68, 2) at frame ``t``."""
        return self.jaw[t] * AU_FIELDS[26] + self.rounding[t] * AU_FIELDS[18] + self.spreading[t] * AU_FIELDS[20]


def speech_track(rng: np.random.Generator, n: int) -> SpeechTrack:
    """A talking mouth over ``n`` frames (at :data:`MOTION_FPS`).

    Syllables follow one another at a clip rate drawn from :data:`SPEECH_HZ`
    (each syllable's length within +-20 % of the mean).  In each one the jaw opens
    and closes once (sin^2: closed at the consonants between syllables, open at the
    vowel) by the vowel's viseme times a per-syllable loudness; the lips' rounding
    and spreading move smoothly (smoothstep) from one vowel's shape to the next,
    as coarticulation does.  The clip starts part-way into a syllable.
    """
    rate = float(rng.uniform(*SPEECH_HZ))
    strength = rng.uniform(0.6, 1.0)  # jaw drop of the loudest 'a', as AU26 intensity
    period = MOTION_FPS / rate  # frames per syllable
    starts, lengths = [-rng.uniform(0.0, period)], []
    while starts[-1] < n:
        lengths.append(period * rng.uniform(0.8, 1.2))
        starts.append(starts[-1] + lengths[-1])
    starts = np.array(starts[:-1])
    lengths = np.array(lengths)
    k = len(lengths)
    visemes = np.array(list(VISEMES.values()))[rng.integers(0, len(VISEMES), k)]
    loudness = rng.uniform(0.5, 1.0, k)
    t = np.arange(n, dtype=np.float64)
    syllable = np.searchsorted(starts, t, side="right") - 1
    phase = (t - starts[syllable]) / lengths[syllable]
    jaw = strength * loudness[syllable] * visemes[syllable, 0] * np.sin(np.pi * phase) ** 2
    centres = starts + lengths / 2

    def coarticulated(values: np.ndarray) -> np.ndarray:
        u = np.interp(t, centres, np.arange(k, dtype=np.float64))  # fractional syllable index
        i = np.clip(np.floor(u).astype(int), 0, k - 1)
        j = np.minimum(i + 1, k - 1)
        f = u - i
        return values[i] + (values[j] - values[i]) * f * f * (3 - 2 * f)

    return SpeechTrack(rate, jaw, 0.8 * coarticulated(visemes[:, 1]), 0.5 * coarticulated(visemes[:, 2]))
