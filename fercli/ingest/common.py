"""Shared machinery of the dataset importers: reading images, image sequences
and videos, the report of what was skipped, class-name canonicalisation
(:mod:`fercli.ingest.stream` turns the decoded clips into an artifact).

Thesis 2.1 (the databases) and 3.2.2 / 4.2.7 (what the later stages expect):
frames are kept at their original resolution and in their original colour
unless the user asks otherwise, because alignment (3.2.2) crops and scales the
face itself and every later stage works on the registered crops.

Conventions fixed here for every importer:

* colour frames are stored RGB (what dlib, scikit-image and CIFAR use), gray
  frames as 2-D images;
* an artifact holds one frame shape, so frames of several sizes are either
  scaled (``--resize``), placed top-left on a common canvas (``--pad``, which
  keeps pixel coordinates unchanged so landmarks found later stay valid for
  the original images) or refused with a sentence;
* nothing is dropped silently: every skipped item is counted in a
  :class:`Report` with its first examples.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from fercli import images, untrusted
from fercli.errors import FercliError
from fercli.progress import ProgressFn, report as _progress

#: The canonical expression classes in the order the project uses everywhere
#: (CK+ order for the seven basic classes, neutral last).
CANONICAL = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise", "neutral"]

#: Folder / label spellings found in the published datasets -> canonical name.
ALIASES = {
    "anger": "anger", "angry": "anger", "an": "anger",
    "contempt": "contempt", "co": "contempt",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fe": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "ha": "happy",
    "sad": "sadness", "sadness": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "neutral": "neutral", "ne": "neutral",
}

IMAGE_EXTENSIONS = frozenset(images.IMAGE_EXTENSIONS)
VIDEO_EXTENSIONS = {".avi", ".mp4", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".m4v", ".flv", ".3gp", ".ogv"}

#: Operating-system litter found inside published archives (CK+ ships .DS_Store
#: files in its folders): not dataset content, so not reported as skipped.
_OS_LITTER = {".ds_store", "thumbs.db", "desktop.ini", ".directory"}


def plural(n: int, word: str, words: str = "") -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def canonical_name(name: str) -> str:
    """'Angry' -> 'anger', 'Happiness' -> 'happy'; unknown names lowercased."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


def order_classes(names: Iterable[str]) -> list[str]:
    """Canonical classes in canonical order first, then any others sorted."""
    names = set(names)
    return [c for c in CANONICAL if c in names] + sorted(n for n in names if n not in CANONICAL)


def is_litter(name: str) -> bool:
    base = os.path.basename(name)
    return base.lower() in _OS_LITTER or base.startswith("._")


_NUM = re.compile(r"(\d+)")


def natural_key(text: str) -> list:
    """Sort 'frame2' before 'frame10' (frame order inside sequences)."""
    return [int(part) if part.isdigit() else part.lower() for part in _NUM.split(text)]


def list_dir(path: str) -> list[str]:
    """Entries of a folder in natural order, without OS litter."""
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise FercliError(f"cannot read folder {path}: {exc.strerror or exc}") from exc
    return sorted((n for n in names if not is_litter(n)), key=natural_key)


def find_child(parent: str, name: str) -> Optional[str]:
    """``parent/name`` matched case-insensitively (archives differ in case)."""
    if not os.path.isdir(parent):
        return None
    exact = os.path.join(parent, name)
    if os.path.isdir(exact):
        return exact
    for entry in os.listdir(parent):
        if entry.lower() == name.lower() and os.path.isdir(os.path.join(parent, entry)):
            return os.path.join(parent, entry)
    return None


