"""Face detection + tracking on video, shared by ``align`` (thesis 3.2.2) and ``live``.

The detector (the slow part) runs on a downscaled copy of the first frame, every
``redetect_every`` frames (in a small region around the face), and whenever
tracking is lost.  In between, the predictor is given the box the detector would
have drawn, placed by a constant-velocity prediction of a similarity fitted to
the face's rigid landmarks (dlib's shape predictor accepts any rectangle); on up
to ``predict_every - 1`` frames in a row the landmarks are instead carried by
Lucas-Kanade optical flow of the rigid points while the rest of the face moves
with them (no expression change); when only the chin and mouth move on their own
(talking), the predictor refits the jaw and mouth and flow keeps the rest.  Tracking counts as lost when the face jumps
(scale, position), its rigid points stop fitting a face, or a face-registered
patch stops resembling the previous frame's and the last detection's
(normalised cross correlation): a face leaving, a blank frame, an occluder.
See :class:`FaceTracker` and :class:`MultiFaceTracker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from fercli import faces
from fercli.geometry import apply_matrix, similarity_lstsq
from fercli.images import frame_to_gray as to_gray

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
#: Chin and mouth: the points talking moves (jaw drop, lip rounding and spreading).
_LOWER = np.r_[5:12, 48:68]
#: Jaw line and mouth: what the predictor refits when only the chin and mouth moved.
_REFIT = np.r_[0:17, 48:68]
#: The 68-point layout's regions, as the benchmark and the tests report landmark error.
REGIONS: dict[str, np.ndarray] = {"jaw": np.r_[0:17], "brows": np.r_[17:27], "nose": np.r_[27:36],
                                  "eyes": np.r_[36:48], "mouth": np.r_[48:68]}


def region_errors(landmarks: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame and region (:data:`REGIONS`, plus ``all``), the mean distance of
    ``landmarks`` (N, 68, 2) from ``reference``'s, in % of the reference's
    inter-ocular distance."""
    dist = np.linalg.norm(np.asarray(landmarks, np.float64) - reference, axis=-1)
    iod = faces.interocular(reference)[:, None] / 100
    errors = {name: (dist[:, idx] / iod).mean(-1) for name, idx in REGIONS.items()}
    errors["all"] = (dist / iod).mean(-1)
    return errors


def opening_errors(landmarks: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame of one clip, how far the jaw drop (chin, point 8, to the nose bridge,
    27) and the lip opening (51 to 57) of ``landmarks`` (N, 68, 2) are from
    ``truth``'s, in % of the truth's inter-ocular distance, the clip's median
    difference removed: dlib's and synth's landmark definitions differ by a constant
    gap per face that says nothing about tracking, while a talking mouth that the
    tracker lags shows up frame by frame."""
    def openings(points: np.ndarray) -> np.ndarray:
        return np.stack([np.linalg.norm(points[:, 8] - points[:, 27], axis=-1),
                         np.linalg.norm(points[:, 57] - points[:, 51], axis=-1)], axis=1)

    diff = (openings(np.asarray(landmarks, np.float64)) - openings(truth)) / faces.interocular(truth)[:, None] * 100
    diff = np.abs(diff - np.median(diff, axis=0))
    return {"jaw drop": diff[:, 0], "lip opening": diff[:, 1]}


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
    predictor.  A carried frame whose chin and mouth alone move unlike the rigid
    points (``MAX_MOUTH_NONRIGID``: talking) gets its jaw and mouth from the
    predictor in the predicted box (issue 22: carried rigidly, they lagged speech).
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
    #: ... or the chin and mouth alone by more than this: a talking mouth moves a
    #: third of the points, which the rms over all of them dilutes below ``MAX_NONRIGID``.
    MAX_MOUTH_NONRIGID = 0.012
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
            carried = self._carry(gray, track, scale)
            if carried is not None:
                landmarks, talking = carried
                if talking:
                    # The rest of the face moved rigidly: flow keeps brows, eyes and nose
                    # (the predictor's are the less steady on fast, blurred heads), the
                    # predictor fits the jaw and mouth.
                    landmarks[_REFIT] = faces.predict_landmarks(self.predictor, gray, track.box(centre, scale))[_REFIT]
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

    def _carry(self, gray: np.ndarray, track: _Track, scale: float) -> Optional[tuple[np.ndarray, bool]]:
        """The anchor frame's landmarks moved by the similarity that pyramidal Lucas-Kanade
        flow of its rigid points (anchor -> this frame) gives, and whether the chin and
        mouth moved unlike it (``MAX_MOUTH_NONRIGID``: talking; the caller has the
        predictor refit the jaw and mouth); None when too few points are tracked or the
        inner points moved differently (the expression changed, so the predictor has to
        look at the whole face)."""
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

        def misfit(region: np.ndarray) -> float:
            """rms distance (IOD) of the region's tracked points from where the similarity puts them."""
            points = region[ok[region]]
            if len(points) < len(region) // 2:
                return float("inf")
            moved = p0[points] @ m[:, :2].T + m[:, 2]
            return float(np.sqrt(((moved - p1[points]) ** 2).sum(1).mean())) / scale

        if misfit(_INNER) > self.MAX_NONRIGID:
            return None
        return (anchor - lo) @ m[:, :2].T + m[:, 2] + lo, misfit(_LOWER) > self.MAX_MOUTH_NONRIGID

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
            new = self._new_face(frame, gray, box, score, tracks)
            if new is not None:
                tracks[new.face_id] = new
        self._tracks = self._unique(list(tracks.values()))

    def _new_face(self, frame: np.ndarray, gray: np.ndarray, box: faces.Box, score: float, tracks: dict) -> Optional[_Track]:
        """A track for a detection no followed face claimed, and its id (the one place
        ids are given): a recently lost face it overlaps where that face would be now
        takes its id back, then :meth:`_reidentify` checks it by descriptor; any other
        detection gets the next new id.  None when the predictor finds no face in the
        box (no id is used up)."""
        back = max(self._lost, key=lambda t: box_iou(t.box(t.frame.centre + t.velocity * t.missed), box), default=None)
        if back is not None and box_iou(back.box(back.frame.centre + back.velocity * back.missed), box) >= self.MATCH_IOU:
            fid = back.face_id
        else:
            fid = self._next_id
        new = self._start(gray, box, score, fid)
        if new is None:
            return None
        fid = self._reidentify(frame, new, fid, tracks)
        if fid == self._next_id:
            self._next_id += 1
        self._lost = [t for t in self._lost if t.face_id != fid]
        new.face_id = fid
        return new

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


def make_tracker(options) -> FaceTracker:
    """The tracker ``options`` (an :class:`fercli.align.AlignOptions`) describe: one face or all."""
    detector = faces.make_detector(options.detector, options.detector_model, options.detector_config, options.upsample)
    kind = MultiFaceTracker if options.faces == "all" else FaceTracker
    return kind(detector, faces.shape_predictor(options.predictor), options.detect_width, options.redetect_every,
                predict_every=options.predict_every)
