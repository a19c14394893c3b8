"""The real-time FER system of thesis 4.2.7 / Figure 4.3.

"For each frame, the CNN part will extract the probability distribution
immediately.  After reaching a certain frame interval, the probability
distributions will be spliced into a sequence for recognition by the GRU part"
-- one label every 5 frames (Fig 4.3).  Faces come from "OpenCV DNN face
detection" and are *not* aligned at test time (4.2.7: landmarks are too slow on
a CPU; 4.3.4 tests on unaligned faces).

Per frame: the detector + tracker shared with ``align`` (detection now and then,
the landmark predictor follows the face in between), the same unaligned crop as
``fercli align --no-align`` (the detector box, square, x1.2) so live input
matches the unaligned training data, resized to the model's input size and
colour, then the CNN half of a ``cnn-gru`` model (``frame_vectors``).  Every
``window`` frames the GRU half (``sequence_logits``) labels the vectors of the
frames that had a face.  A window without any face is reported with label
``None``; the end of the stream flushes a final partial window.

A plain frame model (``image`` input, e.g. ``mobilenet-v3-small``) works too:
its window label is the mean of the per-frame probability distributions.

:func:`open_source` turns a camera index, a video file or a folder of images into
frames; :class:`LiveSession` is the per-frame engine; :func:`run` the generator
over a source.  Nothing here prints: the CLI shows, records or prints JSON.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np

from fercli import align as _align, geometry, pose as _pose, tracking, tracking_options, untrusted
from fercli.artifacts import ModelRecord
from fercli.errors import FercliError
from fercli.images import IMAGE_EXTENSIONS, frame_to_gray as to_gray, is_image_name
from fercli.protocol.samples import to_float
from fercli.tracking_options import SIZE

PARTS = ("decode", "detect", "cnn", "gru")
ENGINES = ("auto", "torch", "onnx")


def resolve_engine(engine: str) -> str:
    """'auto' -> 'onnx' when onnx and onnxruntime are importable, else 'torch'."""
    import importlib.util

    have = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
    if engine == "onnx" and not have:
        raise FercliError("--engine onnx needs the 'onnx' and 'onnxruntime' packages: pip install onnx onnxruntime")
    if engine == "auto":
        return "onnx" if have else "torch"
    return engine


# --------------------------------------------------------------------------- sources


class Source:
    """Frames (BGR uint8, as OpenCV gives them) with their time in seconds."""

    fps: float = 30.0
    #: A live source (a camera) does not wait for the reader: the pipelined engine
    #: drops its frames when it is full instead of queueing them.
    live: bool = False

    def wait(self) -> None:
        """Block until the next frame has arrived (a camera): not counted as decoding
        or latency, which start when the frame is there."""

    def read(self) -> Optional[np.ndarray]:  # pragma: no cover - interface
        raise TypeError("abstract")

    def close(self) -> None:
        pass


class CaptureSource(Source):
    def __init__(self, spec, name: str):
        import cv2

        self.live = isinstance(spec, int)  # a camera index
        self._grabbed = False

        # FFmpeg prints its own complaints about unreadable files on fd 2; the
        # user gets our one sentence instead.
        with untrusted.quiet_native_stderr():
            self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            raise FercliError(f"cannot open {name} as a video source")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 1000.0 else 30.0

    def wait(self):
        if self.live:
            self._grabbed = self._cap.grab()

    def read(self):
        if self.live:  # grabbed by wait(): decode it
            ok, frame = self._cap.retrieve() if self._grabbed else (False, None)
        else:
            ok, frame = self._cap.read()
        return frame if ok else None

    def close(self):
        self._cap.release()


class FolderSource(Source):
    def __init__(self, folder: str):
        names = sorted(n for n in os.listdir(folder) if is_image_name(n))
        if not names:
            raise FercliError(f"folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        self._paths = [os.path.join(folder, n) for n in names]
        self._i = 0

    def read(self):
        import cv2

        while self._i < len(self._paths):
            path = self._paths[self._i]
            self._i += 1
            data = untrusted.read_image_file(path)  # no FIFO, pixel limit from the header
            with untrusted.quiet_native_stderr():  # libpng warnings
                frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
            if frame is not None:
                return frame
        return None


def open_source(spec: str) -> Source:
    """A camera index ('0'), a video file, or a folder of images (sorted by name)."""
    if spec.isdigit():
        return CaptureSource(int(spec), f"camera {spec}")
    if os.path.isdir(spec):
        return FolderSource(spec)
    if not os.path.exists(spec):
        raise FercliError(f"source {spec} does not exist (give a camera index, a video file or a folder of images)")
    untrusted.input_path(spec, "a video file, a folder of images or a camera index")
    return CaptureSource(spec, spec)


# --------------------------------------------------------------------------- results


@dataclass
class WindowResult:
    """One label for ``window`` consecutive frames (thesis Fig 4.3)."""

    start: int                     # first frame index
    end: int                       # last frame index (inclusive)
    time: float                    # seconds into the stream at the window's last frame
    label: Optional[str]
    probabilities: Optional[dict[str, float]]
    face_found: int                # frames of the window with a face
    frames: int
    face_id: Optional[int] = 0     # which face (``--faces all``: 0, 1, ...; None: a window in which no face was seen)
    dropped: Optional[int] = None  # live sources: frames dropped at capture since the previous window

    def as_json(self) -> dict:
        out = {"time": round(self.time, 3), "frames": [self.start, self.end], "face_id": self.face_id, "label": self.label,
               "probabilities": self.probabilities, "face_found": self.face_found, "window": self.frames}
        if self.dropped is not None:
            out["dropped"] = self.dropped
        return out


@dataclass
class FaceResult:
    """One face in one frame."""

    face_id: int
    box: tuple[float, float, float, float]
    score: float                     # detector score of the detection it was found or tracked from
    landmarks: np.ndarray            # (68, 2) frame pixels
    probs: np.ndarray                # the CNN's distribution over classes
    pose: Optional[np.ndarray] = None  # fercli.pose: Tx, Ty, Tz (mm), Rx, Ry, Rz (radians)
    vector: Optional[np.ndarray] = None  # what the GRU consumes (the CNN's distribution or feature)


@dataclass
class FrameResult:
    index: int
    time: float
    found: bool
    box: Optional[tuple[float, float, float, float]]
    probs: Optional[np.ndarray]      # the CNN's distribution over classes (None without a face)
    window: Optional[WindowResult]   # set on the frame that completes a window (the first face's with --faces all)
    seconds: dict[str, float] = field(default_factory=dict)  # time per part for this frame
    frame: Optional[np.ndarray] = None  # the BGR frame (for the overlay); None on the end-of-stream flush
    faces: list[FaceResult] = field(default_factory=list)   # every face found (one at most without --faces all)
    windows: list[WindowResult] = field(default_factory=list)  # every window completed on this frame, one per face


@dataclass
class LiveOptions:
    window: int = 5
    size: Optional[int] = None          # crop side; default: the model's input size
    aligned: bool = False               # register with landmarks (training-style) instead of the box crop
    detector: str = "hog"
    detector_model: Optional[str] = None
    detector_config: Optional[str] = None
    predictor: Optional[str] = None
    upsample: int = 0
    detect_width: int = 320
    redetect_every: int = 10
    predict_every: int = 3
    faces: str = "best"                 # best: the most confident face; all: every face, labelled per face
    threads: int = 1                    # inference threads (batch-1 CNNs are fastest on one)
    engine: str = "auto"                # torch | onnx (onnxruntime) | auto: onnx when installed
    focal: Optional[float] = None       # head pose: focal length in pixels (None: OpenFace's default camera)
    pipeline: Optional[bool] = None     # decode, detect/track, CNN, GRU in threads of their own (fercli.live_pipeline);
                                        # None: when this process may use two CPUs or more (see use_pipeline)
    pose: bool = True                   # head pose per face (live --csv's pose_* columns); off saves ~5 % of a frame's work

    def check(self) -> None:
        if self.window < 1:
            raise FercliError(f"--window must be at least 1 frame (got {self.window})")
        if self.engine not in ENGINES:
            raise FercliError(f"--engine must be one of {', '.join(ENGINES)} (got '{self.engine}')")
        if self.threads < 1:
            raise FercliError(f"--threads must be at least 1 (got {self.threads})")
        if self.size is not None:
            SIZE.check(self.size)
        tracking_options.check(self)
        if self.faces not in _align.FACE_MODES:
            raise FercliError(f"--faces must be one of {', '.join(_align.FACE_MODES)} (got '{self.faces}')")
        if self.focal is not None and not 1.0 <= self.focal <= 1e6:
            raise FercliError(f"--focal must be between 1 and 1000000 pixels (got {self.focal})")


# --------------------------------------------------------------------------- engine


class LiveSession:
    """Frames in, per-frame probabilities and per-window labels out (Figure 4.3)."""

    def __init__(self, record: ModelRecord, options: LiveOptions):
        import torch

        from fercli.models import registry

        options.check()
        self.options = options
        self.engine = resolve_engine(options.engine)
        self.model = registry.from_record(record).eval()
        self.class_names = list(record.class_names)
        self.sequence = self.model.sequence_halves
        if not self.sequence and tuple(self.model.inputs) != ("image",):
            raise FercliError(f"live needs a frame model or a cnn-gru model, not '{record.arch}' (inputs {', '.join(self.model.inputs)})")
        c, h, w = self.model.frame_shape()
        self.channels, self.input_hw = int(c), (int(h), int(w))
        self.size = int(options.size or h)
        align_opts = _align.AlignOptions(size=self.size, faces=options.faces, **tracking_options.values(options))
        self.tracker = tracking.make_tracker(align_opts)
        self._torch = torch
        if self.engine == "onnx":
            self._init_onnx()
        else:
            # Batch-1 inference is overhead-bound: more threads only add sync cost.
            torch.set_num_threads(options.threads)
        self.reset()

    def _init_onnx(self) -> None:
        """The CNN (and GRU) halves as onnxruntime sessions: ~5x less per-frame
        overhead than eager PyTorch for a batch of one (see docs/live.md)."""
        import onnxruntime as ort

        from fercli import export

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        parts = dict(export.onnx_parts(self.model, split=self.sequence, with_probs=True))
        mk = lambda b: ort.InferenceSession(b, so, providers=["CPUExecutionProvider"])  # noqa: E731
        if self.sequence:
            self._ort_cnn, self._ort_gru = mk(parts["cnn"]), mk(parts["gru"])
        else:
            self._ort_cnn, self._ort_gru = mk(parts["whole"]), None

    def reset(self) -> None:
        self.tracker.reset()
        # Per face id: the window's CNN vectors and distributions so far.
        self._buffers: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._start = 0
        self._count = 0
        self._index = 0

    # -- per frame

    def _crop(self, rgb: np.ndarray, state: "tracking.FaceState") -> np.ndarray:
        import cv2

        if self.options.aligned:
            m = geometry.registration_matrix(state.landmarks, self.size)
        else:
            m = geometry.box_matrix(state.box, self.size)
        src = rgb if self.channels == 3 else to_gray(rgb)
        crop = cv2.warpAffine(src, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if (self.size, self.size) != self.input_hw:
            crop = cv2.resize(crop, (self.input_hw[1], self.input_hw[0]), interpolation=cv2.INTER_AREA)
        return crop

    def _cnn(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors for the GRU, probability distributions), one row per face crop: the
        frame's faces go through the CNN as one batch, in one call."""
        x = to_float(np.ascontiguousarray(np.stack(crops)))
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x[:, None])
        if self.engine == "onnx":
            if not self.sequence:
                probs = _softmax(self._ort_cnn.run(None, {"image": x})[0])
                return probs, probs
            # One CNN pass gives both what the GRU consumes and the distribution shown.
            vec, probs = self._ort_cnn.run(None, {"image": x})
            return vec, probs
        torch = self._torch
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            if self.sequence:
                vec, probs = self.model.frame_vectors_and_probs(xt)
            else:
                probs = torch.softmax(self.model(xt), dim=1)
                vec = probs
        return vec.numpy().copy(), probs.numpy().copy()

    def _gru(self, vectors: list[np.ndarray]) -> np.ndarray:
        seq = np.stack(vectors).astype(np.float32)[None]
        if self.engine == "onnx":
            return _softmax(self._ort_gru.run(None, {"sequence": seq})[0])[0]
        torch = self._torch
        with torch.inference_mode():
            return torch.softmax(self.model.sequence_logits(torch.from_numpy(seq)), dim=1)[0].numpy()

    def process(self, bgr: np.ndarray, time_s: float) -> FrameResult:
        """One frame (BGR, as OpenCV reads it): detect/track, crop, CNN per face; GRU per
        face when a window fills.  The one-thread engine; the pipelined one
        (:mod:`fercli.live_pipeline`) runs the same three steps, each in its own thread."""
        clock = time.perf_counter
        t0 = clock()
        rgb, states = self.track(bgr)
        t1 = clock()
        found = self.infer(rgb, states)
        t2 = clock()
        return self.label(found, time_s, {"detect": t1 - t0, "cnn": t2 - t1})

    def track(self, bgr: np.ndarray) -> tuple[np.ndarray, list["tracking.FaceState"]]:
        """Step 1 (stateful: frames in order): the RGB frame and its tracked faces."""
        import cv2

        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr
        tracked = self.tracker(rgb)
        return rgb, tracked if isinstance(tracked, list) else [tracked] if tracked.found else []

    def infer(self, rgb: np.ndarray, states: list["tracking.FaceState"]) -> list[FaceResult]:
        """Step 2 (no state): each face's crop, the CNN over the frame's crops as one
        batch, and its head pose."""
        if not states:
            return []
        vectors, probs = self._cnn([self._crop(rgb, state) for state in states])
        h, w = rgb.shape[:2]
        return [FaceResult(state.face_id, state.box, state.score, state.landmarks, probs[k],
                           _pose.head_pose(state.landmarks, w, h, self.options.focal) if self.options.pose else None,
                           vector=vectors[k])
                for k, state in enumerate(states)]

    def label(self, found: list[FaceResult], time_s: float, seconds: Optional[dict[str, float]] = None) -> FrameResult:
        """Step 3 (stateful: frames in order): the faces' vectors join their windows;
        a full window is labelled by the GRU (one result per face)."""
        t0 = time.perf_counter()
        for face in found:
            vectors, dists = self._buffers.setdefault(face.face_id, ([], []))
            vectors.append(face.vector)
            dists.append(face.probs)
        index = self._index
        self._index += 1
        self._count += 1
        windows = self._close_windows(index, time_s) if self._count >= self.options.window else []
        first = found[0] if found else None
        seconds = {**(seconds or {}), "gru": time.perf_counter() - t0}
        return FrameResult(index, time_s, first is not None, first.box if first else None, first.probs if first else None,
                           windows[0] if windows else None, seconds, faces=found, windows=windows)

    def _close_windows(self, last: int, time_s: float) -> list[WindowResult]:
        """One result per face seen in the window (the GRU over its frames, or the mean
        distribution of a frame model); a window without any face gives one result
        with no label (``face_id`` 0 with one face, None with ``--faces all``)."""
        out = []
        for face_id in sorted(self._buffers):
            vectors, dists = self._buffers[face_id]
            p = self._gru(vectors) if self.sequence else np.mean(dists, axis=0)
            dist = {name: round(float(v), 4) for name, v in zip(self.class_names, p)}
            out.append(WindowResult(self._start, last, time_s, self.class_names[int(np.argmax(p))], dist, len(vectors),
                                    self._count, face_id))
        if not out:
            out.append(WindowResult(self._start, last, time_s, None, None, 0, self._count, None if self.options.faces == "all" else 0))
        self._buffers = {}
        self._start = last + 1
        self._count = 0
        return out

    def flush(self, time_s: float) -> list[WindowResult]:
        """The final partial window(s) at the end of the stream (empty if none)."""
        if self._count == 0:
            return []
        return self._close_windows(self._index - 1, time_s)