def require_dir(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise FercliError(f"{path} does not exist (expected {what})")
    if not os.path.isdir(path):
        raise FercliError(f"{path} is not a folder (expected {what})")
    return path


# --------------------------------------------------------------------------- report


#: reason -> (singular, plural) noun phrase used in the report lines.
REASONS = {
    "unreadable": ("unreadable file", "unreadable files"),
    "not_media": ("file that is not an image or video", "files that are not images or videos"),
    "empty": ("empty sequence", "empty sequences"),
    "unknown_label": ("item with an unknown label", "items with unknown labels"),
    "truncated": ("truncated video", "truncated videos"),
    "bad_row": ("malformed CSV row", "malformed CSV rows"),
    "not_in_manifest": ("file not listed in the manifest", "files not listed in the manifest"),
    "missing": ("manifest row naming a missing file", "manifest rows naming missing files"),
}


class Report:
    """What an importer skipped (count + first examples per reason) and notes.

    Skips are data the user may have expected in the artifact; notes are
    deliberate choices worth knowing (sequences left out by default, frames
    padded to a common canvas).
    """

    EXAMPLES = 3

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}
        self.notes: list[str] = []

    def skip(self, reason: str, example: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown skip reason {reason!r}")
        self.counts[reason] = self.counts.get(reason, 0) + 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.EXAMPLES:
            examples.append(example)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    def count(self, reason: str) -> int:
        return self.counts.get(reason, 0)

    def skip_phrases(self) -> list[str]:
        out = []
        for reason, n in self.counts.items():
            singular, plural = REASONS[reason]
            shown = ", ".join(self.examples[reason])
            more = ", ..." if n > len(self.examples[reason]) else ""
            out.append(f"{n} {singular if n == 1 else plural} ({shown}{more})")
        return out

    def lines(self) -> list[str]:
        """Human-readable lines for stderr: skips first, then notes."""
        return [f"skipped {p}" for p in self.skip_phrases()] + list(self.notes)

    def summary(self) -> str:
        """All skips in one clause, for error sentences."""
        phrases = self.skip_phrases()
        return "; ".join(phrases) if phrases else "no usable files were found"

    def enforce(self, strict: bool, source: str) -> None:
        """``--strict``: any skipped item fails the whole ingest."""
        if strict and self.skipped:
            raise FercliError(f"--strict: {source} has problems, nothing was written: {self.summary()}")


def nothing_usable(source: str, report: Report, hint: str = "") -> FercliError:
    extra = f" ({hint})" if hint else ""
    return FercliError(f"no usable data found in {source}{extra}: {report.summary()}")


# --------------------------------------------------------------------------- frame options


@dataclass(frozen=True)
class FrameOptions:
    """How decoded frames become artifact frames.

    ``color``: True (RGB), False (gray) or None (the dataset's own default).
    ``resize``: (width, height) to scale every frame to, or None.
    ``pad``: place frames of different sizes top-left on the largest canvas.
    ``max_side``: downscale frames whose longer side exceeds it (keeps aspect).
    ``workers``: decoding threads (OpenCV releases the GIL while decoding).
    """

    color: Optional[bool] = None
    resize: Optional[tuple[int, int]] = None
    pad: bool = False
    max_side: Optional[int] = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.resize is not None and self.max_side is not None:
            raise FercliError("give --resize or --max-side, not both (--resize already fixes the frame size)")
        if self.max_side is not None and self.max_side < 8:
            raise FercliError(f"--max-side must be at least 8 pixels (got {self.max_side})")
        if self.resize is not None and min(self.resize) <= 0:
            raise FercliError(f"--resize must be positive (got {self.resize[0]}x{self.resize[1]})")

    def threads(self) -> int:
        return self.workers if self.workers > 0 else min(8, os.cpu_count() or 1)

    def describe(self) -> dict:
        return {
            "resize": None if self.resize is None else f"{self.resize[0]}x{self.resize[1]}",
            "pad": self.pad,
            "max_side": self.max_side,
        }


# --------------------------------------------------------------------------- decoding


def _cv2():
    import cv2

    # OpenCV and FFmpeg print decoder warnings straight to stderr ("PNG input
    # buffer is incomplete", "moov atom not found"); the report says the same in
    # one place, and stderr must stay one line when an ingest fails.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    with contextlib.suppress(Exception):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def decode_image(path: str) -> Optional[np.ndarray]:
    """Read an image as uint8 gray (H, W) or RGB (H, W, 3); None if unreadable.

    A FIFO/device instead of a file, or a header declaring more pixels than the
    limit (a small file can declare gigabytes), is refused with a sentence
    before anything is decoded (:mod:`fercli.untrusted`).
    """
    cv2 = _cv2()
    if untrusted.is_special(path):
        untrusted.regular_file(path, "an image file")  # a FIFO or device: refused, not skipped
    try:
        untrusted.check_budget(os.path.getsize(path), f"reading {path} needs")
        with open(path, "rb") as fh:  # + imdecode: non-ASCII paths work
            data = fh.read()
    except OSError:
        return None
    if not data:
        return None
    untrusted.check_image_header(data, path)
    buf = np.frombuffer(data, dtype=np.uint8)
    # ANYCOLOR: gray files stay 2-D, alpha is dropped, 16-bit becomes 8-bit.
    with untrusted.quiet_native_stderr():
        img = cv2.imdecode(buf, cv2.IMREAD_ANYCOLOR)
    if img is None or img.size == 0:
        return None
    return to_rgb_or_gray(img)


def to_rgb_or_gray(img: np.ndarray) -> np.ndarray:
    """OpenCV BGR(A) / gray -> RGB or 2-D gray, uint8."""
    cv2 = _cv2()
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(np.iinfo(img.dtype).max if img.dtype.kind in "ui" else 1.0)))
    if img.ndim == 3:
        if img.shape[2] == 1:
            return img[:, :, 0]
        if img.shape[2] == 4:
            return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def scaled_size(w: int, h: int, options: FrameOptions) -> tuple[int, int]:
    """(width, height) a w x h frame has after ``--resize`` / ``--max-side``."""
    if options.resize is not None:
        return options.resize
    if options.max_side is not None and max(h, w) > options.max_side:
        s = options.max_side / max(h, w)
        return max(1, round(w * s)), max(1, round(h * s))
    return w, h


