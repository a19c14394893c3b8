"""Faces: model files, detectors, the 68-landmark predictor, and the mean face.

Shared by ``synth`` (which warps a real photograph with a 68-point model),
``align`` (thesis 3.2.2: register eye centres and nose tip to a mean face) and
``live`` (chapter 4's real-time system).

The dlib models ship in the PyPI package ``face_recognition_models``; its
``__init__`` imports ``pkg_resources`` (absent from current setuptools), so its
folder is located with :func:`importlib.util.find_spec` instead of importing it.
Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Optional

import numpy as np

from fercli.errors import FercliError

#: Mean frontal face, 68 points in iBUG-300W order, in units of the inter-ocular
#: distance, origin at the midpoint of the eye centres, x right, y down.  Made
#: from dlib's landmarks on scikit-image's astronaut photograph, de-rotated and
#: averaged with its mirror image so it is exactly left/right symmetric.
MEAN_FACE_68 = np.array([
    [-1.0719, 0.0719],
    [-1.0374, 0.3484],
    [-1.0029, 0.6020],
    [-0.9569, 0.8793],
    [-0.8649, 1.1336],
    [-0.7148, 1.3527],
    [-0.4964, 1.5374],
    [-0.2651, 1.6997],
    [0.0000, 1.7349],
    [0.2651, 1.6997],
    [0.4964, 1.5374],
    [0.7148, 1.3527],
    [0.8649, 1.1336],
    [0.9569, 0.8793],
    [1.0029, 0.6020],
    [1.0374, 0.3484],
    [1.0719, 0.0719],
    [-0.9116, -0.1465],
    [-0.7845, -0.2967],
    [-0.6006, -0.3197],
    [-0.4152, -0.2967],
    [-0.2306, -0.2392],
    [0.2306, -0.2392],
    [0.4152, -0.2967],
    [0.6006, -0.3197],
    [0.7845, -0.2967],
    [0.9116, -0.1465],
    [0.0000, -0.0208],
    [0.0000, 0.1875],
    [0.0000, 0.3714],
    [0.0000, 0.5554],
    [-0.2306, 0.6602],
    [-0.1149, 0.6947],
    [0.0000, 0.7177],
    [0.1149, 0.6947],
    [0.2306, 0.6602],
    [-0.6925, 0.0036],
    [-0.5762, -0.0884],
    [-0.4152, -0.0884],
    [-0.2888, 0.0503],
    [-0.4389, 0.0611],
    [-0.5884, 0.0618],
    [0.2888, 0.0503],
    [0.4152, -0.0884],
    [0.5762, -0.0884],
    [0.6925, 0.0036],
    [0.5884, 0.0618],
    [0.4389, 0.0611],
    [-0.5187, 0.8563],
    [-0.3341, 0.8448],
    [-0.1386, 0.8441],
    [0.0000, 0.8786],
    [0.1386, 0.8441],
    [0.3341, 0.8448],
    [0.5187, 0.8563],
    [0.3456, 1.0984],
    [0.1494, 1.2026],
    [0.0000, 1.2263],
    [-0.1494, 1.2026],
    [-0.3456, 1.0984],
    [-0.4490, 0.8908],
    [-0.1379, 0.9246],
    [0.0000, 0.9490],
    [0.1379, 0.9246],
    [0.4490, 0.8908],
    [0.1379, 1.0869],
    [0.0000, 1.1099],
    [-0.1379, 1.0869],
], dtype=np.float64)

#: Index permutation that maps a face's landmarks onto its mirror image.
MIRROR_68 = np.array([16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 27, 28, 29, 30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65])

LEFT_EYE = slice(36, 42)   # subject's right eye, image left
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the two eyes (image-left, image-right) of (..., 68, 2) landmarks."""
    return landmarks[..., LEFT_EYE, :].mean(axis=-2), landmarks[..., RIGHT_EYE, :].mean(axis=-2)


def interocular(landmarks: np.ndarray) -> np.ndarray:
    left, right = eye_centres(landmarks)
    return np.linalg.norm(right - left, axis=-1)


def registration_points(landmarks: np.ndarray) -> np.ndarray:
    """The three points thesis 3.2.2 registers with: both eye centres and the nose tip."""
    left, right = eye_centres(landmarks)
    return np.stack([left, right, landmarks[..., NOSE_TIP, :]], axis=-2)


# --------------------------------------------------------------------------- model files


def models_dir() -> str:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.origin:
        raise FercliError("the dlib face models are missing: pip install face_recognition_models (or run `make install`)")
    return os.path.join(os.path.dirname(spec.origin), "models")


def landmark_model_path(override: Optional[str] = None) -> str:
    """Path of the 68-point shape predictor (``--predictor`` overrides)."""
    path = override or os.path.join(models_dir(), "shape_predictor_68_face_landmarks.dat")
    if not os.path.isfile(path):
        raise FercliError(f"landmark model {path} does not exist")
    return path


def mmod_model_path() -> str:
    path = os.path.join(models_dir(), "mmod_human_face_detector.dat")
    if not os.path.isfile(path):
        raise FercliError(f"dlib MMOD face detector model {path} does not exist")
    return path


@functools.lru_cache(maxsize=4)
def shape_predictor(path: Optional[str] = None):
    import dlib

    try:
        return dlib.shape_predictor(landmark_model_path(path))
    except RuntimeError as exc:
        raise FercliError(f"cannot load landmark model {path}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()
