"""Affine geometry of faces (thesis 3.2.2): the crop template, the registration
matrices (3-point affine or least-squares similarity onto the mean face), the
unaligned box crop (4.2.7), and (..., 2, 3) affines applied, composed and inverted.

Everything here is plain numpy (``cv2.getAffineTransform`` for the exact 3-point
affine); :mod:`fercli.align` (registration stage), :mod:`fercli.tracking`,
:mod:`fercli.live` and :mod:`fercli.synth` share it.
"""

from __future__ import annotations

import numpy as np

from fercli import faces

#: Side of the square crop in mean-face units (inter-ocular distances).
CROP_SIDE = 2.6
#: Vertical centre of the crop in mean-face units (y down; eyes at 0, chin at 1.73).
CROP_CENTRE_Y = 0.7
#: The unaligned crop: the detector box made square and enlarged by this factor,
#: because detector boxes (dlib's especially) cut through the brows and chin.
BOX_SCALE = 1.2


def template(size: int) -> np.ndarray:
    """The mean face's 68 points in the pixel coordinates of a ``size`` crop."""
    scale = size / CROP_SIDE
    origin = np.array([CROP_SIDE / 2, CROP_SIDE / 2 - CROP_CENTRE_Y])
    return (faces.MEAN_FACE_68 + origin) * scale


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 rotation + uniform scale + shift mapping ``src`` onto ``dst`` (least squares).

    In 2-D, Umeyama's solution has a closed form: with both point sets centred,
    the matrix [[a, -b], [b, a]] with a = sum(s . d) / sum(|s|^2) and
    b = sum(s x d) / sum(|s|^2) (never a reflection)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = float((s * s).sum())
    if var <= 0:
        a, b = 1.0, 0.0
    else:
        a = float((s * d).sum()) / var
        b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = md - m[:, :2] @ ms
    return m


def nose_offset(landmarks: np.ndarray) -> float:
    """How far the nose tip is from the mean face's once the eyes are registered
    (inter-ocular distances): ~0 for a frontal face, growing with yaw (sideways) and
    pitch (up/down).  The 3-point affine cancels it by shearing the face."""
    left, right = faces.eye_centres(landmarks)
    d = right - left
    iod2 = max(float(d @ d), 1e-12)
    n = landmarks[faces.NOSE_TIP] - (left + right) / 2
    across = float(n @ d) / iod2
    down = float(d[0] * n[1] - d[1] * n[0]) / iod2
    return float(np.hypot(across, down - faces.MEAN_FACE_68[faces.NOSE_TIP, 1]))


def registration_matrix(landmarks: np.ndarray, size: int, kind: str = "affine") -> np.ndarray:
    """2x3 matrix taking image coordinates to crop coordinates (eyes + nose tip -> template)."""
    src = faces.registration_points(landmarks)
    dst = faces.registration_points(template(size))
    if kind == "similarity":
        return similarity_lstsq(src, dst)
    import cv2

    a, b = src[1] - src[0], src[2] - src[0]
    if abs(a[0] * b[1] - a[1] * b[0]) < 1e-6:
        # Degenerate (collinear) points: fall back to the similarity, which is defined.
        return similarity_lstsq(src, dst)
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def box_matrix(box: faces.Box, size: int) -> np.ndarray:
    """2x3 matrix cropping a square around ``box`` (enlarged by BOX_SCALE) to ``size``."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * BOX_SCALE
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    k = size / side
    return np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]])


def apply_matrix(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(..., 2, 3) affines: ``outer`` after ``inner`` (x -> outer(inner(x)))."""
    a, b = outer[..., :, :2], inner[..., :, :2]
    out = np.empty(np.broadcast_shapes(outer.shape, inner.shape))
    out[..., :, :2] = a @ b
    out[..., :, 2] = (a @ inner[..., :, 2:3])[..., 0] + outer[..., :, 2]
    return out


def invert(m: np.ndarray) -> np.ndarray:
    """(..., 2, 3) affines inverted (NaN stays NaN; a singular one becomes NaN)."""
    a = m[..., :, :2]
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    det = np.where(np.abs(det) > 1e-12, det, np.nan)
    inv = np.empty_like(m, dtype=np.float64)
    inv[..., 0, 0], inv[..., 0, 1] = a[..., 1, 1] / det, -a[..., 0, 1] / det
    inv[..., 1, 0], inv[..., 1, 1] = -a[..., 1, 0] / det, a[..., 0, 0] / det
    inv[..., :, 2] = -(inv[..., :, :2] @ m[..., :, 2:3])[..., 0]
    return inv


def map_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (F, 2, 3) affines to (F, K, 2) points, frame by frame."""
    return points @ np.swapaxes(m[:, :, :2], 1, 2) + m[:, None, :, 2]
