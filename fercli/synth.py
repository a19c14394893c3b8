"""`synth`: the embedded default dataset — a real photograph, warped into expressive clips.

The thesis evaluates on CK+ (section 3.3.1): posed sequences that ramp from a
neutral face to the apex of one of seven expressions, full 640x490 gray frames,
123 subjects.  No dataset may be downloaded at run time, so this stage makes a
CK+-like set from a public-domain photograph that scikit-image ships
(``skimage.data.astronaut()``), or from face photographs the user gives
(``faces=DIR``).

How a frame is made (all randomness from numpy Generators seeded by
``[seed, ...]``, so the same seed gives byte-identical arrays):

* **Face model.** 68 landmarks in a canonical frame (inter-ocular distance 1,
  origin at the eye midpoint, as :data:`fercli.faces.MEAN_FACE_68`).  The base
  shape is dlib's 68 landmarks on the photograph, "neutralised" (lips closed,
  smiling lip corners lowered to the lip line) so clips start from a neutral face.
* **Identity** (per subject): shape variation (face width, chin length, eye
  spacing and size, brow height, nose length/width, mouth width and position,
  lip thickness, small asymmetry), skin tone / gamma / illumination direction,
  head pose (yaw through a per-landmark depth, roll, scale, translation), a
  mirrored or unmirrored photograph, and a background.  Its size is comparable
  to the expression displacements, so a classifier has to learn expression, not
  identity.
* **Expression**: FACS action-unit displacement fields (section 2.1's AU
  description of emotions) combined per prototype — happiness AU6+12, sadness
  AU1+4+15, surprise AU1+2+5+26, fear AU1+2+4+5+20+26, anger AU4+5+7+23,
  disgust AU9+15+16, contempt unilateral AU12+14 — with per-clip intensities,
  ramped neutral -> apex (smoothstep with varied onset, per-AU lag, optional
  apex plateau) over a variable number of frames.  Class-specific cues come from
  the AU deformation only: everything else is drawn independently of the label.
* **Rendering**: a piecewise-affine warp (fixed, lip-aware triangles over the
  68 landmarks plus a ring of anchors that follow the head's similarity transform;
  outside the ring the whole image follows that similarity), rasterised into a
  dense map with OpenCV and applied with one ``cv2.remap``.  An opening mouth
  (AU26, AU16) shows a dark cavity with a hint of upper teeth; a little sensor
  noise and small head drift per frame make consecutive frames realistic.
* **Motion** (``motion=``): the head moves along smooth paths (``mild``,
  ``strong``); ``speech`` adds a talking mouth (jaw drop, lip rounding and
  spreading per syllable at 3-6 Hz) on mild's head movement.

Ground-truth landmarks (the warped model points, frame pixels) are stored per
frame; dlib's detector finds the synthetic faces and its predicted landmarks
agree with them (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from fercli import untrusted
from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.faces import MEAN_DEPTH_68, MIRROR_68
from fercli.geometry import apply_matrix, invert
from fercli.images import IMAGE_EXTENSIONS, frame_to_gray, is_image_name
from fercli.progress import ProgressFn, report

#: The seven CK+ expression classes in CK+'s label order (thesis 3.3.1).
CK_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")

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

#: dlib's 68 landmarks on ``skimage.data.astronaut()`` (HOG detector box
#: (175,76)-(265,166)); embedded so synthesis needs neither the 100 MB predictor
#: nor the detector at run time.  tests/test_synth.py checks it against dlib.
ASTRONAUT_68 = np.array([
    [179, 104], [179, 116], [180, 128], [181, 139], [185, 151], [191, 160], [200, 169], [209, 176], [221, 178],
    [232, 177], [243, 171], [253, 164], [260, 154], [265, 144], [268, 132], [270, 121], [272, 109], [186, 94],
    [192, 88], [200, 87], [208, 89], [216, 92], [236, 94], [244, 91], [252, 91], [260, 92], [265, 98], [226, 102],
    [225, 111], [225, 119], [225, 127], [214, 131], [219, 133], [224, 134], [229, 133], [234, 132], [195, 101],
    [200, 98], [207, 98], [212, 104], [206, 104], [200, 104], [237, 105], [243, 100], [250, 100], [255, 104],
    [250, 106], [244, 106], [200, 139], [209, 139], [218, 139], [223, 141], [230, 140], [237, 140], [245, 141],
    [237, 151], [229, 155], [222, 155], [216, 154], [208, 149], [203, 140], [218, 143], [223, 144], [229, 143],
    [243, 142], [229, 150], [223, 150], [217, 149],
], dtype=np.float64)

#: Outline of the person (hair, face, neck, collar, suit) in the astronaut
#: photograph: GrabCut seeded with the face hull, a hair core, the neck and the
#: collar ring, simplified to a polygon (so run time needs no segmentation);
#: four points right of the neck then moved by hand onto the collar's edge.
ASTRONAUT_PERSON = np.array([
    [262, 36], [241, 35], [240, 31], [210, 29], [200, 34], [197, 49], [184, 51], [174, 62], [170, 62], [155, 74],
    [154, 92], [157, 104], [170, 116], [172, 125], [180, 132], [181, 147], [172, 148], [170, 154], [154, 157],
    [150, 163], [132, 174], [117, 195], [113, 209], [113, 226], [69, 242], [60, 253], [54, 267], [46, 278],
    [41, 315], [38, 320], [38, 332], [49, 337], [49, 369], [44, 383], [31, 383], [25, 392], [23, 414], [21, 416],
    [24, 432], [23, 460], [25, 472], [56, 473], [58, 481], [64, 485], [64, 488], [128, 490], [142, 483], [158, 481],
    [158, 465], [174, 464], [182, 468], [190, 476], [192, 482], [196, 485], [197, 494], [224, 493], [225, 478],
    [233, 468], [242, 464], [244, 449], [247, 445], [254, 445], [257, 434], [258, 390], [252, 355], [253, 337],
    [262, 336], [265, 339], [272, 362], [274, 383], [274, 454], [278, 454], [282, 433], [293, 409], [293, 400],
    [298, 391], [332, 359], [363, 350], [363, 345], [360, 344], [360, 328], [357, 324], [356, 302], [352, 287],
    [347, 282], [340, 262], [319, 243], [305, 234], [302, 222], [293, 201], [277, 184], [258, 176], [262, 161],
    [262, 152],
    [267, 137], [275, 134], [290, 117], [296, 107], [299, 90], [291, 82], [291, 73], [287, 65], [280, 58], [279, 52],
    [268, 44],
], dtype=np.int32)

#: dlib puts the astronaut's inner upper-lip points on her teeth (she smiles with
#: teeth showing); the lip's real edge is ~2 px higher.  Moving them there lets the
#: neutral shape close the mouth over the teeth instead of leaving a white band.
_ASTRONAUT_LIP_FIX = {61: (0.0, -1.5), 62: (0.0, -2.0), 63: (0.0, -1.5)}


# --------------------------------------------------------------------------- landmark index sets

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

#: Rough depth of each landmark (canonical units, towards the camera), so yaw
#: moves the nose against the cheeks and compresses the far side of the face.
_DEPTH = MEAN_DEPTH_68

#: Anchor ring around the head (canonical units): follows only the head's
#: similarity transform, so the piecewise warp is confined inside it.
_RING_N = 28
_theta = np.linspace(0, 2 * np.pi, _RING_N, endpoint=False)
RING = np.stack([2.1 * np.cos(_theta), 0.55 + 2.25 * np.sin(_theta)], axis=1)

#: Where the face's centre sits (canonical), used for placement in the frame.
FACE_CENTRE = np.array([0.0, 0.7])


# --------------------------------------------------------------------------- head motion


@dataclass(frozen=True)
class Motion:
    """Peak amplitudes of the head's movement over a clip (``--motion``)."""

    yaw: float = 0.0         # degrees, about the vertical axis (per-landmark depth)
    pitch: float = 0.0       # degrees, about the horizontal axis (positive: chin up)
    roll: float = 0.0        # degrees, in the image plane
    shift: float = 0.0       # translation, inter-ocular distances
    scale: float = 0.0       # relative size change (0.2: +-20 %)
    light: float = 0.0       # relative brightness change
    light_turn: float = 0.0  # degrees the light direction turns
    blur: float = 0.0        # exposure time in frame intervals (0: sharp frames)
    occlusion: bool = False  # one brief occluder over the eye or mouth region
    speech: bool = False     # talking: syllables move the jaw and lips at 3-6 Hz (:func:`speech_track`)

    @property
    def moves(self) -> bool:
        return self != Motion()