def _softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise: the last axis is the classes."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Timings:
    """Seconds per part and per-frame latency, accumulated over a run."""

    parts: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PARTS})
    latency: list[float] = field(default_factory=list)
    frames: int = 0
    windows: int = 0
    wall: float = 0.0
    dropped: int = 0               # frames a live source gave that the pipelined engine had no room for

    def add(self, decode: float, result: FrameResult, latency: Optional[float] = None) -> None:
        """``latency``: capture to label (default: the parts' sum, as one thread runs them)."""
        self.parts["decode"] += decode
        for k, v in result.seconds.items():
            self.parts[k] += v
        self.latency.append(decode + sum(result.seconds.values()) if latency is None else latency)
        self.frames += 1

    def summary(self) -> dict:
        lat = np.asarray(self.latency) * 1000.0 if self.latency else np.zeros(1)
        n = max(1, self.frames)
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "windows": self.windows,
            "fps": round(self.frames / self.wall, 1) if self.wall > 0 else None,
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
            "ms_per_frame": {k: round(v * 1000.0 / n, 2) for k, v in self.parts.items()},
        }


def use_pipeline(option: Optional[bool]) -> bool:
    """The engine ``--pipeline/--no-pipeline`` (``option``) picks; unset, the pipeline when
    this process may run on two CPUs or more (on one, its threads can only take turns)."""
    if option is not None:
        return bool(option)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cpus >= 2


