"""Face registration (thesis 3.2.2) and the detector + tracker shared with ``live``.

Thesis 3.2.2 locates 68 landmarks, takes "the three landmark points of eyes and
nose" and registers each face "to an average face in an affine transformation",
then keeps "a fixed rectangle around the average face" resized to 64x64 (96x96
in chapter 4, 4.2.7/4.3.1).  Here:

* landmarks: dlib's 68-point shape predictor (an ensemble-of-regression-trees
  model standing in for the thesis's ASM; same 68-point iBUG layout);
* registration points: both eye centres (mean of each eye's six points) and the
  nose tip (point 30), mapped onto :data:`fercli.faces.MEAN_FACE_68`'s;
* transform: ``affine`` (exact 3-point ``cv2.getAffineTransform``, the thesis's
  choice) or ``similarity`` (least squares rotation + uniform scale: never shears
  an expression, at the price of not matching all three points exactly);
* crop: a square of :data:`CROP_SIDE` = 2.6 inter-ocular distances centred at
  (0, :data:`CROP_CENTRE_Y` = 0.7) in mean-face units.  The mean face spans x in
  [-1.07, 1.07] and y from -0.32 (brows) to 1.73 (chin), so the crop keeps about
  0.23 IOD of margin left/right, 0.27 below the chin and 0.28 above the brows
  (part of the forehead): the whole face incl. chin and brows is inside, little
  background.  At 64 px the eyes land at (19.7, 14.8) and (44.3, 14.8).

``no_align`` (chapter 4's unaligned mode, 4.2.7/4.3.4) crops the detector's box
instead, made square and enlarged by :data:`BOX_SCALE`, with no rotation.

Video speed: the detector (the slow part) runs on a downscaled copy of the first
frame, every ``redetect_every`` frames (in a small region around the face), and
whenever tracking is lost.  In between, the predictor is given the box the
detector would have drawn, placed by a constant-velocity prediction of a
similarity fitted to the face's rigid landmarks (dlib's shape predictor accepts
any rectangle); on up to ``predict_every - 1`` frames in a row the landmarks are
instead carried by Lucas-Kanade optical flow of the rigid points while the rest of
the face moves with them (no expression change).  Tracking counts as lost when
the face jumps (scale, position), its rigid points stop fitting a face, or a
face-registered patch stops resembling the previous frame's and the last
detection's (normalised cross correlation): a face leaving, a blank frame, an
occluder.  See :class:`FaceTracker`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from fercli import faces
from fercli.artifacts import Clips, shard_indices
from fercli.errors import FercliError
from fercli.images import frame_to_gray as to_gray
from fercli.progress import ProgressFn, report

#: Side of the square crop in mean-face units (inter-ocular distances).
CROP_SIDE = 2.6
#: Vertical centre of the crop in mean-face units (y down; eyes at 0, chin at 1.73).
CROP_CENTRE_Y = 0.7
#: The unaligned crop: the detector box made square and enlarged by this factor,
#: because detector boxes (dlib's especially) cut through the brows and chin.
BOX_SCALE = 1.2
MISSING_MODES = ("hold", "interpolate", "drop")
TRANSFORMS = ("affine", "similarity", "auto")
#: ``--transform auto`` registers a clip by similarity when its face's median
#: :func:`nose_offset` exceeds this (inter-ocular distances; ~15 degrees of yaw):
#: the affine would shear that much to put the nose tip on the template's.
AUTO_MAX_NOSE_OFFSET = 0.15
#: ``--faces``: the most confident face per clip, or every face as a clip of its own.
FACE_MODES = ("best", "all")


@dataclass
class AlignOptions:
    size: int = 64
    gray: bool = True
    align: bool = True
    transform: str = "affine"
    detector: str = "hog"
    detector_model: Optional[str] = None
    detector_config: Optional[str] = None
    predictor: Optional[str] = None
    upsample: int = 0
    detect_width: int = 320
    redetect_every: int = 10
    predict_every: int = 3
    faces: str = "best"
    missing: str = "hold"
    workers: int = 1
    focal: Optional[float] = None            # head pose: the camera's focal length in source pixels (None: OpenFace's)

    def check(self) -> None:
        if not 8 <= self.size <= 1024:
            raise FercliError(f"--size must be between 8 and 1024 pixels (got {self.size})")
        if self.missing not in MISSING_MODES:
            raise FercliError(f"--missing must be one of {', '.join(MISSING_MODES)} (got '{self.missing}')")
        if self.transform not in TRANSFORMS:
            raise FercliError(f"--transform must be one of {', '.join(TRANSFORMS)} (got '{self.transform}')")
        if self.detector not in faces.DETECTORS:
            raise FercliError(f"--detector must be one of {', '.join(faces.DETECTORS)} (got '{self.detector}')")
        if self.redetect_every < 1:
            raise FercliError(f"--redetect-every must be at least 1 (got {self.redetect_every})")
        if self.faces not in FACE_MODES:
            raise FercliError(f"--faces must be one of {', '.join(FACE_MODES)} (got '{self.faces}')")
        if self.predict_every < 1:
            raise FercliError(f"--predict-every must be at least 1 (got {self.predict_every})")
        if self.detect_width < 32:
            raise FercliError(f"--detect-width must be at least 32 pixels (got {self.detect_width})")
        if not 0 <= self.upsample <= 3:
            raise FercliError(f"--upsample must be between 0 and 3 (got {self.upsample})")
        if self.workers < 1:
            raise FercliError(f"--workers must be at least 1 (got {self.workers})")
        if self.focal is not None and not 1.0 <= self.focal <= 1e6:
            raise FercliError(f"--focal must be between 1 and 1000000 pixels (got {self.focal})")

    def parameters(self) -> dict:
        p = dict(self.__dict__)
        p.pop("workers")  # does not change the output
        p.update(crop_side=CROP_SIDE, crop_centre_y=CROP_CENTRE_Y, box_scale=BOX_SCALE)
        return p


# --------------------------------------------------------------------------- geometry


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


# --------------------------------------------------------------------------- tracker

#: Landmarks that move little with expression (nose, eye corners and lids): the
#: tracker's face frame is the similarity that fits the mean face's onto them.
RIGID = np.r_[27:36, 36:48]
_RIGID_CENTROID = faces.MEAN_FACE_68[RIGID].mean(0)
_RIGID_CENTRED = faces.MEAN_FACE_68[RIGID] - _RIGID_CENTROID
_RIGID_NORM = float((_RIGID_CENTRED ** 2).sum())
# a = <p, q> / |p|^2 and b = <p rotated by 90 degrees, q> / |p|^2 over the centred points, flattened.
_RIGID_A = _RIGID_CENTRED.ravel() / _RIGID_NORM
_RIGID_B = np.stack([-_RIGID_CENTRED[:, 1], _RIGID_CENTRED[:, 0]], axis=1).ravel() / _RIGID_NORM
#: Brows, eyes, nose and mouth: the points whose flow tells an expression change.
_INNER = np.arange(17, 68)


@dataclass
class FaceFrame:
    """Where a face is: the similarity taking mean-face units onto image pixels."""

    centre: np.ndarray   # image position of the mean face's origin (the eye midpoint)
    a: float             # similarity [[a, -b], [b, a]]: scale * (cos, sin) of the roll
    b: float
    residual: float      # rms misfit of the rigid points, in inter-ocular distances

    @property
    def scale(self) -> float:
        """Pixels per mean-face unit: the inter-ocular distance the fit sees."""
        return float(np.hypot(self.a, self.b))


def face_frame(landmarks: np.ndarray) -> FaceFrame:
    """Least-squares similarity of the mean face's rigid points onto ``landmarks``'
    (closed form for 2-D).  Fitting 21 points instead of two eye centres keeps the
    frame steady under yaw, pitch and single-point errors."""
    q = landmarks[RIGID]
    qm = q.mean(0)
    qc = (q - qm).ravel()
    a, b = float(_RIGID_A @ qc), float(_RIGID_B @ qc)
    s2 = a * a + b * b
    scale = max(np.sqrt(s2), 1e-6)
    # Least-squares residual: |q|^2 - |fit|^2, the fit being the projection.
    residual = float(np.sqrt(max(0.0, float(qc @ qc) - s2 * _RIGID_NORM) / len(RIGID))) / scale
    cx, cy = _RIGID_CENTROID
    return FaceFrame(np.array([qm[0] - (a * cx - b * cy), qm[1] - (b * cx + a * cy)]), a, b, residual)


@dataclass
class FaceState:
    """What the tracker knows about one face in one frame."""

    found: bool
    landmarks: Optional[np.ndarray] = None  # (68, 2) full-resolution image coordinates
    box: Optional[faces.Box] = None          # detector-style box (detected, or rebuilt from the landmarks)
    detected: bool = False                   # the detector ran on this frame
    score: float = float("nan")              # detector score of the detection this face was found or tracked from
    face_id: int = 0                         # track number (``MultiFaceTracker``: 1, 2, ...)


@dataclass
class _Track:
    """One followed face: its landmarks and the motion model that places the next box."""

    landmarks: np.ndarray
    frame: FaceFrame
    box_rel: np.ndarray                      # detector box corners around frame.centre, in units of frame.scale
    patch: Optional[np.ndarray]
    key_patch: Optional[np.ndarray] = None   # the patch when the detector last confirmed the face
    score: float = float("nan")              # detector score at the face's last detection
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # predicted centre motion, px per frame
    motion: np.ndarray = field(default_factory=lambda: np.zeros(2))    # the last frame's centre motion
    since: int = 0                           # frames since the detector last confirmed it
    face_id: int = 0
    missed: int = 0                          # consecutive frames lost (MultiFaceTracker)
    anchor: Optional[tuple[np.ndarray, np.ndarray]] = None  # (gray frame, landmarks) where the predictor last ran
    carried: int = 0                         # frames since then, carried by optical flow

    def box(self, centre: Optional[np.ndarray] = None, scale: Optional[float] = None) -> faces.Box:
        c = self.frame.centre if centre is None else centre
        s = self.frame.scale if scale is None else scale
        r = self.box_rel
        return (c[0] + r[0] * s, c[1] + r[1] * s, c[0] + r[2] * s, c[1] + r[3] * s)


def box_iou(a: faces.Box, b: faces.Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Detect on a downscaled copy now and then, track with the landmark predictor in between.

    Call it on consecutive frames of one video (``reset()`` between videos); each
    call returns a :class:`FaceState`.  The most confident detected face is followed.

    Between detections the predictor gets the box the detector would have drawn:
    the detector's box is remembered relative to a similarity fitted to the
    face's rigid landmarks (nose, eyes), and moved to where that frame will be,
    by a damped constant-velocity prediction of its centre (a box that lags a
    fast-moving head by a tenth of its width makes the predictor slip; predicting
    the scale too fed the predictor's own scale errors back into the box).
    The predictor costs most of a frame, so on up to ``predict_every - 1`` frames
    in a row the landmarks of the last predicted frame are carried instead by
    the similarity that Lucas-Kanade flow of its rigid points gives, as long as
    the brows, eyes and mouth move with them (``MAX_NONRIGID``); an expression
    change, too few tracked points or a failed check hands the frame back to the
    predictor.
    Each result is checked (scale and position jumps, the rigid points' fit to
    the mean face, a registered patch's correlation with the previous frame's);
    a failed check means the face is lost and is searched for in the whole frame.
    Scheduled re-detections (every ``redetect_every`` frames) search a region
    around the face: when the detector's box agrees with the tracked one
    (IoU >= ``AGREE_IOU``) the tracked landmarks stand and only the remembered
    box relation moves halfway to the new detection (a single detector box is
    quantised to its window grid: refitting the landmarks on it would make them
    jump every ``redetect_every`` frames); otherwise the landmarks are fitted
    afresh in the detector's box.
    """

    #: Tracking is lost when the face's scale changes by more than this factor from
    #: the prediction ...
    MAX_SCALE_JUMP = 1.3
    #: ... or its centre lands more than this many inter-ocular distances from the prediction ...
    MAX_SHIFT = 0.6
    #: ... or the rigid landmarks stop looking like a face (rms misfit, inter-ocular distances) ...
    MAX_RESIDUAL = 0.15
    #: ... or the face-registered patch correlates less than this with the previous frame's ...
    MIN_PATCH_NCC = 0.5
    #: ... or less than this with the patch of the last detection (a track that slid
    #: off the face, e.g. behind an occluder, still resembles its previous frame).
    MIN_KEY_NCC = 0.55
    PATCH = 24
    #: Detection images are shrunk no further than to make the last known face this
    #: wide: dlib's HOG window is 80 px, smaller faces are missed.
    MIN_FACE_PX = 90
    #: A scheduled re-detection searches a square this many face widths wide.
    ROI_FACES = 1.6
    #: A re-detection with at least this IoU with the tracked box confirms the track.
    AGREE_IOU = 0.5
    #: Share of the steady frame-to-frame motion (see ``_advance``) extrapolated into the next frame.
    DAMPING = 0.9
    #: Optical-flow carrying stops when brows, eyes, nose and mouth move apart from the
    #: rigid points' similarity by more than this (rms, inter-ocular distances).
    MAX_NONRIGID = 0.02
    FLOW_WINDOW = 11

    def __init__(self, detector: faces.FaceDetector, predictor, detect_width: int = 320, redetect_every: int = 10,
                 min_score: float = 0.0, predict_every: int = 3):
        self.detector = detector
        self.min_score = float(min_score)
        self.predictor = predictor
        self.detect_width = int(detect_width)
        self.redetect_every = int(redetect_every)
        self.predict_every = int(predict_every)
        self.detections = 0
        self.reset()

    def reset(self) -> None:
        self._track: Optional[_Track] = None
        self._face_width: Optional[float] = None

    # -- building blocks (shared with MultiFaceTracker)

    def _patch_of(self, gray: np.ndarray, frame: FaceFrame) -> Optional[np.ndarray]:
        """Zero-mean unit-norm PATCH x PATCH crop of the face, registered by its frame (None if flat)."""
        import cv2

        s2 = frame.a * frame.a + frame.b * frame.b
        if s2 < 1e-6:
            return None
        # Image -> patch: the inverse similarity, then eyes at (0.3, 0.35) and (0.7, 0.35) of the patch.
        k = 0.4 * self.PATCH / s2
        a = np.array([[frame.a, frame.b], [-frame.b, frame.a]]) * k
        t = np.array([0.5 * self.PATCH, 0.35 * self.PATCH]) - a @ frame.centre
        m = np.hstack([a, t[:, None]])
        p = cv2.warpAffine(gray, m, (self.PATCH, self.PATCH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        p -= p.mean()
        norm = float(np.sqrt((p * p).sum()))
        # A flat patch (blank frame, lens cap) has no face to follow.
        return None if norm < 1e-3 * p.size else p / norm

    def _start(self, gray: np.ndarray, box: faces.Box, score: float, face_id: int = 0) -> Optional[_Track]:
        """A new track from a detector box: landmarks fitted in it, the box relation learnt."""
        landmarks = faces.predict_landmarks(self.predictor, gray, box)
        frame = face_frame(landmarks)
        if frame.residual > self.MAX_RESIDUAL:
            return None
        s = frame.scale
        rel = np.array([box[0] - frame.centre[0], box[1] - frame.centre[1], box[2] - frame.centre[0], box[3] - frame.centre[1]]) / s
        patch = self._patch_of(gray, frame)
        return _Track(landmarks, frame, rel, patch, patch, score, face_id=face_id, anchor=(gray, landmarks))

    def _follow(self, gray: np.ndarray, track: _Track) -> Optional[tuple[np.ndarray, FaceFrame, Optional[np.ndarray]]]:
        """The face in this frame, or None when the checks fail: carried by optical flow
        from the last predicted frame when allowed and the face only moved rigidly,
        otherwise fitted by the predictor in the predicted box."""
        centre = track.frame.centre + track.velocity
        scale = track.frame.scale
        if track.anchor is not None and track.carried + 1 < self.predict_every:
            landmarks = self._carry(gray, track, scale)
            if landmarks is not None:
                result = self._check(gray, track, landmarks, centre, scale)
                if result is not None:
                    track.carried += 1
                    return result
        landmarks = faces.predict_landmarks(self.predictor, gray, track.box(centre, scale))
        result = self._check(gray, track, landmarks, centre, scale)
        track.anchor, track.carried = ((gray, landmarks), 0) if result is not None else (None, 0)
        return result

    def _check(self, gray: np.ndarray, track: _Track, landmarks: np.ndarray, centre: np.ndarray, scale: float):
        """(landmarks, frame, patch) if they still follow the face (see the class notes), else None."""
        frame = face_frame(landmarks)
        if not scale / self.MAX_SCALE_JUMP <= frame.scale <= scale * self.MAX_SCALE_JUMP:
            return None
        if float(np.hypot(*(frame.centre - centre))) > self.MAX_SHIFT * scale or frame.residual > self.MAX_RESIDUAL:
            return None
        patch = self._patch_of(gray, frame)
        if patch is None or track.patch is None or float((patch * track.patch).sum()) < self.MIN_PATCH_NCC:
            return None
        if track.key_patch is not None and float((patch * track.key_patch).sum()) < self.MIN_KEY_NCC:
            return None
        return landmarks, frame, patch

    def _carry(self, gray: np.ndarray, track: _Track, scale: float) -> Optional[np.ndarray]:
        """The anchor frame's landmarks moved by the similarity that pyramidal Lucas-Kanade
        flow of its rigid points (anchor -> this frame) gives; None when too few points
        are tracked or the other points moved differently (the expression changed, so
        the predictor has to look)."""
        import cv2

        anchor_gray, anchor = track.anchor
        guess = track.landmarks + track.velocity
        h, w = gray.shape[:2]
        margin = 0.25 * scale
        lo = np.maximum(np.floor(np.minimum(anchor.min(0), guess.min(0)) - margin), 0).astype(int)
        hi = np.minimum(np.ceil(np.maximum(anchor.max(0), guess.max(0)) + margin), [w, h]).astype(int)
        if np.any(hi - lo < 16) or anchor_gray.shape != gray.shape:
            return None
        p0 = (anchor - lo).astype(np.float32)
        p1, status, _ = cv2.calcOpticalFlowPyrLK(
            anchor_gray[lo[1]:hi[1], lo[0]:hi[0]], gray[lo[1]:hi[1], lo[0]:hi[0]], p0, (guess - lo).astype(np.float32),
            winSize=(self.FLOW_WINDOW, self.FLOW_WINDOW), maxLevel=1, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
            criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 10, 0.03))
        ok = status.ravel() == 1
        rigid = RIGID[ok[RIGID]]
        if len(rigid) < len(RIGID) // 2:
            return None
        m = similarity_lstsq(p0[rigid], p1[rigid])
        # One refit without the points that moved unlike the rest (flow outliers).
        err = np.hypot(*(apply_matrix(m, p0[rigid]) - p1[rigid]).T)
        keep = err <= 2.5 * np.partition(err, len(err) // 2)[len(err) // 2] + 0.3
        if keep.sum() < len(RIGID) // 2:
            return None
        if not keep.all():
            m = similarity_lstsq(p0[rigid[keep]], p1[rigid[keep]])
        inner = _INNER[ok[_INNER]]
        moved = p0[inner] @ m[:, :2].T + m[:, 2]
        if float(np.sqrt(((moved - p1[inner]) ** 2).sum(1).mean())) > self.MAX_NONRIGID * scale:
            return None
        return (anchor - lo) @ m[:, :2].T + m[:, 2] + lo

    def _advance(self, track: _Track, landmarks: np.ndarray, frame: FaceFrame, patch: Optional[np.ndarray]) -> None:
        """Move ``track`` to this frame's result and update its motion model."""
        motion = frame.centre - track.frame.centre
        # Minmod of the last two motions, per axis: the smaller when they agree, 0 when
        # they disagree, so one jump (a cut in the video, a re-acquired face) is not
        # extrapolated into the next frame, while steady motion is.
        steady = np.where(motion * track.motion > 0, np.sign(motion) * np.minimum(np.abs(motion), np.abs(track.motion)), 0.0)
        track.velocity = self.DAMPING * steady
        track.motion = motion
        track.landmarks, track.frame, track.patch = landmarks, frame, patch
        track.since += 1

    def _confirm(self, track: _Track, box: faces.Box, score: float) -> bool:
        """A re-detection near ``track``: if it agrees, move the box relation halfway to
        it and return True; otherwise False (the caller refits in the detector's box)."""
        if box_iou(track.box(), box) < self.AGREE_IOU:
            return False
        c, s = track.frame.centre, track.frame.scale
        rel = np.array([box[0] - c[0], box[1] - c[1], box[2] - c[0], box[3] - c[1]]) / s
        track.box_rel = 0.5 * (track.box_rel + rel)
        track.since = 0
        track.score = float(score)
        track.key_patch = track.patch
        return True

    def _detect(self, frame: np.ndarray, gray: np.ndarray, near: Optional[faces.Box] = None,
                face_width: Optional[float] = None) -> list[tuple[faces.Box, float]]:
        """Detections (best first) in the frame or, with ``near``, a region around that box."""
        self.detections += 1
        image = frame if (self.detector.wants_color and frame.ndim == 3) else gray
        h, w = image.shape[:2]
        x0 = y0 = 0
        if near is not None:
            cx, cy = (near[0] + near[2]) / 2, (near[1] + near[3]) / 2
            half = self.ROI_FACES * max(near[2] - near[0], near[3] - near[1]) / 2
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
            if x1 - x0 >= 16 and y1 - y0 >= 16:
                image = image[y0:y1, x0:x1]
            else:
                x0 = y0 = 0
        scale = min(1.0, self.detect_width / float(w))
        width = face_width if face_width is not None else self._face_width
        if width:
            scale = min(1.0, max(scale, self.MIN_FACE_PX / width))
        found = self._detect_at(image, scale)
        if not found and scale < 1.0 and near is None:
            # Nothing at the reduced size: the face may be small; look again at full size.
            found = self._detect_at(image, 1.0)
        return [((b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0), s) for b, s in found]

    def _detect_at(self, image: np.ndarray, scale: float) -> list[tuple[faces.Box, float]]:
        import cv2

        h, w = image.shape[:2]
        small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        found = [bs for bs in self.detector(np.ascontiguousarray(small)) if bs[1] >= self.min_score]
        # The most confident face first: in expression clips the subject; "largest" picks
        # up big low-score false positives (textured backgrounds) too easily.
        found.sort(key=lambda bs: -bs[1])
        return [((x0 / scale, y0 / scale, x1 / scale, y1 / scale), s) for (x0, y0, x1, y1), s in found]

    @staticmethod
    def _state(track: _Track, detected: bool) -> FaceState:
        return FaceState(True, track.landmarks, track.box(), detected, track.score, track.face_id)

    # -- the call

    def __call__(self, frame: np.ndarray) -> FaceState:
        gray = np.ascontiguousarray(to_gray(frame))
        track = self._track
        followed = self._follow(gray, track) if track is not None else None
        if followed is not None:
            self._advance(track, *followed)
            self._face_width = (track.box_rel[2] - track.box_rel[0]) * track.frame.scale
            if track.since < self.redetect_every:
                return self._state(track, False)
            found = self._detect(frame, gray, near=track.box())
            if found and self._confirm(track, *found[0]):
                return self._state(track, True)
            if not found:
                # A scheduled re-detection missed a face the tracker still holds
                # (e.g. a turned head): keep following it.
                track.since = 0
                return self._state(track, True)
        else:
            found = self._detect(frame, gray)
        for box, score in found[:1]:
            new = self._start(gray, box, score)
            if new is not None:
                self._track = new
                self._face_width = box[2] - box[0]
                return self._state(new, True)
        self.reset()
        return FaceState(False, detected=True)


class MultiFaceTracker(FaceTracker):
    """Every face in the picture, each followed as :class:`FaceTracker` follows one,
    with an id: 0, 1, ... in order of first appearance (faces that appear together
    are numbered left to right).  Each call returns the found faces' states,
    sorted by id.

    The detector searches the whole frame on the first frame, every
    ``redetect_every`` frames (new faces appear then), whenever a followed face is
    lost, and on every frame while no face is followed.  A detection overlapping
    a followed face (IoU >= ``MATCH_IOU``) belongs to it: it confirms the track
    when they agree (IoU >= ``AGREE_IOU``), otherwise the face is refitted in the
    detector's box, keeping its id.  An unmatched detection overlapping where a
    recently lost face was takes back that face's id if its face descriptor
    agrees (``reidentify``, :mod:`fercli.identity`); any other takes the id of the
    face seen before in this video whose descriptor is closest within
    :data:`fercli.identity.SAME_FACE` (a face that left, was occluded, or came
    back after a cut, however long ago), or else starts a new face.  Without
    ``reidentify`` a face lost for more than ``keep_lost`` frames is forgotten:
    when it comes back it is a new face.  Two tracks that converge on one face
    (IoU >= ``AGREE_IOU``) keep the older id.
    """

    MATCH_IOU = 0.3

    def __init__(self, *args, keep_lost: int = 30, reidentify: bool = True, **kwargs):
        from fercli import identity

        self.keep_lost = int(keep_lost)
        self.gallery = identity.Gallery() if reidentify else None
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        super().reset()
        if self.gallery is not None:
            self.gallery.clear()
        self._tracks: list[_Track] = []
        self._lost: list[_Track] = []
        self._next_id = 0
        self._since_search = 0

    def __call__(self, frame: np.ndarray) -> list[FaceState]:  # type: ignore[override]
        gray = np.ascontiguousarray(to_gray(frame))
        alive, lost_now = [], False
        for track in self._tracks:
            followed = self._follow(gray, track)
            if followed is None:
                track.missed, lost_now = 0, True
                self._lost.append(track)
            else:
                self._advance(track, *followed)
                alive.append(track)
        self._tracks = self._unique(alive)
        self._since_search += 1
        searched = not self._tracks or lost_now or self._since_search >= self.redetect_every
        if searched:
            self._search(frame, gray)
        for track in self._lost:
            track.missed += 1
        self._lost = [t for t in self._lost if t.missed <= self.keep_lost]
        return [self._state(t, searched) for t in sorted(self._tracks, key=lambda t: t.face_id)]

    def _unique(self, tracks: list[_Track]) -> list[_Track]:
        out: list[_Track] = []
        for track in sorted(tracks, key=lambda t: t.face_id):
            if all(box_iou(track.box(), kept.box()) < self.AGREE_IOU for kept in out):
                out.append(track)
        return out

    def _search(self, frame: np.ndarray, gray: np.ndarray) -> None:
        """Detect in the whole frame and match the detections to the faces (class notes)."""
        self._since_search = 0
        widths = [(t.box_rel[2] - t.box_rel[0]) * t.frame.scale for t in self._tracks]
        found = self._detect(frame, gray, face_width=min(widths) if widths else None)
        tracks = {t.face_id: t for t in self._tracks}
        pairs = sorted(((box_iou(t.box(), box), k, t.face_id) for k, (box, _) in enumerate(found) for t in self._tracks), reverse=True)
        taken, matched = set(), set()
        for iou, k, fid in pairs:
            if iou < self.MATCH_IOU:
                break
            if k in taken or fid in matched:
                continue
            taken.add(k)
            matched.add(fid)
            box, score = found[k]
            if not self._confirm(tracks[fid], box, score):
                new = self._start(gray, box, score, fid)
                if new is not None:
                    tracks[fid] = new
        for track in tracks.values():
            if track.face_id not in matched:
                track.since = 0  # the detector missed a face still followed (a turned head): keep it
        fresh = sorted((found[k] for k in range(len(found)) if k not in taken), key=lambda bs: bs[0][0])
        for box, score in fresh:
            back = max(self._lost, key=lambda t: box_iou(t.box(t.frame.centre + t.velocity * t.missed), box), default=None)
            if back is not None and box_iou(back.box(back.frame.centre + back.velocity * back.missed), box) >= self.MATCH_IOU:
                fid = back.face_id
            else:
                fid = self._next_id
            new = self._start(gray, box, score, fid)
            if new is None:
                continue
            fid = self._reidentify(frame, new, fid, tracks)
            if fid == self._next_id:
                self._next_id += 1
            self._lost = [t for t in self._lost if t.face_id != fid]
            new.face_id = fid
            tracks[fid] = new
        self._tracks = self._unique(list(tracks.values()))

    def _reidentify(self, frame: np.ndarray, new: _Track, fid: int, tracks: dict) -> int:
        """The id a newly found face gets, by its face descriptor (:class:`fercli.identity.Gallery`):
        a face seen before in this video (after an exit, occlusion or cut, however long
        ago) takes its id back; a face overlapping where a lost one was keeps that one's
        id only if it is that person; else ``fid``."""
        if self.gallery is None:
            return fid
        from fercli import identity

        desc = identity.descriptor(frame, new.landmarks)
        if fid != self._next_id and not self.gallery.distance_to(fid, desc) < self.gallery.threshold:
            fid = self._next_id  # where a lost face was, but someone else (a cut)
        if fid == self._next_id:
            fid = self.gallery.match(desc, exclude=list(tracks)) if self.gallery.known else None
            fid = self._next_id if fid is None else fid
        self.gallery.add(fid, desc)
        return fid


def make_tracker(options: AlignOptions) -> FaceTracker:
    detector = faces.make_detector(options.detector, options.detector_model, options.detector_config, options.upsample)
    kind = MultiFaceTracker if options.faces == "all" else FaceTracker
    return kind(detector, faces.shape_predictor(options.predictor), options.detect_width, options.redetect_every,
                predict_every=options.predict_every)


# --------------------------------------------------------------------------- one clip


@dataclass
class ClipResult:
    frames: Optional[np.ndarray]       # (T', S, S[, 3]) or None when no face at all
    landmarks: Optional[np.ndarray]    # (T', 68, 2) crop coordinates
    face_found: Optional[np.ndarray]   # (T',)
    kept: Optional[np.ndarray]         # indices of the input frames kept
    found: int = 0
    missing: int = 0
    detections: int = 0
    gt_error: Optional[float] = None   # mean landmark error vs input landmarks, % IOD
    transforms: Optional[np.ndarray] = None  # (T', 2, 3) input-frame -> crop affines (registration)
    boxes: Optional[np.ndarray] = None       # (T', 4) face box x0, y0, x1, y1 in input-frame pixels
    scores: Optional[np.ndarray] = None      # (T',) detector score, NaN where no face was found
    face_id: int = 0                         # which face of the clip (``--faces all``)
    transform: str = ""                      # the registration used (``--transform auto`` picks per clip)


def _fill(values: list[Optional[np.ndarray]], found: np.ndarray, mode: str) -> list[np.ndarray]:
    """Give every missing frame the previous found frame's value (hold) or the linear
    blend of its found neighbours (interpolate); frames before the first found one
    take the first found value (there is nothing earlier to hold)."""
    idx = np.flatnonzero(found)
    out = list(values)
    for t in np.flatnonzero(~found):
        after = idx[np.searchsorted(idx, t)] if np.searchsorted(idx, t) < len(idx) else None
        before = idx[np.searchsorted(idx, t) - 1] if np.searchsorted(idx, t) > 0 else None
        if before is None:
            out[t] = values[after]
        elif after is None or mode == "hold":
            out[t] = values[before]
        else:
            w = (t - before) / (after - before)
            out[t] = (1 - w) * values[before] + w * values[after]
    return out


def align_clip(frames: np.ndarray, options: AlignOptions, tracker: FaceTracker, truth: Optional[np.ndarray] = None,
               on_frame: Optional[Callable[[], None]] = None) -> ClipResult:
    """Track, register and crop one clip (thesis 3.2.2); see the module docstring.
    ``on_frame`` is called after each tracked frame (progress on long videos)."""
    tracker.reset()
    before = tracker.detections
    states = []
    for f in frames:
        states.append(tracker(f))
        if on_frame is not None:
            on_frame()
    return register_clip(frames, states, options, tracker.detections - before, truth)


def align_faces(frames: np.ndarray, options: AlignOptions, tracker: "MultiFaceTracker", truth: Optional[np.ndarray] = None,
                on_frame: Optional[Callable[[], None]] = None) -> list[ClipResult]:
    """Every face of one clip as its own result (``--faces all``), each spanning the
    frames from the face's first to its last appearance; in between, frames it was
    lost in are filled as ``--missing`` says.  ``truth`` (one face's landmarks, as
    synth stores) is compared with the face it lies on."""
    tracker.reset()
    before = tracker.detections
    per_frame = []
    for f in frames:
        per_frame.append({s.face_id: s for s in tracker(f)})
        if on_frame is not None:
            on_frame()
    detections = tracker.detections - before
    ids = sorted({fid for states in per_frame for fid in states})
    if not ids:
        return [ClipResult(None, None, None, None, 0, len(frames), detections)]
    has_truth = truth is not None and truth.shape == (len(frames), 68, 2)
    owner = _truth_owner(per_frame, truth) if has_truth else None
    results = []
    for fid in ids:
        seen = [t for t, states in enumerate(per_frame) if fid in states]
        states = [states.get(fid, FaceState(False)) for states in per_frame]
        r = register_clip(frames, states, options, detections if fid == ids[0] else 0, truth if owner == fid else None,
                          span=(seen[0], seen[-1]))
        r.face_id = fid
        results.append(r)
    return results


def _truth_owner(per_frame: list[dict[int, FaceState]], truth: np.ndarray) -> Optional[int]:
    """The face whose landmarks lie on ``truth`` (mean centroid distance under half an
    inter-ocular distance), or None."""
    dist: dict[int, list[float]] = {}
    for states, gt in zip(per_frame, truth.astype(np.float64)):
        iod = max(float(faces.interocular(gt)), 1e-6)
        for fid, s in states.items():
            dist.setdefault(fid, []).append(float(np.hypot(*(s.landmarks.mean(0) - gt.mean(0)))) / iod)
    if not dist:
        return None
    fid = min(dist, key=lambda k: float(np.mean(dist[k])))
    return fid if float(np.mean(dist[fid])) < 0.5 else None


def register_clip(frames: np.ndarray, states: list[FaceState], options: AlignOptions, detections: int = 0,
                  truth: Optional[np.ndarray] = None, span: Optional[tuple[int, int]] = None) -> ClipResult:
    """Register and crop the frames of one face given its per-frame tracker states;
    ``span`` (first, last) limits the output to those frames (one face of several)."""
    import cv2

    found = np.array([s.found for s in states], dtype=bool)
    first, last = span if span is not None else (0, len(frames) - 1)
    inside = np.zeros(len(frames), bool)
    inside[first:last + 1] = True
    result = ClipResult(None, None, None, None, int(found.sum()), int((~found & inside).sum()), detections)
    if not found.any():
        return result
    if truth is not None and truth.shape == (len(frames), 68, 2):
        det = np.stack([s.landmarks for s, f in zip(states, found) if f])
        gt = truth[found].astype(np.float64)
        iod = np.maximum(faces.interocular(gt), 1e-6)
        result.gt_error = float((np.linalg.norm(det - gt, axis=-1).mean(-1) / iod).mean() * 100)
    size = options.size
    kind = options.transform
    if kind == "auto":
        offset = float(np.median([nose_offset(s.landmarks) for s in states if s.found]))
        kind = "similarity" if offset > AUTO_MAX_NOSE_OFFSET else "affine"
    result.transform = kind
    if options.align:
        mats = [registration_matrix(s.landmarks, size, kind) if s.found else None for s in states]
    else:
        mats = [box_matrix(s.box, size) if s.found else None for s in states]
    lms = [s.landmarks if s.found else None for s in states]
    boxes = [np.asarray(s.box, np.float64) if s.found else None for s in states]
    if options.missing == "drop":
        kept = np.flatnonzero(found)
    else:
        kept = np.arange(first, last + 1)
        mats = _fill(mats, found, options.missing)
        lms = _fill(lms, found, options.missing)
        boxes = _fill(boxes, found, options.missing)
    out_frames, out_lms = [], []
    for t in kept:
        src = to_gray(frames[t]) if options.gray else frames[t]
        out_frames.append(cv2.warpAffine(np.ascontiguousarray(src), mats[t], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        out_lms.append(apply_matrix(mats[t], lms[t]))
    result.frames = np.stack(out_frames)
    result.landmarks = np.stack(out_lms).astype(np.float32)
    result.face_found = found[kept]
    result.kept = kept
    result.transforms = np.stack([mats[t] for t in kept])
    result.boxes = np.stack([boxes[t] for t in kept]).astype(np.float32)
    result.scores = np.array([states[t].score if states[t].found else np.nan for t in kept], np.float32)
    return result


# --------------------------------------------------------------------------- whole artifact


@dataclass
class AlignStats:
    clips_in: int = 0
    clips_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    found: int = 0
    missing: int = 0
    detections: int = 0
    dropped_clips: list[str] = field(default_factory=list)
    gt_error_iod_pct: Optional[float] = None
    similarity_clips: int = 0                # clips --transform auto registered by similarity

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _trace(clips: Clips, chosen: np.ndarray, results: Sequence[ClipResult], focal: Optional[float] = None) -> dict[str, np.ndarray]:
    """Trace arrays of the aligned frames (see :class:`fercli.artifacts.Clips`): each
    registration composed with the input's own source -> frame transform, so the
    stored transform always starts from the source video; boxes mapped back to
    source pixels; source frame indices of the kept frames; the head pose of each
    frame's landmarks in source pixels (:mod:`fercli.pose`, the camera centred on
    the source video)."""
    from fercli import pose

    to_input = clips.source_transform()
    h, w = clips.frames.shape[1:3]
    transforms, boxes, source_frame, poses = [], [], [], []
    for i, r in zip(chosen.tolist(), results):
        rows = clips.offsets[i] + r.kept
        inner = to_input[rows]
        transforms.append(compose(r.transforms, inner))
        boxes.append(_boxes_to_source(r.boxes, inner))
        source_frame.append(clips.source_frame[rows] if clips.source_frame is not None else r.kept)
        # The source video's size: the input frame's corner mapped back (ingest only scales).
        src_w, src_h = np.abs(invert(inner[:1])[0, :, :2] @ [w, h])
        poses.append(pose.head_poses(map_points(invert(transforms[-1]), r.landmarks.astype(np.float64)), src_w, src_h, focal))
    return {"transform": np.concatenate(transforms), "face_box": np.concatenate(boxes).astype(np.float32),
            "face_score": np.concatenate([r.scores for r in results]), "source_frame": np.concatenate(source_frame).astype(np.int64),
            "head_pose": np.concatenate(poses)}


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


def _boxes_to_source(boxes: np.ndarray, to_input: np.ndarray) -> np.ndarray:
    """(F, 4) boxes in input-frame pixels -> the source pixels' bounding boxes."""
    x0, y0, x1, y1 = (boxes[:, k].astype(np.float64) for k in range(4))
    corners = np.stack([np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x0, y1], -1), np.stack([x1, y1], -1)], 1)
    back = map_points(invert(to_input), corners)
    return np.concatenate([back.min(1), back.max(1)], axis=1)


# --------------------------------------------------------------------------- worker processes
#
# --workers N runs clips in N processes started by a fork server (a clean
# single-threaded process that imported this module and loaded the default
# landmark model once, :mod:`fercli.align_preload`): forking the CLI process
# itself, whose OpenCV/OpenMP thread pools may hold locks at that moment, is
# the classic multiprocessing hang.  Workers ignore SIGINT/SIGTERM (Ctrl-C
# reaches the whole process group); the parent kills them on any exception,
# including the Interrupted of its own signal handler, so a stop is one
# sentence and never a hang.  Each clip is tracked from a reset tracker, so the
# output does not depend on which worker ran which clip: it is byte-identical
# to --workers 1.

#: This process's worker state: the options and the tracker (built once per worker).
_JOB: dict[str, Any] = {}
#: Clips in flight per worker (bounds the frames held in the pipes).
_IN_FLIGHT = 2


def _work(i: int, on_frame: Optional[Callable[[], None]] = None) -> list[ClipResult]:
    """Align clip ``i`` of the clips held in ``_JOB`` (the single-process path)."""
    clips: Clips = _JOB["clips"]
    truth = clips.landmarks[clips.offsets[i]: clips.offsets[i + 1]] if clips.landmarks is not None else None
    return _work_frames(clips.clip(i), truth, on_frame)


def _work_frames(frames: np.ndarray, truth: Optional[np.ndarray], on_frame: Optional[Callable[[], None]] = None) -> list[ClipResult]:
    """The results of one input clip: one, or one per face with ``--faces all``."""
    tracker = _JOB.get("tracker")
    if tracker is None:
        tracker = _JOB["tracker"] = make_tracker(_JOB["options"])
    if isinstance(tracker, MultiFaceTracker):
        return align_faces(frames, _JOB["options"], tracker, truth, on_frame)
    return [align_clip(frames, _JOB["options"], tracker, truth, on_frame)]


def _init_worker(options: AlignOptions) -> None:
    import signal

    # The parent decides when to stop; a worker never prints a traceback for Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _JOB.clear()
    _JOB["options"] = options


def _pooled(clips: Clips, index: np.ndarray, options: AlignOptions, tick: Callable[[int], None]) -> list[list[ClipResult]]:
    """Align clips ``index`` in ``options.workers`` processes, results in clip order."""
    import collections
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["fercli.align_preload"])
    _start_quiet_forkserver()
    n = min(options.workers, len(index))
    executor = ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(options,))
    results: list[list[ClipResult]] = []
    try:
        todo = iter(index.tolist())
        pending: collections.deque = collections.deque()

        def submit() -> None:
            i = next(todo, None)
            if i is not None:
                truth = clips.landmarks[clips.offsets[i]: clips.offsets[i + 1]] if clips.landmarks is not None else None
                pending.append(executor.submit(_work_frames, clips.clip(i), truth))

        for _ in range(n * _IN_FLIGHT):
            submit()
        while pending:
            results.append(pending.popleft().result())
            submit()
            tick(int(clips.lengths[index[len(results) - 1]]))
    except BrokenProcessPool:
        _stop(executor)
        raise FercliError(f"an align worker process died (killed, or out of memory?): try fewer --workers than {options.workers}") from None
    except BaseException:
        _stop(executor)
        raise
    executor.shutdown(wait=True)
    return results