#: ``--motion`` levels.  Strong yaw stays below ~25 degrees in total (with the
#: subject's own yaw, clamped at MAX_YAW): beyond that the 2-D warp of a frontal
#: photograph folds the far cheek over the eye (and dlib's frontal models stop).
_MILD = Motion(yaw=8.0, pitch=6.0, roll=6.0, shift=0.5, scale=0.08, light=0.08)
MOTIONS: dict[str, Motion] = {
    "none": Motion(),
    "mild": _MILD,
    "strong": Motion(yaw=16.0, pitch=12.0, roll=12.0, shift=1.5, scale=0.2, light=0.25, light_turn=60.0, blur=0.5, occlusion=True),
    # A talking head: mild's head movement (the same paths, so a speech clip is its
    # mild clip plus the talking), no blur or occluder, so what a tracker loses is
    # the fast non-rigid mouth and jaw, nothing else.
    "speech": dataclasses.replace(_MILD, speech=True),
}
MAX_YAW = 24.0
#: Motion paths are defined in seconds at this frame rate (synth's video default).
MOTION_FPS = 30.0


def _path(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """A smooth head path over ``n`` frames: two sinusoids of 0.15-0.6 Hz with
    random phases and weights, peak |value| <= ``amplitude`` (head movement of a
    talking person is mostly below 1 Hz).  Always draws the same numbers, so
    every level moves along the same path, scaled."""
    f, phase, wgt = rng.uniform(0.15, 0.6, 2), rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.3, 0.7)
    t = np.arange(n) / MOTION_FPS
    return amplitude * (wgt * np.sin(2 * np.pi * f[0] * t + phase[0]) + (1 - wgt) * np.sin(2 * np.pi * f[1] * t + phase[1]))


def _blur_kernel(velocity: np.ndarray, exposure: float) -> Optional[np.ndarray]:
    """Linear motion-blur kernel for a face moving ``velocity`` px/frame, centred (so
    the landmarks of the frame are the positions at mid-exposure); None if < 1 px."""
    v = np.asarray(velocity, np.float64) * exposure
    length = float(np.hypot(*v))
    if length < 1.0:
        return None
    side = (int(np.ceil(length)) | 1) + 2
    k = np.zeros((side, side), np.float32)
    c = (side - 1) / 2
    # Points spread evenly along the segment, each splatted bilinearly: the
    # kernel's centroid is exactly its centre.
    u = np.linspace(-0.5, 0.5, 4 * int(np.ceil(length)) + 1)
    pts = c + u[:, None] * v[None, :]
    base = np.floor(pts).astype(int)
    frac = pts - base
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        wgt = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
        np.add.at(k, (base[:, 1] + dy, base[:, 0] + dx), wgt)
    return k / k.sum()


# --------------------------------------------------------------------------- speech

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


# --------------------------------------------------------------------------- textures


@dataclass
class Texture:
    """A face photograph with its 68 landmarks (source pixels) and person mask."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) float
    name: str
    mask: np.ndarray  # (H, W) uint8, 255 = the person (kept), 0 = background (replaced)

    def mirrored(self) -> "Texture":
        w = self.image.shape[1]
        pts = self.landmarks[MIRROR_68].copy()
        pts[:, 0] = (w - 1) - pts[:, 0]
        return Texture(np.ascontiguousarray(self.image[:, ::-1]), pts, self.name + ":mirrored", np.ascontiguousarray(self.mask[:, ::-1]))


@functools.lru_cache(maxsize=1)
def astronaut() -> Texture:
    """scikit-image's astronaut photograph (public domain, shipped in its wheel)."""
    from skimage import data

    image = np.ascontiguousarray(data.astronaut()[..., :3])
    pts = ASTRONAUT_68.copy()
    for i, d in _ASTRONAUT_LIP_FIX.items():
        pts[i] += d
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [ASTRONAUT_PERSON], 255)
    return Texture(image, pts, "astronaut", mask)


