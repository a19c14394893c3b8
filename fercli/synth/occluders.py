"""Occluders: a hand-like shape over the mouth or one eye for a few frames
(``--motion strong``); the landmarks under it stay exact."""

from __future__ import annotations

import cv2
import numpy as np

from fercli.geometry import apply_matrix


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
