"""Video output (``--video``): the clips one after another as an MP4, written as
they come, and the trace fields that point the artifact's frames at it."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import cv2
import numpy as np

from fercli.artifacts import Clips
from fercli.errors import FercliError


class VideoFrames:
    """An MP4 (mp4v) being written: :meth:`write` appends frames (gray or RGB)."""

    def __init__(self, writer: "cv2.VideoWriter", path: str, fps: float):
        self._writer, self.path, self.fps = writer, path, fps

    def write(self, frames: np.ndarray) -> None:
        for frame in frames:
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if frame.ndim == 2 else cv2.COLOR_RGB2BGR))


def _check(path: str, fps: float) -> None:
    if path == "-":
        raise FercliError("--video needs a file name, not '-'")
    if fps <= 0:
        raise FercliError(f"--fps must be positive (got {fps})")


@contextlib.contextmanager
def video_writer(path: str, fps: float, size: tuple[int, int]) -> Iterator[VideoFrames]:
    """An MP4 of ``size`` (width, height) frames at ``fps``, written atomically: complete
    at ``path`` on leaving the block, removed (``path`` untouched) on any exception."""
    from fercli.artifacts import atomic_path

    _check(path, fps)
    with atomic_path(path, suffix=os.path.splitext(path)[1] or ".mp4") as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(int(v) for v in size), True)
        if not writer.isOpened():
            raise FercliError(f"OpenCV cannot write an mp4v video to {path} (use a .mp4 name)")
        try:
            yield VideoFrames(writer, path, fps)
        finally:
            writer.release()


def render_video(clips: Clips, path: str, fps: float = 30.0) -> None:
    """Write the clips one after another as an MP4 (mp4v) video, atomically."""
    _check(path, fps)
    if len(clips.frames) == 0:
        raise FercliError("no frames to write to the video")
    h, w = clips.frames.shape[1:3]
    with video_writer(path, fps, (w, h)) as video:
        video.write(clips.frames)


def record_video_trace(clips: Clips, path: str, fps: float, first_frame: int = 0) -> None:
    """Record in the clips' trace fields, in place, where the video at ``path`` holds
    each frame (it writes nothing): frame ``k`` of ``clips`` is frame ``first_frame + k``
    of the video (clips one after another, as :func:`render_video` and
    :meth:`Synthesis.write <fercli.synth.dataset.Synthesis.write>` put them), at
    ``fps``, in the video's pixel coordinates (identity transform), so ``fercli table``
    of the synth artifact and of the same video ingested and aligned line up row for row."""
    clips.source_frame = first_frame + np.arange(len(clips.frames), dtype=np.int64)
    clips.fps = np.full(len(clips), float(fps))
    clips.sources = np.asarray([os.path.basename(path)] * len(clips), dtype=object)
