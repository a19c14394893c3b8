"""The mouth's interior: a dark slit between closed lips, teeth and a shadowed
cavity when the mouth opens (AU26, AU16, speech)."""

from __future__ import annotations

import cv2
import numpy as np


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
