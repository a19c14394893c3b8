"""Head motion (``--motion``): smooth paths of yaw, pitch, roll, shift, scale and
light over a clip, motion blur along the face's velocity, and when an occluder
appears."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np


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
    speech: bool = False     # talking: syllables move the jaw and lips at 3-6 Hz (:func:`fercli.synth.speech.speech_track`)

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


def _motion_blur(frame: np.ndarray, alpha: np.ndarray, background: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Blur the moving person only, over the sharp static background:
    blur(person layer) + background * (1 - blur(alpha))."""
    back = background * (1 - alpha)
    person = cv2.filter2D(frame - back, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    coverage = cv2.filter2D(np.ascontiguousarray(alpha), -1, kernel, borderType=cv2.BORDER_REPLICATE)
    if coverage.ndim < person.ndim:
        coverage = coverage[..., None]
    return person + background * (1 - coverage)


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