def scale_frame(img: np.ndarray, options: FrameOptions) -> np.ndarray:
    """Apply ``--max-side`` / ``--resize`` to one decoded frame."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    target = scaled_size(w, h, options)
    if target == (w, h):
        return img
    # INTER_AREA averages when shrinking (no aliasing); LINEAR when enlarging.
    shrinking = target[0] * target[1] < w * h
    return cv2.resize(img, target, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class Reader:
    """Decodes images (threaded) and videos for one ingest run."""

    def __init__(self, options: FrameOptions) -> None:
        self.options = options
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        #: path -> (width, height) as decoded, before --resize / --max-side, and
        #: path -> frames per second of videos: what traces frames to their source.
        self.native_size: dict[str, tuple[int, int]] = {}
        self.fps: dict[str, float] = {}

    def __enter__(self) -> "Reader":
        threads = self.options.threads()
        if threads > 1:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, path: str) -> Optional[np.ndarray]:
        img = decode_image(path)
        if img is None:
            return None
        self.native_size[path] = (img.shape[1], img.shape[0])
        return scale_frame(img, self.options)

    def source_of(self, path: str) -> dict:
        """``ClipList.add`` keywords that trace a decoded file's frames to it (fps, native size)."""
        return {"fps": self.fps.get(path, float("nan")), "native_size": self.native_size.get(path)}

    def images(self, paths: Sequence[str]) -> list[Optional[np.ndarray]]:
        """Decode ``paths`` in order; None marks an unreadable file."""
        if self._pool is None or len(paths) < 2:
            return [self._one(p) for p in paths]
        return list(self._pool.map(self._one, paths))

    def video(self, path: str, state: dict, on_frame: Optional[Callable[[], None]] = None) -> Iterator[np.ndarray]:
        """The frames of a video one at a time, as they are decoded (never all held).

        ``state['declared']`` becomes the frame count its container declares (-1:
        the file cannot be opened as a video).  ``on_frame`` is called after every
        decoded frame (progress on long videos).
        """
        cv2 = _cv2()
        untrusted.regular_file(path, "a video file")
        state["declared"] = -1
        with untrusted.quiet_native_stderr():
            cap = cv2.VideoCapture(path, _video_backend(cv2))
        try:
            if not cap.isOpened():
                return
            state["declared"] = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            self.fps[path] = fps if 0 < fps < 10_000 else float("nan")
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            if w * h > untrusted.max_pixels():
                raise FercliError(f"{path} declares {w}x{h} frames, more than the {untrusted.max_pixels() / 1e6:g}-megapixel "
                                  f"limit (set {untrusted.PIXELS_ENV} to allow larger frames)")
            first = True
            while True:
                with untrusted.quiet_native_stderr():
                    ok, frame = cap.read()
                if not ok or frame is None:
                    break
                if first:
                    self.native_size[path] = (frame.shape[1], frame.shape[0])
                    first = False
                yield scale_frame(to_rgb_or_gray(frame), self.options)
                if on_frame is not None:
                    on_frame()
        finally:
            cap.release()

    def sequence(self, folder: str, root: str, report: Report) -> tuple[list[np.ndarray], Optional[str]]:
        """The image files of one sequence folder, decoded in natural order, and the
        first one read (None if none was); other files and unreadable images are
        reported (as paths relative to ``root``)."""
        paths = []
        for name in list_dir(folder):
            path = os.path.join(folder, name)
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(path):
                paths.append(path)
            else:
                report.skip("not_media", os.path.relpath(path, root))
        good, first = [], None
        for path, img in zip(paths, self.images(paths)):
            if img is None:
                report.skip("unreadable", os.path.relpath(path, root))
            else:
                good.append(img)
                first = first or path
        return good, first


