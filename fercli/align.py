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
frame, every ``redetect_every`` frames, and whenever tracking is lost; between
detections the predictor is given a box rebuilt from the previous frame's
landmarks (dlib's shape predictor accepts any rectangle).  Tracking counts as
lost when the new landmarks jump (inter-ocular distance or eye midpoint) or the
registered face patch stops resembling the previous frame's (normalised cross
correlation), which is what happens when the face leaves or the frame blanks.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
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
TRANSFORMS = ("affine", "similarity")


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
    missing: str = "hold"
    workers: int = 1

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
        if self.detect_width < 32:
            raise FercliError(f"--detect-width must be at least 32 pixels (got {self.detect_width})")
        if not 0 <= self.upsample <= 3:
            raise FercliError(f"--upsample must be between 0 and 3 (got {self.upsample})")
        if self.workers < 1:
            raise FercliError(f"--workers must be at least 1 (got {self.workers})")

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
    """2x3 rotation + uniform scale + shift mapping ``src`` onto ``dst`` (least squares, Umeyama)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    r = u @ e @ vt
    var = (s ** 2).sum() / len(src)
    c = float((sig * np.diag(e)).sum() / var) if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = c * r
    m[:, 2] = md - c * r @ ms
    return m


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


@dataclass
class FaceState:
    """What the tracker knows about one frame."""

    found: bool
    landmarks: Optional[np.ndarray] = None  # (68, 2) full-resolution image coordinates
    box: Optional[faces.Box] = None          # detector-style box (detected or rebuilt)
    detected: bool = False                   # the detector ran on this frame
    score: float = float("nan")              # detector score of the detection this face was found or tracked from


class FaceTracker:
    """Detect on a downscaled copy now and then, track with the landmark predictor in between.

    Call it on consecutive frames of one video (``reset()`` between videos); each
    call returns a :class:`FaceState`.  The most confident detected face is followed.
    Scheduled re-detections (every ``redetect_every`` frames, to correct drift)
    search only a region around the tracked face; a lost face is searched for in
    the whole frame.
    """

    #: Tracking is lost when the inter-ocular distance changes by more than this factor...
    MAX_SCALE_JUMP = 1.3
    #: ... or the eye midpoint moves more than this many inter-ocular distances ...
    MAX_SHIFT = 0.6
    #: ... or the eye-registered patch correlates less than this with the previous frame's.
    MIN_PATCH_NCC = 0.5
    PATCH = 24
    #: Detection images are shrunk no further than to make the last known face this
    #: wide: dlib's HOG window is 80 px, smaller faces are missed.
    MIN_FACE_PX = 90
    #: A scheduled re-detection searches a square this many face widths wide.
    ROI_FACES = 2.2

    def __init__(self, detector: faces.FaceDetector, predictor, detect_width: int = 320, redetect_every: int = 10,
                 min_score: float = 0.0):
        self.detector = detector
        self.min_score = float(min_score)
        self.predictor = predictor
        self.detect_width = int(detect_width)
        self.redetect_every = int(redetect_every)
        self.detections = 0
        self.last_score = float("nan")  # score of the latest successful detection
        self.reset()

    def reset(self) -> None:
        self._prev: Optional[np.ndarray] = None
        self._patch: Optional[np.ndarray] = None
        self._box_rel: Optional[np.ndarray] = None
        self._face_width: Optional[float] = None
        self._since = 0
        self._score = float("nan")

    # -- helpers

    def _patch_of(self, gray: np.ndarray, landmarks: np.ndarray) -> Optional[np.ndarray]:
        """Zero-mean unit-norm PATCH x PATCH crop registered on the eye centres (None if flat)."""
        import cv2

        left, right = faces.eye_centres(landmarks)
        d = right - left
        iod2 = float(d @ d)
        if iod2 < 1e-6:
            return None
        # Similarity putting the eyes at (0.3, 0.35) and (0.7, 0.35) of the patch.
        k = 0.4 * self.PATCH / np.sqrt(iod2)
        c, s = d / np.sqrt(iod2) * k
        a = np.array([[c, s], [-s, c]])
        t = np.array([0.3 * self.PATCH, 0.35 * self.PATCH]) - a @ left
        m = np.hstack([a, t[:, None]])
        p = cv2.warpAffine(gray, m, (self.PATCH, self.PATCH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        p -= p.mean()
        norm = float(np.sqrt((p * p).sum()))
        # A flat patch (blank frame, lens cap) has no face to follow.
        return None if norm < 1e-3 * p.size else p / norm

    @staticmethod
    def _frame_of(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
        left, right = faces.eye_centres(landmarks)
        return (left + right) / 2, float(np.linalg.norm(right - left))

    def _rebuild_box(self, landmarks: np.ndarray) -> faces.Box:
        mid, iod = self._frame_of(landmarks)
        r = self._box_rel
        return (mid[0] + r[0] * iod, mid[1] + r[1] * iod, mid[0] + r[2] * iod, mid[1] + r[3] * iod)

    def _detect(self, frame: np.ndarray, gray: np.ndarray, near: Optional[faces.Box] = None) -> Optional[faces.Box]:
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
        if self._face_width:
            scale = min(1.0, max(scale, self.MIN_FACE_PX / self._face_width))
        box = self._detect_at(image, scale)
        if box is None and scale < 1.0 and near is None:
            # Nothing at the reduced size: the face may be small; look again at full size.
            box = self._detect_at(image, 1.0)
        if box is None:
            return None
        box = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)
        self._face_width = box[2] - box[0]
        return box

    def _detect_at(self, image: np.ndarray, scale: float) -> Optional[faces.Box]:
        import cv2

        h, w = image.shape[:2]
        small = image if scale == 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        found = [bs for bs in self.detector(np.ascontiguousarray(small)) if bs[1] >= self.min_score]
        if not found:
            return None
        # The most confident face: in expression clips the subject; "largest" picks
        # up big low-score false positives (textured backgrounds) too easily.
        (x0, y0, x1, y1), self.last_score = max(found, key=lambda bs: bs[1])
        return (x0 / scale, y0 / scale, x1 / scale, y1 / scale)

    def _accept(self, landmarks: np.ndarray, box: faces.Box, detected: bool, patch: Optional[np.ndarray]) -> FaceState:
        if detected:
            mid, iod = self._frame_of(landmarks)
            x0, y0, x1, y1 = box
            iod = max(iod, 1e-6)
            self._box_rel = np.array([(x0 - mid[0]) / iod, (y0 - mid[1]) / iod, (x1 - mid[0]) / iod, (y1 - mid[1]) / iod])
            self._since = 0
            self._score = float(self.last_score)
        else:
            self._since += 1
        self._prev = landmarks
        self._patch = patch
        return FaceState(True, landmarks, box, detected, self._score)

    def _plausible(self, landmarks: np.ndarray, patch: Optional[np.ndarray]) -> bool:
        mid, iod = self._frame_of(landmarks)
        pmid, piod = self._frame_of(self._prev)
        if not (piod / self.MAX_SCALE_JUMP <= iod <= piod * self.MAX_SCALE_JUMP):
            return False
        if np.linalg.norm(mid - pmid) > self.MAX_SHIFT * piod:
            return False
        if patch is None or self._patch is None:
            return False
        return float((patch * self._patch).sum()) >= self.MIN_PATCH_NCC

    # -- the call

    def __call__(self, frame: np.ndarray) -> FaceState:
        gray = np.ascontiguousarray(to_gray(frame))
        tracked: Optional[tuple[np.ndarray, faces.Box, Optional[np.ndarray]]] = None
        if self._prev is not None:
            box = self._rebuild_box(self._prev)
            landmarks = faces.predict_landmarks(self.predictor, gray, box)
            patch = self._patch_of(gray, landmarks)
            if self._plausible(landmarks, patch):
                if self._since + 1 < self.redetect_every:
                    return self._accept(landmarks, box, False, patch)
                tracked = (landmarks, box, patch)
        box = self._detect(frame, gray, near=tracked[1] if tracked else None)
        if box is None and tracked is not None:
            # A scheduled re-detection missed a face the tracker still holds
            # (e.g. a turned head): keep following it.
            state = self._accept(*tracked[:2], False, tracked[2])
            self._since = 0
            return state
        if box is None:
            self.reset()
            return FaceState(False, detected=True)
        landmarks = faces.predict_landmarks(self.predictor, gray, box)
        return self._accept(landmarks, box, True, self._patch_of(gray, landmarks))


def make_tracker(options: AlignOptions) -> FaceTracker:
    detector = faces.make_detector(options.detector, options.detector_model, options.detector_config, options.upsample)
    return FaceTracker(detector, faces.shape_predictor(options.predictor), options.detect_width, options.redetect_every)


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
    import cv2

    tracker.reset()
    before = tracker.detections
    states = []
    for f in frames:
        states.append(tracker(f))
        if on_frame is not None:
            on_frame()
    found = np.array([s.found for s in states], dtype=bool)
    result = ClipResult(None, None, None, None, int(found.sum()), int((~found).sum()), tracker.detections - before)
    if not found.any():
        return result
    if truth is not None and truth.shape == (len(frames), 68, 2):
        det = np.stack([s.landmarks for s, f in zip(states, found) if f])
        gt = truth[found].astype(np.float64)
        iod = np.maximum(faces.interocular(gt), 1e-6)
        result.gt_error = float((np.linalg.norm(det - gt, axis=-1).mean(-1) / iod).mean() * 100)
    size = options.size
    if options.align:
        mats = [registration_matrix(s.landmarks, size, options.transform) if s.found else None for s in states]
    else:
        mats = [box_matrix(s.box, size) if s.found else None for s in states]
    lms = [s.landmarks if s.found else None for s in states]
    boxes = [np.asarray(s.box, np.float64) if s.found else None for s in states]
    if options.missing == "drop":
        kept = np.flatnonzero(found)
    else:
        kept = np.arange(len(frames))
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

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _trace(clips: Clips, chosen: np.ndarray, results: Sequence[ClipResult]) -> dict[str, np.ndarray]:
    """Trace arrays of the aligned frames (see :class:`fercli.artifacts.Clips`): each
    registration composed with the input's own source -> frame transform, so the
    stored transform always starts from the source video; boxes mapped back to
    source pixels; source frame indices of the kept frames."""
    to_input = clips.source_transform()
    transforms, boxes, source_frame = [], [], []
    for i, r in zip(chosen.tolist(), results):
        rows = clips.offsets[i] + r.kept
        inner = to_input[rows]
        transforms.append(compose(r.transforms, inner))
        boxes.append(_boxes_to_source(r.boxes, inner))
        source_frame.append(clips.source_frame[rows] if clips.source_frame is not None else r.kept)
    return {"transform": np.concatenate(transforms), "face_box": np.concatenate(boxes).astype(np.float32),
            "face_score": np.concatenate([r.scores for r in results]), "source_frame": np.concatenate(source_frame).astype(np.int64)}


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


# Worker processes inherit these through fork (no pickling of the frames).
_JOB: dict[str, Any] = {}


def _work(i: int, on_frame: Optional[Callable[[], None]] = None) -> ClipResult:
    tracker = _JOB.get("tracker")
    if tracker is None:
        tracker = _JOB["tracker"] = make_tracker(_JOB["options"])
    clips: Clips = _JOB["clips"]
    truth = clips.landmarks[clips.offsets[i]: clips.offsets[i + 1]] if clips.landmarks is not None else None
    return align_clip(clips.clip(i), _JOB["options"], tracker, truth, on_frame)


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
    global _JOB
    _JOB = {"clips": clips, "options": options}
    results: list[ClipResult] = []
    # Progress counts frames, so a single long video moves the bar too.
    done = [0]

    def tick(n: int = 1) -> None:
        done[0] += n
        report(progress, done[0], stats.frames_in)

    try:
        if options.workers > 1 and len(index) > 1:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(min(options.workers, len(index))) as pool:
                for i, r in zip(index.tolist(), pool.imap(_work, index.tolist(), chunksize=1)):
                    results.append(r)
                    tick(int(clips.lengths[i]))
        else:
            for i in index.tolist():
                results.append(_work(i, tick))
    finally:
        _JOB = {}
    keep = [k for k, r in enumerate(results) if r.frames is not None]
    stats.dropped_clips = [str(clips.clip_ids[index[k]]) for k, r in enumerate(results) if r.frames is None]
    for r in results:
        stats.found += r.found
        stats.missing += r.missing
        stats.detections += r.detections
    errors = [(r.gt_error, r.found) for r in results if r.gt_error is not None]
    if errors:
        stats.gt_error_iod_pct = round(sum(e * n for e, n in errors) / max(1, sum(n for _, n in errors)), 3)
    if not keep:
        where = f" (first: {', '.join(stats.dropped_clips[:3])})" if stats.dropped_clips else ""
        raise FercliError(f"no face was found in any of the {len(index)} clips{where}: try --upsample 1 or another --detector")
    chosen = index[keep]
    base = clips.select(chosen) if len(chosen) else clips
    kept_results = [results[k] for k in keep]
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
    # Every per-clip array of the input carries over (labels, ids, folds, segments, fps...);
    # LBP-TOP planes and histograms described the old frames and are dropped.
    out = dataclasses.replace(
        base, frames=frames, offsets=offsets, class_names=list(clips.class_names),
        landmarks=np.concatenate([r.landmarks for r in kept_results]),
        face_found=np.concatenate([r.face_found for r in kept_results]),
        planes={}, plane_offsets=None, histograms=None, meta=meta,
        **_trace(clips, index[keep], kept_results),
    )
    stats.clips_out = len(kept_results)
    stats.frames_out = int(len(frames))
    return out, stats