def _start_quiet_forkserver() -> None:
    """Start the fork server with stderr on /dev/null: workers report through their
    results, and a worker cut off while it starts (the parent stopping) must not
    print a traceback under fercli's one sentence."""
    from multiprocessing import forkserver

    try:
        saved = os.dup(2)
    except OSError:
        forkserver.ensure_running()
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            forkserver.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _stop(executor) -> None:
    """Kill the workers (they ignore SIGTERM) and let the executor wind down."""
    processes = list(getattr(executor, "_processes", {}).values())
    for p in processes:
        with contextlib.suppress(Exception):
            p.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(5)


def align(clips: Clips, options: AlignOptions, shard: Optional[tuple[int, int]] = None,
          progress: Optional[ProgressFn] = None) -> tuple[Clips, AlignStats]:
    """Register every clip's faces (thesis 3.2.2; ``no_align``: 4.2.7's unaligned crops).

    Returns the aligned clips (landmarks in crop coordinates, ``face_found`` per
    frame) and counts.  Clips with no face at all are dropped and listed in the
    stats; if nothing is left that is an error.
    """
    options.check()
    if clips.frames.ndim == 4 and clips.frames.shape[-1] == 1:
        # (F, H, W, 1) is gray stored with a channel axis.
        clips = Clips(**{**clips.__dict__, "frames": clips.frames[..., 0]})
    if not options.gray and not clips.is_color:
        raise FercliError("--color needs colour input frames, but these are gray: use --gray")
    if options.detector in ("opencv-dnn", "yunet") or options.predictor:
        make_tracker(options)  # fail on a missing/bad model file before any work
    index = shard_indices(len(clips), shard)
    stats = AlignStats(clips_in=len(index), frames_in=int(clips.lengths[index].sum()))
    results: list[list[ClipResult]] = []
    # Progress counts frames, so a single long video moves the bar too.
    done = [0]

    def tick(n: int = 1) -> None:
        done[0] += n
        report(progress, done[0], stats.frames_in)

    if options.workers > 1 and len(index) > 1:
        results = _pooled(clips, index, options, tick)
    else:
        _JOB.clear()
        _JOB.update(clips=clips, options=options)
        try:
            for i in index.tolist():
                results.append(_work(i, tick))
        finally:
            _JOB.clear()
    # One result per input clip, or one per face of it with --faces all.
    owners = np.array([i for i, rs in zip(index.tolist(), results) for _ in rs], dtype=np.int64)
    flat = [r for rs in results for r in rs]
    keep = [k for k, r in enumerate(flat) if r.frames is not None]
    stats.dropped_clips = [str(clips.clip_ids[i]) for i, rs in zip(index.tolist(), results) if all(r.frames is None for r in rs)]
    for r in flat:
        stats.similarity_clips += r.transform == "similarity" and options.transform == "auto"
        stats.found += r.found
        stats.missing += r.missing
        stats.detections += r.detections
    errors = [(r.gt_error, r.found) for r in flat if r.gt_error is not None]
    if errors:
        stats.gt_error_iod_pct = round(sum(e * n for e, n in errors) / max(1, sum(n for _, n in errors)), 3)
    if not keep:
        where = f" (first: {', '.join(stats.dropped_clips[:3])})" if stats.dropped_clips else ""
        raise FercliError(f"no face was found in any of the {len(index)} clips{where}: try --upsample 1 or another --detector")
    chosen = owners[keep]
    base = clips.select(chosen) if len(chosen) else clips
    kept_results = [flat[k] for k in keep]
    clip_ids, face_id, subjects = base.clip_ids, base.face_id, base.subjects
    if options.faces == "all":
        clip_ids = np.array([f"{cid}#face{r.face_id}" for cid, r in zip(base.clip_ids, kept_results)], dtype=object)
        face_id = np.array([r.face_id for r in kept_results], dtype=np.int64)
        # Faces of one clip keep its subject; with none recorded, each face is its own.
        subjects = np.array([str(s) or str(c) for s, c in zip(base.subjects, clip_ids)], dtype=object)
    frames = np.concatenate([r.frames for r in kept_results])
    lengths = [len(r.frames) for r in kept_results]
    offsets = np.zeros(len(kept_results) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    meta = dict(clips.meta)
    meta["align"] = options.parameters()
    meta["size"] = options.size
    meta["aligned"] = bool(options.align)
    meta["color"] = not options.gray
    meta["landmarks"] = "detected (dlib 68-point predictor), crop pixels; source pixels through 'transform'"
    # Every per-clip array of the input carries over (labels, ids, folds, segments, fps...;
    # with --faces all once per face, ids suffixed);
    # LBP-TOP planes and histograms described the old frames and are dropped.
    out = dataclasses.replace(
        base, frames=frames, offsets=offsets, class_names=list(clips.class_names),
        landmarks=np.concatenate([r.landmarks for r in kept_results]),
        face_found=np.concatenate([r.face_found for r in kept_results]),
        planes={}, plane_offsets=None, histograms=None, meta=meta, clip_ids=clip_ids, face_id=face_id, subjects=subjects,
        **_trace(clips, chosen, kept_results, options.focal),
    )
    stats.clips_out = len(kept_results)
    stats.frames_out = int(len(frames))
    return out, stats
