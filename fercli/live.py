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

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np

from fercli import align as _align
from fercli.artifacts import ModelRecord
from fercli.errors import FercliError
from fercli.images import IMAGE_EXTENSIONS, is_image_name
from fercli.protocol.samples import to_float

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

    def read(self) -> Optional[np.ndarray]:  # pragma: no cover - interface
        raise TypeError("abstract")

    def close(self) -> None:
        pass


class CaptureSource(Source):
    def __init__(self, spec, name: str):
        import cv2

        # FFmpeg prints its own complaints about unreadable files on fd 2; the
        # user gets our one sentence instead.
        with _quiet_stderr():
            self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            raise FercliError(f"cannot open {name} as a video source")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 1000.0 else 30.0

    def read(self):
        ok, frame = self._cap.read()
        return frame if ok else None

    def close(self):
        self._cap.release()


@contextlib.contextmanager
def _quiet_stderr():
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
            frame = cv2.imread(path, cv2.IMREAD_COLOR)
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

    def as_json(self) -> dict:
        return {"time": round(self.time, 3), "frames": [self.start, self.end], "label": self.label,
                "probabilities": self.probabilities, "face_found": self.face_found, "window": self.frames}


@dataclass
class FrameResult:
    index: int
    time: float
    found: bool
    box: Optional[tuple[float, float, float, float]]
    probs: Optional[np.ndarray]      # the CNN's distribution over classes (None without a face)
    window: Optional[WindowResult]   # set on the frame that completes a window
    seconds: dict[str, float] = field(default_factory=dict)  # time per part for this frame
    frame: Optional[np.ndarray] = None  # the BGR frame (for the overlay); None on the end-of-stream flush


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
    threads: int = 1                    # inference threads (batch-1 CNNs are fastest on one)
    engine: str = "auto"                # torch | onnx (onnxruntime) | auto: onnx when installed

    def check(self) -> None:
        if self.window < 1:
            raise FercliError(f"--window must be at least 1 frame (got {self.window})")
        if self.engine not in ENGINES:
            raise FercliError(f"--engine must be one of {', '.join(ENGINES)} (got '{self.engine}')")
        if self.threads < 1:
            raise FercliError(f"--threads must be at least 1 (got {self.threads})")
        _align.AlignOptions(size=self.size or 96, detector=self.detector, upsample=self.upsample,
                            detect_width=self.detect_width, redetect_every=self.redetect_every,
                            predict_every=self.predict_every).check()


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
        align_opts = _align.AlignOptions(size=self.size, detector=options.detector, detector_model=options.detector_model,
                                         detector_config=options.detector_config, predictor=options.predictor,
                                         upsample=options.upsample, detect_width=options.detect_width,
                                         redetect_every=options.redetect_every, predict_every=options.predict_every)
        self.tracker = _align.make_tracker(align_opts)
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
        self._vectors: list[np.ndarray] = []
        self._probs: list[np.ndarray] = []
        self._start = 0
        self._count = 0
        self._index = 0

    # -- per frame

    def _crop(self, rgb: np.ndarray, state: "_align.FaceState") -> np.ndarray:
        import cv2

        if self.options.aligned:
            m = _align.registration_matrix(state.landmarks, self.size)
        else:
            m = _align.box_matrix(state.box, self.size)
        src = rgb if self.channels == 3 else _align.to_gray(rgb)
        crop = cv2.warpAffine(src, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if (self.size, self.size) != self.input_hw:
            crop = cv2.resize(crop, (self.input_hw[1], self.input_hw[0]), interpolation=cv2.INTER_AREA)
        return crop

    def _cnn(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vector for the GRU, probability distribution) of one face crop."""
        x = to_float(np.ascontiguousarray(crop))
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None] if x.ndim == 3 else x[None, None])
        if self.engine == "onnx":
            if not self.sequence:
                probs = _softmax(self._ort_cnn.run(None, {"image": x})[0][0])
                return probs, probs
            # One CNN pass gives both what the GRU consumes and the distribution shown.
            vec, probs = self._ort_cnn.run(None, {"image": x})
            return vec[0], probs[0]
        torch = self._torch
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            if self.sequence:
                vec, probs = self.model.frame_vectors_and_probs(xt)
            else:
                probs = torch.softmax(self.model(xt), dim=1)
                vec = probs
        return vec[0].numpy().copy(), probs[0].numpy().copy()

    def _gru(self, vectors: list[np.ndarray]) -> np.ndarray:
        seq = np.stack(vectors).astype(np.float32)[None]
        if self.engine == "onnx":
            return _softmax(self._ort_gru.run(None, {"sequence": seq})[0][0])
        torch = self._torch
        with torch.inference_mode():
            return torch.softmax(self.model.sequence_logits(torch.from_numpy(seq)), dim=1)[0].numpy()

    def process(self, bgr: np.ndarray, time_s: float) -> FrameResult:
        """One frame (BGR, as OpenCV reads it): detect/track, crop, CNN; GRU when a window fills."""
        import cv2

        clock = time.perf_counter
        t0 = clock()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr
        state = self.tracker(rgb)
        t1 = clock()
        probs = None
        if state.found:
            vec, probs = self._cnn(self._crop(rgb, state))
            self._vectors.append(vec)
            self._probs.append(probs)
        t2 = clock()
        index = self._index
        self._index += 1
        self._count += 1
        window = None
        if self._count >= self.options.window:
            window = self._close_window(index, time_s)
        t3 = clock()
        return FrameResult(index, time_s, state.found, state.box if state.found else None, probs, window,
                           {"detect": t1 - t0, "cnn": t2 - t1, "gru": t3 - t2})

    def _close_window(self, last: int, time_s: float) -> WindowResult:
        found = len(self._vectors)
        label, dist = None, None
        if found:
            if self.sequence:
                p = self._gru(self._vectors)
            else:
                p = np.mean(self._probs, axis=0)
            dist = {name: round(float(v), 4) for name, v in zip(self.class_names, p)}
            label = self.class_names[int(np.argmax(p))]
        result = WindowResult(self._start, last, time_s, label, dist, found, self._count)
        self._vectors, self._probs = [], []
        self._start = last + 1
        self._count = 0
        return result

    def flush(self, time_s: float) -> Optional[WindowResult]:
        """The final partial window at the end of the stream (None if it is empty)."""
        if self._count == 0:
            return None
        return self._close_window(self._index - 1, time_s)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@dataclass
class Timings:
    """Seconds per part and per-frame latency, accumulated over a run."""

    parts: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PARTS})
    latency: list[float] = field(default_factory=list)
    frames: int = 0
    windows: int = 0
    wall: float = 0.0

    def add(self, decode: float, result: FrameResult) -> None:
        self.parts["decode"] += decode
        for k, v in result.seconds.items():
            self.parts[k] += v
        self.latency.append(decode + sum(result.seconds.values()))
        self.frames += 1

    def summary(self) -> dict:
        lat = np.asarray(self.latency) * 1000.0 if self.latency else np.zeros(1)
        n = max(1, self.frames)
        return {
            "frames": self.frames,
            "windows": self.windows,
            "fps": round(self.frames / self.wall, 1) if self.wall > 0 else None,
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
            "ms_per_frame": {k: round(v * 1000.0 / n, 2) for k, v in self.parts.items()},
        }


def run(session: LiveSession, source: Source, timings: Optional[Timings] = None, max_frames: Optional[int] = None,
        realtime_clock: bool = False) -> Iterator[FrameResult]:
    """Process a source frame by frame, yielding a :class:`FrameResult` per frame as
    soon as it is done.  At the end of the stream a partial window is flushed in one
    more result with ``frame=None``.  ``realtime_clock`` stamps frames with wall time
    (cameras) instead of ``index / fps`` (files)."""
    timings = timings if timings is not None else Timings()
    start = time.perf_counter()
    index = 0
    last_time = 0.0
    try:
        while max_frames is None or index < max_frames:
            t0 = time.perf_counter()
            frame = source.read()
            decode = time.perf_counter() - t0
            if frame is None:
                break
            last_time = (time.perf_counter() - start) if realtime_clock else index / source.fps
            result = session.process(frame, last_time)
            result.frame = frame
            timings.add(decode, result)
            timings.windows += result.window is not None
            index += 1
            yield result
        window = session.flush(last_time)
        if window is not None:
            timings.windows += 1
            yield FrameResult(window.end, last_time, False, None, None, window)
    finally:
        timings.wall = time.perf_counter() - start
        source.close()


# --------------------------------------------------------------------------- overlay


def draw_overlay(bgr: np.ndarray, result: FrameResult, last_window: Optional[WindowResult], class_names: list[str]) -> np.ndarray:
    """The display of Figure 4.3: face box, current label, the CNN's probabilities as bars."""
    import cv2

    out = bgr.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    if result.found and result.box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in result.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), 2)
        if last_window is not None and last_window.label:
            cv2.putText(out, last_window.label, (x0, max(15, y0 - 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2, cv2.LINE_AA)
    else:
        cv2.putText(out, "no face", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2, cv2.LINE_AA)
    if result.probs is not None:
        bar_w = max(40, w // 6)
        for k, (name, p) in enumerate(zip(class_names, result.probs)):
            y = h - 12 - 14 * (len(class_names) - 1 - k)
            cv2.rectangle(out, (8, y - 9), (8 + int(bar_w * float(p)), y), (255, 200, 0), -1)
            cv2.putText(out, f"{name} {float(p):.2f}", (12 + bar_w, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out