def run(session: LiveSession, source: Source, timings: Optional[Timings] = None, max_frames: Optional[int] = None,
        realtime_clock: bool = False, pipeline: Optional[bool] = None) -> Iterator[FrameResult]:
    """Process a source frame by frame, yielding a :class:`FrameResult` per frame as
    soon as it is done, in order.  At the end of the stream a partial window is
    flushed in one more result with ``frame=None``.  ``realtime_clock`` stamps frames
    with wall time (cameras) instead of ``index / fps`` (files).  ``pipeline``
    (default: the session's option) runs the steps in threads of their own
    (:mod:`fercli.live_pipeline`: the same results; a live source's frames are
    dropped, counted in ``timings.dropped``, when it is full); otherwise one thread
    runs them one after another."""
    timings = timings if timings is not None else Timings()
    if use_pipeline(session.options.pipeline if pipeline is None else pipeline):
        from fercli import live_pipeline

        return live_pipeline.run_pipelined(session, source, timings, max_frames, realtime_clock)
    return _run_serial(session, source, timings, max_frames, realtime_clock)


def _run_serial(session: LiveSession, source: Source, timings: Timings, max_frames: Optional[int],
                realtime_clock: bool) -> Iterator[FrameResult]:
    """The one-thread engine: decode, detect/track, CNN, GRU one after another."""
    start = time.perf_counter()
    index = 0
    last_time = 0.0
    # A live source's windows say how many frames were dropped: none, here (the
    # camera's own buffer may drop some, unseen).
    dropped = 0 if source.live else None
    try:
        while max_frames is None or index < max_frames:
            source.wait()
            t0 = time.perf_counter()
            frame = source.read()
            decode = time.perf_counter() - t0
            if frame is None:
                break
            last_time = (time.perf_counter() - start) if realtime_clock else index / source.fps
            result = session.process(frame, last_time)
            result.frame = frame
            for window in result.windows:
                window.dropped = dropped
            timings.add(decode, result)
            timings.windows += len(result.windows)
            index += 1
            yield result
        windows = session.flush(last_time)
        if windows:
            for window in windows:
                window.dropped = dropped
            timings.windows += len(windows)
            yield FrameResult(windows[0].end, last_time, False, None, None, windows[0], windows=windows)
    finally:
        timings.wall = time.perf_counter() - start
        source.close()


