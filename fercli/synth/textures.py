"""Face photographs to warp: the embedded astronaut, or a folder of the user's own
(``--faces DIR``: dlib's landmarks and a GrabCut person mask per photograph)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from fercli import untrusted
from fercli.errors import FercliError
from fercli.faces import MIRROR_68, eye_centres
from fercli.geometry import apply_matrix
from fercli.images import IMAGE_EXTENSIONS, frame_to_gray, is_image_name


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
    """dlib HOG detector (upsampled once if it finds nothing) + 68-point predictor on
    the largest face, or None."""
    from fercli.faces import hog_detector, predict_landmarks, shape_predictor

    gray = frame_to_gray(image_rgb)
    detector = hog_detector()
    boxes = detector(gray, 0)
    if len(boxes) == 0:
        boxes = detector(gray, 1)
    if len(boxes) == 0:
        return None
    box = max(boxes, key=lambda r: r.width() * r.height())
    return predict_landmarks(shape_predictor(), gray, (box.left(), box.top(), box.right() + 1, box.bottom() + 1))


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


def _similarity_from_eyes(pts: np.ndarray) -> np.ndarray:
    """2x3 matrix mapping canonical coordinates to the pixels of ``pts``' face."""
    left, right = eye_centres(pts)
    d = right - left
    s = float(np.hypot(*d))
    c, si = d / s
    mid = (left + right) / 2
    return np.array([[s * c, -s * si, mid[0]], [s * si, s * c, mid[1]]])


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
