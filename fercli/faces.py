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

#: Rough depth of each landmark of :data:`MEAN_FACE_68` (same units, positive
#: towards the camera, eye plane near 0): nose tip +0.5, jaw corners -1.0.  Made by
#: hand for ``synth`` (which rotates faces through it, so yaw moves the nose against
#: the cheeks) and the 3-D mean face of :mod:`fercli.pose`.  Left/right symmetric;
#: points not listed (the lower brow ends' neighbours, inner lips) are at 0.
MEAN_DEPTH_68 = np.zeros(68)
for _i, _z in {0: -1.0, 1: -0.95, 2: -0.85, 3: -0.7, 4: -0.5, 5: -0.3, 6: -0.1, 7: 0.05, 8: 0.1,
               17: -0.35, 18: -0.15, 19: -0.05, 20: 0.0, 21: 0.02, 27: 0.05, 28: 0.2, 29: 0.35, 30: 0.5,
               31: 0.25, 32: 0.3, 33: 0.35, 36: -0.25, 37: -0.12, 38: -0.1, 39: -0.12, 40: -0.1, 41: -0.12,
               48: -0.05, 49: 0.1, 50: 0.18, 51: 0.2, 57: 0.17, 58: 0.12, 59: 0.05, 60: 0.0, 61: 0.12,
               62: 0.15, 66: 0.14, 67: 0.1}.items():
    MEAN_DEPTH_68[_i] = MEAN_DEPTH_68[MIRROR_68[_i]] = _z
del _i, _z

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


# --------------------------------------------------------------------------- detectors
#
# One interface for every detector: ``detector(gray_or_rgb) -> list of (box, score)``
# with ``box = (x0, y0, x1, y1)`` floats in the pixel coordinates of the image it was
# given.  Callers downscale first (detection is the slow part; landmarks are then
# fitted at full resolution, where the predictor is cheap and accurate).

DETECTORS = ("hog", "mmod", "opencv-dnn", "yunet")

Box = tuple[float, float, float, float]


class FaceDetector:
    """Base class: ``__call__(image) -> [(box, score), ...]`` best first."""

    name = "?"
    #: Whether it wants a colour (RGB) image; gray-only detectors get gray.
    wants_color = False

    def __call__(self, image: np.ndarray) -> list[tuple[Box, float]]:  # pragma: no cover - interface
        raise TypeError("abstract")


class HogDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal detector (fast on CPU; faces >= ~80 px)."""

    name = "hog"

    def __init__(self, upsample: int = 0):
        self.upsample = int(upsample)
        self._det = hog_detector()

    def __call__(self, image):
        rects, scores, _ = self._det.run(np.ascontiguousarray(image), self.upsample, 0.0)
        out = [((float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1)), float(s)) for r, s in zip(rects, scores)]
        return sorted(out, key=lambda bs: -bs[1])


class MmodDetector(FaceDetector):
    """dlib's MMOD CNN detector (more robust to pose, slow on CPU)."""

    name = "mmod"

    def __init__(self, upsample: int = 0, path: Optional[str] = None):
        self.upsample = int(upsample)
        self._det = _mmod(path or mmod_model_path())

    def __call__(self, image):
        dets = self._det(np.ascontiguousarray(image), self.upsample)
        out = [((float(d.rect.left()), float(d.rect.top()), float(d.rect.right() + 1), float(d.rect.bottom() + 1)), float(d.confidence)) for d in dets]
        return sorted(out, key=lambda bs: -bs[1])


def load_dlib_model(loader: str, path: str, what: str):
    """``dlib.<loader>(path)``, with a missing or unreadable file said in one sentence."""
    import dlib

    if not os.path.isfile(path):
        raise FercliError(f"{what} {path} does not exist")
    try:
        return getattr(dlib, loader)(path)
    except RuntimeError as exc:
        raise FercliError(f"cannot load {what} {path}: {exc}") from exc


@functools.lru_cache(maxsize=2)
def _mmod(path: str):
    return load_dlib_model("cnn_face_detection_model_v1", path, "MMOD detector model")