# --------------------------------------------------------------------------- overlay


def draw_overlay(bgr: np.ndarray, result: FrameResult, last_windows: dict, class_names: list[str]) -> np.ndarray:
    """The display of Figure 4.3: each face's box with its latest window label
    (``last_windows``: face id -> :class:`WindowResult`), the first face's CNN
    probabilities as bars."""
    import cv2

    out = bgr.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    for face in result.faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), 2)
        window = last_windows.get(face.face_id)
        text = " ".join(t for t in ((f"#{face.face_id}" if len(result.faces) > 1 or face.face_id else ""),
                                    window.label if window is not None and window.label else "") if t)
        if text:
            cv2.putText(out, text, (x0, max(15, y0 - 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2, cv2.LINE_AA)
    if not result.faces:
        cv2.putText(out, "no face", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2, cv2.LINE_AA)
    if result.probs is not None:
        bar_w = max(40, w // 6)
        for k, (name, p) in enumerate(zip(class_names, result.probs)):
            y = h - 12 - 14 * (len(class_names) - 1 - k)
            cv2.rectangle(out, (8, y - 9), (8 + int(bar_w * float(p)), y), (255, 200, 0), -1)
            cv2.putText(out, f"{name} {float(p):.2f}", (12 + bar_w, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


# --------------------------------------------------------------------------- per-frame CSV


def csv_columns(class_names: list[str]) -> list[str]:
    """Columns of ``live --csv``: ``fercli table``'s OpenFace-style frame columns where
    they mean the same (frame counted from 1, face_id, timestamp, confidence,
    success, source_frame, face box, head pose, x_0..x_67, y_0..y_67, frame pixels),
    then the window label and probabilities on the frame that completes a window."""
    from fercli.tables import LANDMARK_COLUMNS, OPENFACE_COLUMNS, POSE_COLUMNS

    return [*OPENFACE_COLUMNS, "source_frame", "face_x", "face_y", "face_width", "face_height", *POSE_COLUMNS, *LANDMARK_COLUMNS,
            "label", "window_start", *[f"p_{c}" for c in class_names]]


def csv_rows(result: FrameResult, windows: list[WindowResult], class_names: list[str], all_faces: bool = False) -> list[list]:
    """The rows of one frame: one per face found (a frame without a face still gets
    one, ``success`` 0), each joined with its face's window when one completed on
    this frame (``windows``); a face whose window completes on a frame it is not
    in gets a row of its own with ``success`` 0."""
    head = [result.index + 1, None, round(result.time, 3), None, 0, result.index]
    by_face = {w.face_id: w for w in windows}

    def window_cells(w: Optional[WindowResult]) -> list:
        if w is None:
            return [None] * (2 + len(class_names))
        probs = w.probabilities or {}
        return [w.label, w.start, *[probs.get(c) for c in class_names]]

    rows = []
    for face in result.faces:
        x0, y0, x1, y1 = face.box
        pts = np.round(face.landmarks, 2)
        score = None if face.score is None or not np.isfinite(face.score) else round(float(face.score), 4)
        pose = face.pose if face.pose is not None else np.full(6, np.nan)
        rows.append([head[0], face.face_id, head[2], score, 1, head[5], round(x0, 2), round(y0, 2), round(x1 - x0, 2),
                     round(y1 - y0, 2), *[round(float(v), 1) if np.isfinite(v) else None for v in pose[:3]],
                     *[round(float(v), 4) if np.isfinite(v) else None for v in pose[3:]],
                     *pts[:, 0].tolist(), *pts[:, 1].tolist(), *window_cells(by_face.pop(face.face_id, None))])
    empty = [None] * (4 + 6 + 136)
    for face_id, w in sorted(by_face.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
        rows.append([head[0], face_id, head[2], None, 0, head[5], *empty, *window_cells(w)])
    if not rows:
        rows.append([head[0], None if all_faces else 0, head[2], None, 0, head[5], *empty, *window_cells(None)])
    return rows
