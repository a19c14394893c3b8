"""Video output (``--video``): the clips one after another as an MP4, and the trace
fields that point the artifact's frames at it."""

from __future__ import annotations

import os

import cv2
import numpy as np

from fercli.artifacts import Clips
from fercli.errors import FercliError


def render_video(clips: Clips, path: str, fps: float = 30.0) -> None:
    """Write the clips one after another as an MP4 (mp4v) video, atomically."""
    from fercli.artifacts import atomic_path

    if path == "-":
        raise FercliError("--video needs a file name, not '-'")
    if fps <= 0:
        raise FercliError(f"--fps must be positive (got {fps})")
    if len(clips.frames) == 0:
        raise FercliError("no frames to write to the video")
    h, w = clips.frames.shape[1:3]
    with atomic_path(path, suffix=os.path.splitext(path)[1] or ".mp4") as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h), True)
        if not writer.isOpened():
            raise FercliError(f"OpenCV cannot write an mp4v video to {path} (use a .mp4 name)")
        try:
            for frame in clips.frames:
                if frame.ndim == 2:
                    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                else:
                    frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                writer.write(frame)
        finally:
            writer.release()


def record_video_trace(clips: Clips, path: str, fps: float) -> None:
    """Record in the clips' trace fields, in place, where :func:`render_video` put each
    frame (it writes nothing): frame ``k`` of the artifact is frame ``k`` of the video
    (clips one after another), at ``fps``, in the video's pixel coordinates (identity
    transform), so ``fercli table`` of the synth artifact and of the same video
    ingested and aligned line up row for row."""
    clips.source_frame = np.arange(len(clips.frames), dtype=np.int64)
    clips.fps = np.full(len(clips), float(fps))
    clips.sources = np.asarray([os.path.basename(path)] * len(clips), dtype=object)