class OpenCVDnnDetector(FaceDetector):
    """Any cv2.dnn SSD-style face detector, e.g. the res10 300x300 Caffe model of
    OpenCV's samples (thesis 4.2.7 uses OpenCV DNN detection).  Output rows are
    ``[_, _, score, x0, y0, x1, y1]`` in relative coordinates."""

    name = "opencv-dnn"
    wants_color = True

    def __init__(self, model: Optional[str], config: Optional[str] = None, threshold: float = 0.5, input_size: int = 300,
                 mean: tuple[float, float, float] = (104.0, 177.0, 123.0)):
        import cv2

        _need_file(model, "opencv-dnn")
        if config is not None and not os.path.isfile(config):
            raise FercliError(f"detector config {config} does not exist")
        try:
            self._net = cv2.dnn.readNet(model, config or "")
        except cv2.error as exc:
            raise FercliError(f"OpenCV cannot read detector model {model}: {str(exc).strip().splitlines()[-1]}") from exc
        self.threshold, self.input_size, self.mean = float(threshold), int(input_size), mean

    def __call__(self, image):
        import cv2

        h, w = image.shape[:2]
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        # The Caffe/TF models were trained on BGR: swapRB turns our RGB into it.
        blob = cv2.dnn.blobFromImage(rgb, 1.0, (self.input_size, self.input_size), self.mean, swapRB=True, crop=False)
        self._net.setInput(blob)
        out = np.asarray(self._net.forward()).reshape(-1, 7)
        found = []
        for row in out:
            score = float(row[2])
            if score < self.threshold:
                continue
            x0, y0, x1, y1 = (np.clip(row[3:7], 0.0, 1.0) * [w, h, w, h]).tolist()
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                found.append(((x0, y0, x1, y1), score))
        return sorted(found, key=lambda bs: -bs[1])


class YuNetDetector(FaceDetector):
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) with the ONNX model the user gives."""

    name = "yunet"
    wants_color = True

    def __init__(self, model: Optional[str], threshold: float = 0.6):
        import cv2

        _need_file(model, "yunet")
        try:
            self._det = cv2.FaceDetectorYN.create(model, "", (320, 320), float(threshold))
        except cv2.error as exc:
            raise FercliError(f"OpenCV cannot read YuNet model {model}: {str(exc).strip().splitlines()[-1]}") from exc
        self._size: tuple[int, int] = (320, 320)

    def __call__(self, image):
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, faces = self._det.detect(bgr)
        if faces is None:
            return []
        return sorted((((float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3])), float(f[-1])) for f in faces), key=lambda bs: -bs[1])


def _need_file(path: Optional[str], name: str) -> None:
    if not path:
        raise FercliError(f"the {name} detector needs a model file: give it with --detector-model PATH (nothing is downloaded)")
    if not os.path.isfile(path):
        raise FercliError(f"detector model {path} does not exist")


def make_detector(name: str = "hog", model: Optional[str] = None, config: Optional[str] = None, upsample: int = 0,
                  threshold: Optional[float] = None) -> FaceDetector:
    """Build a detector by name (``DETECTORS``); model files come from the user."""
    if name == "hog":
        return HogDetector(upsample)
    if name == "mmod":
        return MmodDetector(upsample, model)
    if name == "opencv-dnn":
        return OpenCVDnnDetector(model, config, 0.5 if threshold is None else threshold)
    if name == "yunet":
        return YuNetDetector(model, 0.6 if threshold is None else threshold)
    raise FercliError(f"unknown detector '{name}' (choose from {', '.join(DETECTORS)})")


_POINT_PUNCTUATION = str.maketrans("(),[]", "     ")


def predict_landmarks(predictor, gray: np.ndarray, box: Box) -> np.ndarray:
    """Landmarks (N, 2) float64 of the face in ``box`` of a full-resolution image."""
    import dlib

    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
    parts = predictor(gray, rect).parts()
    # dlib's points have no array interface; reading 2 x 68 attributes through
    # pybind11 costs a fifth of the prediction, parsing their repr
    # ("points[(x, y), ...]", integers) a fifth of that.
    xy = np.fromstring(repr(parts)[6:].translate(_POINT_PUNCTUATION), dtype=np.float64, sep=" ")
    if xy.size != 2 * len(parts):  # a dlib whose repr differs: the slow, sure way
        return np.array([(p.x, p.y) for p in parts], dtype=np.float64)
    return xy.reshape(-1, 2)


def landmarks_in_frame(gray: np.ndarray, detector=None, predictor=None) -> Optional[np.ndarray]:
    """The most confident face's 68 landmarks in one full-resolution gray frame, found by
    dlib's HOG detector with no tracking and no downscaling (the per-frame baseline
    trackers are measured against); None without a face."""
    detector = detector or hog_detector()
    rects, scores, _ = detector.run(gray, 0, 0.0)
    if not len(rects):
        return None
    r = rects[int(np.argmax(scores))]
    return predict_landmarks(predictor or shape_predictor(), gray, (r.left(), r.top(), r.right() + 1, r.bottom() + 1))