def image_files(folders: Iterable[str]) -> Iterator[str]:
    """The image files directly inside ``folders``, in order (their headers tell the layout)."""
    for folder in folders:
        yield from (os.path.join(folder, n) for n in list_dir(folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)


def sequence_folders(top: str, root: str, report: Optional[Report]) -> Iterator[tuple[str, str, str]]:
    """(subject, sequence, folder) of every ``top/SUBJECT/SEQUENCE/`` folder, in
    natural order: the layout of CK+ and Oulu-CASIA.  A file where a folder belongs
    is reported as not media (relative to ``root``), or passed over when ``report``
    is None."""
    for subject in list_dir(top):
        sdir = os.path.join(top, subject)
        if not os.path.isdir(sdir):
            if report is not None:
                report.skip("not_media", os.path.relpath(sdir, root))
            continue
        for seq in list_dir(sdir):
            qdir = os.path.join(sdir, seq)
            if os.path.isdir(qdir):
                yield subject, seq, qdir
            elif report is not None:
                report.skip("not_media", os.path.relpath(qdir, root))


def declared_size(path: str) -> Optional[tuple[int, int]]:
    """(width, height) a video's container declares, None if unknown or unreadable."""
    cv2 = _cv2()
    with untrusted.quiet_native_stderr():
        cap = cv2.VideoCapture(path, _video_backend(cv2))
    try:
        if not cap.isOpened():
            return None
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        return (w, h) if w > 0 and h > 0 else None
    finally:
        cap.release()


def declared_frames(path: str) -> int:
    """The frame count a video's container declares (0 if unknown or unreadable);
    only opens the container, so totals for progress bars are cheap."""
    cv2 = _cv2()
    cap = cv2.VideoCapture(path, _video_backend(cv2))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if cap.isOpened() else 0
    finally:
        cap.release()


def _video_backend(cv2) -> int:
    """FFmpeg when OpenCV has it: its errors are silenced above, whereas OpenCV's
    own MJPEG reader (tried next by CAP_ANY) prints parse errors to stderr."""
    try:
        if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
            return cv2.CAP_FFMPEG
    except Exception:  # pragma: no cover - very old OpenCV
        pass
    return cv2.CAP_ANY


def is_truncated(decoded: int, declared: int) -> bool:
    """Fewer frames decoded than the container declares.

    Containers without an exact index (mkv, webm) estimate their count from
    duration x fps, so a small shortfall (2 frames or 2 %) is tolerated.
    """
    return declared > 0 and decoded + max(2, declared // 50) < declared


# --------------------------------------------------------------------------- assembling


def gray_or_rgb(frames: np.ndarray, color: bool) -> np.ndarray:
    """Vectorised colour conversion of a whole (N, H, W[, 3]) block (:mod:`fercli.images`)."""
    if color and frames.ndim == 3:
        return images.to_color(frames)
    if not color and frames.ndim == 4:
        return images.to_gray(frames)
    return frames


@contextlib.contextmanager
def counting(progress: Optional[ProgressFn], total: int) -> Iterator:
    """``tick()`` advances the progress callback by one of ``total``."""
    state = {"done": 0}
    _progress(progress, 0, total)

    def tick(n: int = 1) -> None:
        state["done"] += n
        _progress(progress, state["done"], total)

    yield tick