def detect_landmarks(image_rgb: np.ndarray) -> Optional[np.ndarray]:
    """dlib HOG detector + 68-point predictor on the largest face, or None."""
    from fercli.faces import hog_detector, shape_predictor

    gray = frame_to_gray(image_rgb)
    detector = hog_detector()
    boxes = detector(gray, 0)
    if len(boxes) == 0:
        boxes = detector(gray, 1)
    if len(boxes) == 0:
        return None
    box = max(boxes, key=lambda r: r.width() * r.height())
    shape = shape_predictor()(gray, box)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def segment_person(image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Person mask by GrabCut, seeded from the landmarks (how ASTRONAUT_PERSON was made).

    Definite foreground: the face hull, a hair core above the brows and the neck;
    probable foreground: a head ellipse and a shoulders trapezoid; the rest is
    background.  Deterministic (OpenCV's RNG is seeded).
    """
    to_source = _similarity_from_eyes(landmarks)
    iod = float(np.hypot(*to_source[:, 0]))
    soft = _rough_person_mask(image_rgb.shape[:2], to_source)
    gc = np.where(soft > 128, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[soft < 10] = cv2.GC_BGD
    cv2.fillConvexPoly(gc, cv2.convexHull(np.round(landmarks).astype(np.int32)), cv2.GC_FGD)
    hair = apply_matrix(to_source, np.array([[0.0, -0.85]]))[0]
    angle = float(np.degrees(np.arctan2(to_source[1, 0], to_source[0, 0])))
    cv2.ellipse(gc, (int(hair[0]), int(hair[1])), (max(1, int(1.1 * iod)), max(1, int(0.45 * iod))), angle, 0, 360, cv2.GC_FGD, -1)
    neck = apply_matrix(to_source, np.array([[-0.45, 1.6], [0.45, 1.6], [0.45, 2.4], [-0.45, 2.4]]))
    cv2.fillConvexPoly(gc, np.round(neck).astype(np.int32), cv2.GC_FGD)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return soft  # degenerate image (e.g. flat): fall back to the rough mask
    fg = np.where((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    return cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))


def load_faces(folder: str) -> list[Texture]:
    """Face photographs from ``folder`` (every image must show a face dlib finds)."""
    if not os.path.isdir(folder):
        raise FercliError(f"--faces {folder} is not a folder")
    names = sorted(n for n in os.listdir(folder) if is_image_name(n))
    if not names:
        raise FercliError(f"--faces {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    textures = []
    for name in names:
        path = os.path.join(folder, name)
        data = untrusted.read_image_file(path)  # no FIFO, pixel limit from the header
        with untrusted.quiet_native_stderr():  # libpng warnings
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if bgr is None:
            raise FercliError(f"--faces: cannot read image {path}")
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        pts = detect_landmarks(rgb)
        if pts is None:
            raise FercliError(f"--faces: dlib finds no face in {path}; give frontal face photographs only")
        textures.append(Texture(rgb, pts, name, segment_person(rgb, pts)))
    return textures


# --------------------------------------------------------------------------- geometry helpers


def _similarity_from_eyes(pts: np.ndarray) -> np.ndarray:
    """2x3 matrix mapping canonical coordinates to the pixels of ``pts``' face."""
    left, right = pts[36:42].mean(0), pts[42:48].mean(0)
    d = right - left
    s = float(np.hypot(*d))
    c, si = d / s
    mid = (left + right) / 2
    return np.array([[s * c, -s * si, mid[0]], [s * si, s * c, mid[1]]])


def _neutralise(canon: np.ndarray) -> np.ndarray:
    """Close the lips and lower smiling lip corners to the lip line (a neutral start)."""
    c = canon.copy()
    mid = (c[_INNER_UPPER] + c[_INNER_LOWER]) / 2
    c[_INNER_UPPER, 1] = mid[:, 1] - 0.006
    c[_INNER_LOWER, 1] = mid[:, 1] + 0.006
    # Mouth closed: shift the lower lip up by what the gap was, so lip thickness stays.
    gap = float(np.mean(canon[_INNER_LOWER, 1] - canon[_INNER_UPPER, 1])) - 0.012
    if gap > 0:
        c[_OUTER_LOWER, 1] -= gap * 0.6
        c[[8, 7, 9], 1] -= gap * 0.3
    line = float(np.mean((c[[62, 66], 1])))
    # > 0: corners above the lip line (a smile).  Lowered only half-way: dragging
    # the photograph's deep smile-corner shadows all the way along the lips
    # looks worse than a faint resting smile.
    lift = 0.5 * (line - (c[60, 1] + c[64, 1]) / 2)
    if lift > 0:
        for idx, w in (([48, 54, 60, 64], 1.0), ([49, 53, 59, 55, 61, 63, 67, 65], 0.45), ([50, 52, 58, 56], 0.15)):
            c[idx, 1] += w * lift
    return c


# --------------------------------------------------------------------------- identity


@dataclass
class Subject:
    name: str
    texture: Texture
    neutral: np.ndarray  # (68, 2) canonical shape incl. identity variation
    triangles: np.ndarray  # (T, 3) indices into 68 landmarks + RING
    source_rgba: np.ndarray  # (h, w, 4|2) uint8: toned photograph (RGB or gray) + person mask
    to_source: np.ndarray  # 2x3 canonical -> source pixels
    background: np.ndarray  # (H, W) or (H, W, 3) float32 in [0, 1]
    yaw: float
    roll: float
    iod: float
    centre: np.ndarray
    light_dir: float
    light_amp: float
    expressivity: float


def _shape_variation(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """Identity shape: a few anthropometric modes plus smooth small asymmetry."""
    c = base.copy()
    u = lambda a: rng.uniform(-a, a)  # noqa: E731
    c[_JAW, 0] *= 1 + u(0.08)                      # face width
    lower = c[:, 1] > 0.6
    c[lower, 1] += u(0.12) * (c[lower, 1] - 0.6)   # chin / lower-face length
    chin = np.arange(5, 12)
    c[chin, 0] *= 1 + u(0.1)                       # chin width
    spacing = u(0.04)
    for eye, sign in ((_EYE_L, -1), (_EYE_R, 1)):
        centre = c[eye].mean(0)
        c[eye] = centre + (c[eye] - centre) * (1 + u(0.12))  # eye size
        c[eye, 0] += sign * spacing                           # eye spacing
    brow = u(0.06)
    c[_BROWS, 1] += brow + rng.normal(0, 0.01, 10)             # brow height
    c[_NOSE_LOW, 1] += u(0.06)                                 # nose length
    ncx = c[_NOSE_LOW, 0].mean()
    c[31:36, 0] = ncx + (c[31:36, 0] - ncx) * (1 + u(0.15))    # nose width
    mc = c[_MOUTH].mean(0)
    mouth = c[_MOUTH] - mc
    mouth[:, 0] *= 1 + u(0.12)                                  # mouth width
    thick = 1 + u(0.2)
    outer = np.isin(_MOUTH, np.r_[_OUTER_UPPER, _OUTER_LOWER])
    mouth[outer, 1] *= thick                                    # lip thickness
    c[_MOUTH] = mc + mouth + np.array([0.0, u(0.04)])           # mouth height
    # small smooth asymmetry: a random affine tilt of the lower face
    c += rng.normal(0, 0.008, c.shape)
    return c


def _make_background(rng: np.random.Generator, w: int, h: int, color: bool) -> np.ndarray:
    """A plain-ish studio wall: muted tint, gradient, low-frequency shading, faint texture."""
    ch = 3 if color else 1
    base = rng.uniform(0.2, 0.85)
    tint = (1 + rng.uniform(-0.1, 0.1, ch)) if color else np.ones(1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    grad = rng.uniform(0, 0.25) * ((xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang))
    # shading blotches are luminance only: coloured ones look like a rainbow, not a wall
    blotch = cv2.resize(rng.normal(0, 0.05, (4, 5)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    bg = base * tint.astype(np.float32)[None, None, :] * (1 + grad[..., None]) + blotch[..., None]
    kind = rng.integers(0, 4)
    if kind < 3:
        tex = _wall_texture(int(kind))
        side = int(max(w, h) * rng.uniform(1.0, 1.6))
        tex = cv2.resize(tex, (side, side), interpolation=cv2.INTER_LINEAR)  # one piece: no tiling seams
        oy, ox = rng.integers(0, side - h + 1), rng.integers(0, side - w + 1)
        bg = bg + rng.uniform(0.01, 0.035) * tex[oy:oy + h, ox:ox + w, None]
    bg = np.clip(bg, 0, 1).astype(np.float32)
    return bg if color else bg[..., 0]


@functools.lru_cache(maxsize=4)
def _wall_texture(kind: int) -> np.ndarray:
    """A zero-mean, unit-ish texture from scikit-image's bundled samples."""
    from skimage import data

    img = (data.brick, data.gravel, data.grass)[kind]().astype(np.float32) / 255.0
    img = cv2.GaussianBlur(cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    return ((img - img.mean()) / (img.std() + 1e-6)).astype(np.float32)


def _rough_person_mask(shape: tuple[int, ...], to_source: np.ndarray) -> np.ndarray:
    """Head ellipse + neck/shoulders trapezoid (uint8, soft): GrabCut's starting guess."""
    h, w = shape[:2]
    mask = np.zeros((h, w), np.uint8)
    iod = float(np.hypot(*to_source[:, 0]))
    centre = apply_matrix(to_source, np.array([[0.0, 0.35]]))[0]
    angle = float(np.degrees(np.arctan2(to_source[1, 0], to_source[0, 0])))
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (max(1, int(1.75 * iod)), max(1, int(2.05 * iod))), angle, 0, 360, 255, -1)
    poly = apply_matrix(to_source, np.array([[-0.8, 1.5], [0.8, 1.5], [1.2, 2.6], [3.8, 3.6], [4.5, 9.0], [-4.5, 9.0], [-3.8, 3.6], [-1.2, 2.6]]))
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    k = max(3, int(0.25 * iod) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def _soft_mask(texture: Texture, iod: float) -> np.ndarray:
    """The person mask with feathered edges (hair and shoulders blend into the background)."""
    k = max(3, int(0.12 * iod) | 1)
    return cv2.GaussianBlur(texture.mask, (k, k), 0)


def _make_subject(index: int, textures: Sequence[Texture], rng: np.random.Generator, size: tuple[int, int], color: bool, width: int) -> Subject:
    w, h = size
    texture = textures[index % len(textures)]
    if rng.random() < 0.5:
        texture = texture.mirrored()
    to_source = _similarity_from_eyes(texture.landmarks)
    canon = apply_matrix(invert(to_source), texture.landmarks)
    neutral = _shape_variation(rng, _neutralise(canon))
    # skin tone / gamma: applied to the person in the source photograph
    img = texture.image.astype(np.float32) / 255.0
    brightness = rng.uniform(0.72, 1.15)
    gains = brightness * (1 + np.array([rng.uniform(-0.04, 0.1), 0.0, rng.uniform(-0.12, 0.05)]))
    gamma = rng.uniform(0.8, 1.25)
    img = np.clip(img * gains[None, None, :], 0, 1) ** gamma
    img8 = np.round(img * 255).astype(np.uint8)
    if not color:  # gray output: convert once here, then remap 2 channels instead of 4
        img8 = cv2.cvtColor(img8, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([img8, _soft_mask(texture, float(np.hypot(*to_source[:, 0])))])
    ref = min(h, w * 490 / 640)
    iod = ref * rng.uniform(0.16, 0.21)
    centre = np.array([w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.05, 0.05) * h])
    return Subject(
        name=f"S{index + 1:0{width}d}",
        texture=texture,
        neutral=neutral,
        triangles=triangulate(canon),
        source_rgba=np.ascontiguousarray(rgba),
        to_source=to_source,
        background=_make_background(rng, w, h, color),
        yaw=rng.uniform(-10, 10),
        roll=rng.uniform(-6, 6),
        iod=iod,
        centre=centre,
        light_dir=rng.uniform(0, 2 * np.pi),
        light_amp=rng.uniform(0.0, 0.3),
        expressivity=rng.uniform(0.8, 1.2),
    )


# --------------------------------------------------------------------------- expression


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


# --------------------------------------------------------------------------- rendering


def _pose_matrix(iod: float, roll_deg: float, centre: np.ndarray) -> np.ndarray:
    """2x3 canonical -> frame similarity that puts FACE_CENTRE at ``centre``."""
    a = np.radians(roll_deg)
    rot = iod * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = centre - rot @ FACE_CENTRE
    return np.hstack([rot, t[:, None]])


def _project(shape: np.ndarray, yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """Weak-perspective head rotation using per-landmark depth: yaw about the
    vertical axis, then pitch (positive: chin up) about the horizontal axis
    through the face centre; orthographic projection back onto the image."""
    y = np.radians(yaw_deg)
    out = shape.copy()
    out[:, 0] = shape[:, 0] * np.cos(y) + _DEPTH * np.sin(y)
    if pitch_deg:
        p = np.radians(pitch_deg)
        depth = _DEPTH * np.cos(y) - shape[:, 0] * np.sin(y)  # depth after the yaw
        out[:, 1] = FACE_CENTRE[1] + (shape[:, 1] - FACE_CENTRE[1]) * np.cos(p) - depth * np.sin(p)
    return out


def _mouth_layout(canonical: np.ndarray, upper: float, lower: float, drop: float) -> np.ndarray:
    """Landmarks with an idealised open mouth: outer (48-59) and inner (60-67) lip on
    half-ellipses through the real lip corners; ``upper``/``lower`` are the heights
    of the upper/lower halves relative to the half-width, ``drop`` lowers the centre."""
    layout = canonical.copy()
    half = float(canonical[54, 0] - canonical[48, 0]) / 2
    centre = np.array([canonical[48:68, 0].mean(), (canonical[48, 1] + canonical[54, 1]) / 2 + drop])
    outer = np.pi + np.arange(12) * np.pi / 6  # 48 (left corner), 51 (top), 54, 57 (bottom)
    inner = np.pi + np.arange(8) * np.pi / 4   # 60 (left corner), 62 (top), 64, 66 (bottom)
    so, si = np.sin(outer), np.sin(inner)
    layout[48:60] = centre + half * np.stack([np.cos(outer), np.where(so < 0, upper, lower) * so], 1)
    layout[60:68] = centre + half * np.stack([0.78 * np.cos(inner), np.where(si < 0, 0.5 * upper, 0.6 * lower) * si], 1)
    return layout


def _signed_areas(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = points[tri[:, 0]], points[tri[:, 1]], points[tri[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


#: (upper, lower, drop) mouth layouts tried in turn; the first suits the astronaut.
_LAYOUTS = ((0.15, 0.8, 0.06), (0.25, 0.7, 0.08), (0.15, 0.7, 0.04), (0.35, 0.6, 0.1), (0.5, 0.5, 0.08))


@functools.lru_cache(maxsize=8)
def _triangles_for(key: bytes) -> np.ndarray:
    from scipy.spatial import Delaunay

    canonical = np.frombuffer(key, dtype=np.float64).reshape(68, 2)
    source = np.concatenate([canonical, RING])
    fallback = None
    for params in _LAYOUTS:
        layout = np.concatenate([_mouth_layout(canonical, *params), RING])
        tri = Delaunay(layout).simplices.astype(np.int64)
        if not _mouth_topology_ok(tri):
            continue
        inner = np.isin(tri, np.arange(60, 68)).all(1)
        flipped = (np.sign(_signed_areas(source, tri)) != np.sign(_signed_areas(layout, tri))) & ~inner
        if not flipped.any():
            return tri
        fallback = tri if fallback is None else fallback
    # An unusual face: keep a valid topology (teeth may show as slivers when closed).
    return fallback if fallback is not None else Delaunay(source).simplices.astype(np.int64)


def triangulate(canonical: np.ndarray) -> np.ndarray:
    """Fixed triangles over 68 landmarks + the anchor ring, with lip-aware topology.

    Delaunay on the landmarks themselves does not follow the lip contours (an
    edge from the lower lip to the upper inner lip would cut across the teeth).
    So the triangulation is made once per face on a layout whose mouth is an
    idealised open mouth (lip half-ellipses through the real corners): the lips
    become strips and the inner mouth gets its own triangles, which collapse when
    the lips close (the photograph's teeth disappear) and expand when the mouth
    opens (they show).  Layouts whose triangles would be folded on the real
    face (a smear when warped) are skipped.
    """
    return _triangles_for(np.ascontiguousarray(canonical, dtype=np.float64).round(6).tobytes())


def _mouth_topology_ok(tri: np.ndarray) -> bool:
    """Lip contours are edges, and every triangle touching the inner lip stays in the mouth."""
    edges = {tuple(sorted((int(t[i]), int(t[(i + 1) % 3])))) for t in tri for i in range(3)}
    inner = [(60 + i, 60 + (i + 1) % 8) for i in range(8)]
    outer = [(48 + i, 48 + (i + 1) % 12) for i in range(12)]
    touching = tri[np.isin(tri, np.arange(60, 68)).any(1)]
    return all(tuple(sorted(e)) in edges for e in inner + outer) and bool(np.all((touching >= 48) & (touching < 68)))


def _warp_maps(dst_pts: np.ndarray, src_pts: np.ndarray, tri: np.ndarray, global_inv: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Dense remap maps (frame -> source) of a piecewise-affine warp.

    Triangles are rasterised into an id image with ``cv2.fillConvexPoly``; each
    pixel then takes its triangle's affine map (six gathers, vectorised).
    Outside the triangulated hull the global similarity applies, which the ring
    anchors match exactly, so the map is continuous.
    """
    w, h = size
    gx = np.arange(w, dtype=np.float32)
    gy = np.arange(h, dtype=np.float32)[:, None]
    g = global_inv.astype(np.float32)
    map_x = g[0, 0] * gx + g[0, 1] * gy + g[0, 2]
    map_y = g[1, 0] * gx + g[1, 1] * gy + g[1, 2]
    x0, y0 = np.floor(dst_pts.min(0)).astype(int)
    x1, y1 = np.ceil(dst_pts.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return map_x, map_y
    ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
    shift = 4
    scaled = np.round((dst_pts - [x0, y0]) * (1 << shift)).astype(np.int32)
    for k, t in enumerate(tri):
        cv2.fillConvexPoly(ids, scaled[t], int(k), lineType=cv2.LINE_8, shift=shift)
    # affine dst -> src per triangle (solve the 3x3 systems in one batch)
    d = np.concatenate([dst_pts[tri], np.ones((len(tri), 3, 1))], axis=2)  # (T, 3, 3)
    s = src_pts[tri]  # (T, 3, 2)
    ok = np.abs(np.linalg.det(d)) > 1e-9
    coef = np.zeros((len(tri), 3, 2))
    coef[ok] = np.linalg.solve(d[ok], s[ok])  # rows: x, y, 1 coefficients
    coef = coef.astype(np.float32)
    inside = ids >= 0
    if not ok.all():
        inside &= ok[np.maximum(ids, 0)]
    idx = ids[inside]
    yy, xx = np.nonzero(inside)
    xx = (xx + x0).astype(np.float32)
    yy = (yy + y0).astype(np.float32)
    sub_x = map_x[y0:y1, x0:x1]
    sub_y = map_y[y0:y1, x0:x1]
    sub_x[inside] = coef[idx, 0, 0] * xx + coef[idx, 1, 0] * yy + coef[idx, 2, 0]
    sub_y[inside] = coef[idx, 0, 1] * xx + coef[idx, 1, 1] * yy + coef[idx, 2, 1]
    return map_x, map_y


def _smooth_closed(pts: np.ndarray, k: int = 5) -> np.ndarray:
    """Closed Catmull-Rom curve through ``pts`` (k samples per segment): lips are round."""
    p0, p1, p2, p3 = np.roll(pts, 1, 0), pts, np.roll(pts, -1, 0), np.roll(pts, -2, 0)
    t = (np.arange(k) / k)[:, None, None]
    curve = 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
    return curve.transpose(1, 0, 2).reshape(-1, 2)


def _mouth_cavity(frame: np.ndarray, pts: np.ndarray, gap: float, iod: float, shade: float) -> None:
    """Shade the mouth opening, in place.

    Closed lips meet in a thin dark slit.  When the mouth opens, the inner-mouth
    triangles stretch the photograph's teeth into the opening; a wide opening
    would stretch them implausibly, so below a band of upper teeth the mouth
    fades into a dark cavity (throat and tongue in shadow).
    """
    strength = float(np.clip((gap - 0.03) / 0.10, 0.0, 1.0))
    h, w = frame.shape[:2]
    inner = _smooth_closed(pts[60:68])
    margin = 0.1 * iod + 3
    x0, y0 = np.maximum(np.floor(inner.min(0) - margin).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(inner.max(0) + margin).astype(int), [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    shift = 4
    off = np.array([x0, y0])
    upper = inner[: 4 * 5 + 1]  # the upper lip's inner edge, 60 -> 64
    lower = np.concatenate([inner[4 * 5:], inner[:1]])  # 64 -> 60
    slit = np.zeros((y1 - y0, x1 - x0), np.float32)
    mid = (upper + lower[::-1]) / 2
    thickness = max(1, int(round(0.03 * iod)))
    cv2.polylines(slit, [np.round((mid - off) * (1 << shift)).astype(np.int32)], False, 1.0, thickness, cv2.LINE_AA, shift)
    sigma = max(0.7, 0.025 * iod)
    a = (0.6 * (1 - strength)) * cv2.GaussianBlur(slit, (0, 0), sigma * 0.5)
    if strength > 0:
        cavity = np.zeros_like(slit)
        cv2.fillPoly(cavity, [np.round((inner - off) * (1 << shift)).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=shift)
        teeth = np.zeros_like(slit)
        depth = min(0.35 * gap, 0.09) * iod
        band = np.concatenate([upper, upper[::-1] + [0, depth]])
        cv2.fillPoly(teeth, [np.round((band - off) * (1 << shift)).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=shift)
        cavity = cv2.GaussianBlur(cavity, (0, 0), sigma * 0.6)
        teeth = cv2.GaussianBlur(teeth, (0, 0), sigma)
        a = np.maximum(a, (0.9 * strength) * cavity * (1 - teeth))
    roi = frame[y0:y1, x0:x1]
    dark = np.float32(0.1 * shade)
    if roi.ndim == 3:
        a = a[..., None]
        dark = dark * np.array([1.3, 0.75, 0.7], np.float32)  # RGB: a warm (mouth-red) shadow, not gray-blue
    roi *= 1 - a
    roi += a * dark


def synthesize(
    subjects: int = 10,
    clips_per_class: int = 1,
    classes: Optional[Sequence[str]] = None,
    frames: tuple[int, int] = (8, 16),
    size: tuple[int, int] = (640, 490),
    color: bool = False,
    seed: int = 0,
    faces: Optional[str] = None,
    progress: Optional[ProgressFn] = None,
    motion: str = "none",
    faces_per_frame: int = 1,
) -> Clips:
    """Make a CK+-like set of expression clips (see the module docstring).

    ``classes`` picks a subset of :data:`CK_CLASSES` (in the given order);
    ``frames`` is the (min, max) clip length; ``size`` is (width, height);
    ``faces`` a folder of face photographs to warp instead of the astronaut.
    Subject ``i`` and the clips of class ``c`` depend only on (seed, i, c), so a
    class subset or more subjects keep the clips they share identical.
    """
    classes = list(CK_CLASSES if classes is None else classes)
    if not classes:
        raise FercliError("--classes needs at least one class")
    unknown = [c for c in classes if c not in PROTOTYPES]
    if unknown:
        raise FercliError(f"unknown class '{unknown[0]}' (synth knows {', '.join(CK_CLASSES)})")
    if len(set(classes)) != len(classes):
        raise FercliError("--classes lists a class twice")
    if subjects < 1:
        raise FercliError(f"--subjects must be at least 1 (got {subjects})")
    if clips_per_class < 1:
        raise FercliError(f"--clips-per-class must be at least 1 (got {clips_per_class})")
    lo, hi = int(frames[0]), int(frames[1])
    if lo < 1 or hi < lo:
        raise FercliError(f"--frames needs 0 < MIN <= MAX (got {lo}:{hi})")
    w, h = int(size[0]), int(size[1])
    if w < 16 or h < 16:
        raise FercliError(f"--size must be at least 16x16 (got {w}x{h})")
    if motion not in MOTIONS:
        raise FercliError(f"--motion must be one of {', '.join(MOTIONS)} (got '{motion}')")
    head_motion = MOTIONS[motion]
    textures = load_faces(faces) if faces is not None else [astronaut()]

    if faces_per_frame < 1 or subjects % faces_per_frame:
        raise FercliError(f"--subjects ({subjects}) must be a multiple of --faces-per-frame ({faces_per_frame})")
    k_faces = int(faces_per_frame)
    # Faces side by side: each in a tile of its own (its own background), the
    # last tile taking the remainder of the width.
    tiles = [w // k_faces] * (k_faces - 1) + [w - (w // k_faces) * (k_faces - 1)]
    if min(tiles) < 16:
        raise FercliError(f"--size {w}x{h} is too narrow for {k_faces} faces side by side")
    width = max(3, len(str(subjects)))
    sequences, landmarks, labels, subj, clip_ids, sources, poses = [], [], [], [], [], [], []
    occluded: dict[str, list[int]] = {}
    speech_hz: dict[str, float] = {}
    total = subjects // k_faces * len(classes) * clips_per_class
    done = 0
    report(progress, 0, total)
    for g in range(subjects // k_faces):
        members = [_make_subject(s, textures, np.random.default_rng([seed, 0, s]), (tw, h), color, width)
                   for s, tw in zip(range(g * k_faces, (g + 1) * k_faces), tiles)]
        group = "+".join(m.name for m in members)
        k = 0
        for label, name in enumerate(classes):
            for rep in range(clips_per_class):
                parts = []
                for s, member, tw in zip(range(g * k_faces, (g + 1) * k_faces), members, tiles):
                    rng = np.random.default_rng([seed, 1, s, CK_CLASSES.index(name), rep])
                    motion_rng = np.random.default_rng([seed, 2, s, CK_CLASSES.index(name), rep])
                    speech_rng = np.random.default_rng([seed, 3, s, CK_CLASSES.index(name), rep]) if head_motion.speech else None
                    # Every face of a group clip shows the first one's clip length.
                    length = (lo, hi) if not parts else (len(parts[0][0]),) * 2
                    parts.append(_render_clip(member, name, rng, length, (tw, h), color, head_motion, motion_rng, speech_rng))
                seq, pts, occ, truth, rate = parts[0] if k_faces == 1 else (np.concatenate([p[0] for p in parts], axis=2), *parts[0][1:])
                k += 1
                if occ.any():
                    occluded[f"{group}_{k:03d}"] = [int(np.argmax(occ)), int(len(occ) - 1 - np.argmax(occ[::-1]))]
                if rate is not None:
                    speech_hz[f"{group}_{k:03d}"] = round(rate, 4)
                sequences.append(seq)
                landmarks.append(pts)
                poses.append(truth)
                labels.append(label)
                subj.append(group)
                clip_ids.append(f"{group}_{k:03d}")
                sources.append("synth:" + "+".join(m.texture.name for m in members))
                done += 1
                report(progress, done, total)
    clips = Clips.from_sequences(
        sequences, labels, classes, subj, clip_ids, sources,
        landmarks=np.concatenate(landmarks).astype(np.float32),
        face_found=np.ones(sum(len(x) for x in sequences), bool), head_pose=np.concatenate(poses),
    )
    clips.meta = {
        "synth": {
            "seed": seed, "subjects": subjects, "clips_per_class": clips_per_class, "frames": [lo, hi],
            "size": [w, h], "color": color, "faces": faces or "astronaut", "motion": motion,
        },
        "landmarks": "ground truth (synth model), frame pixels",
        "head_pose": "ground truth rotation (synth model); position unknown (orthographic render)",
    }
    if occluded:
        # First and last occluded frame per clip (--motion strong): the face is
        # there, its landmarks exact, but partly hidden.
        clips.meta["synth"]["occluded"] = occluded
    if speech_hz:
        # Syllables per second of each clip's talking mouth (--motion speech; the
        # leftmost face's in a group clip, like the landmarks).
        clips.meta["synth"]["speech_hz"] = speech_hz
    if k_faces > 1:
        # The artifact holds one face's landmarks per frame: the leftmost's.  Tile
        # k of group g is exactly subject g*K+k's single-face clip rendered at the
        # tile's size with --frames N:N (same seed), so its truth is that clip's
        # landmarks shifted right by the tiles before it.
        clips.meta["synth"]["faces_per_frame"] = k_faces
        clips.meta["synth"]["tiles"] = tiles
        clips.meta["landmarks"] = "ground truth (synth model) of the leftmost face, frame pixels"
    return clips


def _render_clip(subject: Subject, class_name: str, rng: np.random.Generator, frames: tuple[int, int], size: tuple[int, int], color: bool,
                 motion: Motion = MOTIONS["none"], motion_rng: Optional[np.random.Generator] = None,
                 speech_rng: Optional[np.random.Generator] = None):
    """One clip: frames, ground-truth landmarks (frame pixels), which frames an
    occluder covers, the true head pose and the speech rate (None: not talking).
    ``motion`` moves the head along paths drawn from ``motion_rng`` (a stream of its
    own, so the expression is the same with or without motion); a talking mouth
    (``motion.speech``) comes from ``speech_rng``, a third stream, so a speech clip
    is its mild clip with the mouth and jaw moving on top."""
    w, h = size
    n = int(rng.integers(frames[0], frames[1] + 1))
    # per-clip variation of pose and light (label-independent)
    yaw = subject.yaw + rng.normal(0, 2.0)
    roll = subject.roll + rng.normal(0, 1.5)
    iod = subject.iod * rng.uniform(0.95, 1.05)
    centre = subject.centre + rng.normal(0, 0.02, 2) * [w, h]
    brightness = rng.uniform(0.93, 1.07)
    noise_sigma = rng.uniform(1.0, 3.0) / 255.0
    # expression: per-AU intensity and timing
    apex = rng.uniform(0.75, 1.2) * subject.expressivity
    aus = {au: apex * rng.uniform(0.75, 1.15) for au in PROTOTYPES[class_name]}
    side = int(rng.integers(0, 2))
    onset = int(rng.integers(1, max(1, n // 3) + 1)) if n > 1 else 0
    onset = min(onset, n - 1)
    plateau = int(rng.integers(0, min(2, max(0, n - onset - 2)) + 1)) if n > 2 else 0
    power = rng.uniform(0.7, 1.4)
    ramps = {au: _ramp(n, onset, plateau, power, rng.uniform(0, 0.15)) for au in aus}
    # small head drift within the clip
    drift_xy = np.cumsum(rng.normal(0, 0.006 * iod, (n, 2)), axis=0)
    drift_roll = np.cumsum(rng.normal(0, 0.25, n))
    drift_yaw = np.cumsum(rng.normal(0, 0.25, n))
    fields = {au: (_one_side(AU_FIELDS[au], side) if class_name in UNILATERAL else AU_FIELDS[au]) for au in aus}
    head = _head_motion(motion, motion_rng, n, yaw, iod, centre, drift_xy, size) if motion.moves else None
    speech = speech_track(speech_rng, n) if motion.speech else None

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light_dir = subject.light_dir
    light = 1 + subject.light_amp * (((xx - centre[0]) * np.cos(light_dir) + (yy - centre[1]) * np.sin(light_dir)) / (3.0 * iod))
    light = (np.clip(light, 0.6, 1.4) * brightness).astype(np.float32)
    if color:
        light = light[..., None]
    to_src_inv_base = subject.to_source
    ring_src = apply_matrix(to_src_inv_base, RING)
    neutral_gap = float(np.mean(subject.neutral[_INNER_LOWER, 1] - subject.neutral[_INNER_UPPER, 1]))

    # Sensor noise: one field per clip, shifted by a random offset every frame
    # (drawing fresh Gaussian noise for every pixel was a third of the frame time).
    pad = 32
    noise_bank = rng.standard_normal((h + pad, w + pad, 3) if color else (h + pad, w + pad), dtype=np.float32) * np.float32(noise_sigma)
    noise_offsets = rng.integers(0, pad + 1, (n, 2))

    out = np.empty((n, h, w, 3) if color else (n, h, w), np.uint8)
    pts_out = np.empty((n, 68, 2), np.float64)
    occluded = np.zeros(n, bool)
    angles = np.zeros((n, 3))  # the head's yaw, pitch, roll per frame (degrees): the true pose
    src_pts = np.concatenate([subject.texture.landmarks, ring_src])
    shapes = []
    for t in range(n):
        shape = subject.neutral.copy()
        for au, k in aus.items():
            shape += (k * ramps[au][t]) * fields[au]
        if speech is not None:
            shape += speech.field(t)
        shapes.append(shape)
        if head is None:
            angles[t] = (yaw + drift_yaw[t], 0.0, roll + drift_roll[t])
            pose = _pose_matrix(iod, angles[t, 2], centre + drift_xy[t])
        else:
            angles[t] = (head["yaw"][t] + drift_yaw[t], head["pitch"][t], roll + drift_roll[t] + head["roll"][t])
            pose = _pose_matrix(iod * head["scale"][t], angles[t, 2], head["centre"][t])
        pts_out[t] = apply_matrix(pose, _project(shape, angles[t, 0], angles[t, 1]))
    for t in range(n):
        shape, dst = shapes[t], pts_out[t]
        if head is None:
            pose = _pose_matrix(iod, roll + drift_roll[t], centre + drift_xy[t])
        else:
            pose = _pose_matrix(iod * head["scale"][t], roll + drift_roll[t] + head["roll"][t], head["centre"][t])
            light = _light_field(subject, size, centre, iod, brightness * head["gain"][t], head["turn"][t], color)
        ring_dst = apply_matrix(pose, RING)
        global_inv = subject.to_source @ np.vstack([invert(pose), [0, 0, 1]])
        map_x, map_y = _warp_maps(np.concatenate([dst, ring_dst]), src_pts, subject.triangles, global_inv, (w, h))
        warped = cv2.remap(subject.source_rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped = warped.astype(np.float32)
        warped *= np.float32(1 / 255.0)
        alpha = warped[..., -1:] if color else warped[..., -1]
        fg = warped[..., :3] if color else warped[..., 0]
        frame = fg * alpha + subject.background * (1 - alpha)
        frame *= light
        gap = float(np.mean(shape[_INNER_LOWER, 1] - shape[_INNER_UPPER, 1])) - neutral_gap
        face_shade = float(np.mean(fg[int(np.clip(dst[30, 1], 0, h - 1)), int(np.clip(dst[30, 0], 0, w - 1))]))
        _mouth_cavity(frame, dst, gap, iod, max(0.3, face_shade) * brightness)
        if head is not None:
            if head["kernel"][t] is not None:
                frame = _motion_blur(frame, alpha, subject.background * light, head["kernel"][t])
            occ = head["occlusion"]
            if occ is not None and occ[0] <= t < occ[1]:
                _occlude(frame, pose, occ[2], occ[3])
                occluded[t] = True
        oy, ox = noise_offsets[t]
        frame += noise_bank[oy:oy + h, ox:ox + w]
        np.clip(frame * 255.0 + 0.5, 0, 255, out=frame)
        out[t] = frame.astype(np.uint8)
    return out, pts_out, occluded, true_pose(angles), (speech.rate if speech is not None else None)


def true_pose(angles: np.ndarray) -> np.ndarray:
    """(n, 6) head poses in :mod:`fercli.pose`'s columns of frames rendered at
    ``angles`` (yaw, pitch, roll in degrees): the rotation exactly, the position
    NaN (the render is orthographic, so the head has no distance)."""
    from fercli.pose import from_yaw_pitch_roll

    out = np.full((len(angles), 6), np.nan, np.float32)
    out[:, 3:] = from_yaw_pitch_roll(angles[:, 0], angles[:, 1], angles[:, 2])
    return out


def _light_field(subject: Subject, size: tuple[int, int], centre: np.ndarray, iod: float, gain: float, turn: float, color: bool) -> np.ndarray:
    """The subject's directional light gradient over the scene, turned by ``turn``
    radians and scaled by ``gain`` (the static case's formula, per frame)."""
    w, h = size
    d = subject.light_dir + turn
    lx = ((np.arange(w, dtype=np.float32) - centre[0]) * np.cos(d) / (3.0 * iod))[None, :]
    ly = ((np.arange(h, dtype=np.float32) - centre[1]) * np.sin(d) / (3.0 * iod))[:, None]
    light = (np.clip(1 + subject.light_amp * (lx + ly), 0.6, 1.4) * gain).astype(np.float32)
    return light[..., None] if color else light


def _motion_blur(frame: np.ndarray, alpha: np.ndarray, background: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Blur the moving person only, over the sharp static background:
    blur(person layer) + background * (1 - blur(alpha))."""
    back = background * (1 - alpha)
    person = cv2.filter2D(frame - back, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    coverage = cv2.filter2D(np.ascontiguousarray(alpha), -1, kernel, borderType=cv2.BORDER_REPLICATE)
    if coverage.ndim < person.ndim:
        coverage = coverage[..., None]
    return person + background * (1 - coverage)


#: Occluders in canonical face units: centre, half-axes (a hand over the mouth or an eye).
_OCCLUDERS = (((0.0, 1.05), (1.0, 0.5)), ((-0.45, -0.05), (0.6, 0.5)), ((0.45, -0.05), (0.6, 0.5)))


def _occlude(frame: np.ndarray, pose: np.ndarray, region: int, tone: float) -> None:
    """Paint a soft-edged, shaded elliptical occluder over part of the face, in place."""
    h, w = frame.shape[:2]
    (cx, cy), (ax, ay) = _OCCLUDERS[region]
    scale = float(np.hypot(*pose[:, 0]))
    angle = float(np.degrees(np.arctan2(pose[1, 0], pose[0, 0])))
    c = apply_matrix(pose, np.array([[cx, cy]]))[0]
    shift = 4
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(round(c[0] * 16)), int(round(c[1] * 16))), (int(round(ax * scale * 16)), int(round(ay * scale * 16))),
                angle, 0, 360, 1.0, -1, cv2.LINE_AA, shift)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, 0.04 * scale))
    shade = (tone * (1.1 - 0.2 * np.clip((np.arange(h, dtype=np.float32) - c[1]) / max(1.0, ay * scale) * 0.5 + 0.5, 0, 1)))[:, None]
    if frame.ndim == 3:
        mask = mask[..., None]
        paint = shade[..., None] * np.array([1.0, 0.82, 0.7], np.float32)  # a hand's warm tone
    else:
        paint = shade
    frame *= 1 - mask
    frame += mask * paint


def _head_motion(motion: Motion, rng: np.random.Generator, n: int, yaw: float, iod: float, centre: np.ndarray,
                 drift_xy: np.ndarray, size: tuple[int, int]) -> dict:
    """Per-frame head pose, light, blur kernels and occluder of a moving clip."""
    w, h = size
    paths = {k: _path(rng, n, 1.0) for k in ("yaw", "pitch", "roll", "x", "y", "scale", "light", "turn")}
    head: dict = {
        "yaw": np.clip(yaw + motion.yaw * paths["yaw"], -MAX_YAW, MAX_YAW),
        "pitch": motion.pitch * paths["pitch"],
        "roll": motion.roll * paths["roll"],
        "scale": np.exp(np.log1p(motion.scale) * paths["scale"]),
    }
    side = iod * head["scale"]
    # Keep the whole head in the frame: the face spans about +-1.1 IOD across and
    # 1.0 above / 1.05 below its centre; clamping flattens the path at the border.
    cx = centre[0] + drift_xy[:, 0] + motion.shift * iod * paths["x"]
    cy = centre[1] + drift_xy[:, 1] + motion.shift * iod * paths["y"]
    mx, my = np.minimum(1.3 * side, w / 2), np.minimum(1.2 * side, h / 2)
    head["centre"] = np.stack([np.clip(cx, mx, w - mx), np.clip(cy, my, h - my)], axis=1)
    head["gain"] = 1 + motion.light * paths["light"]
    head["turn"] = np.radians(motion.light_turn) * paths["turn"]
    head["kernel"] = [None] * n
    if motion.blur > 0 and n > 1:
        v = np.gradient(head["centre"], axis=0)  # px per frame, central differences
        head["kernel"] = [_blur_kernel(v[t], motion.blur) for t in range(n)]
    # One brief occluder (a hand over the mouth or one eye) in the middle of the clip.
    occ = None
    if motion.occlusion and n >= 12:
        k = int(rng.integers(3, 7))
        start = int(rng.integers(n // 4, max(n // 4 + 1, n - k - n // 8)))
        region = int(rng.integers(0, 3))  # 0: mouth, 1: image-left eye, 2: image-right eye
        tone = rng.uniform(0.25, 0.8)
        occ = (start, min(n, start + k), region, tone)
    head["occlusion"] = occ
    return head


def render_video(clips: Clips, path: str, fps: float = 30.0) -> None:
    """Write the clips one after another as an MP4 (mp4v) video, atomically."""
    from fercli.artifacts import atomic_path

    if path == "-":
        raise FercliError("--video needs a file name, not '-'")
    if fps <= 0:
        raise FercliError(f"--fps must be positive (got {fps})")
    if len(clips.frames) == 0:
        raise FercliError("no frames to write to the video")
    h, w = clips.frames.shape[1:3]
    with atomic_path(path, suffix=os.path.splitext(path)[1] or ".mp4") as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h), True)
        if not writer.isOpened():
            raise FercliError(f"OpenCV cannot write an mp4v video to {path} (use a .mp4 name)")
        try:
            for frame in clips.frames:
                if frame.ndim == 2:
                    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                else:
                    frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                writer.write(frame)
        finally:
            writer.release()


def trace_to_video(clips: Clips, path: str, fps: float) -> None:
    """Record, in place, where :func:`render_video` put each frame: frame ``k`` of the
    artifact is frame ``k`` of the video (clips one after another), at ``fps``, in
    the video's pixel coordinates (identity transform), so ``fercli table`` of the
    synth artifact and of the same video ingested and aligned line up row for row."""
    clips.source_frame = np.arange(len(clips.frames), dtype=np.int64)
    clips.fps = np.full(len(clips), float(fps))
    clips.sources = np.asarray([os.path.basename(path)] * len(clips), dtype=object)
