"""Pixel-level helpers every stage shares: image file extensions, gray/colour
conversion, resizing, and the frames -> (N, C, H, W) layout models take.

One implementation each, so a gray frame is the same bytes whether ``ingest``,
``align --gray``, ``lbptop``, the sample builder or ``live`` made it: colour goes
through OpenCV's ``COLOR_RGB2GRAY`` (ITU-R BT.601 luma, 0.299 R + 0.587 G +
0.114 B in fixed point; fercli stores colour frames in RGB order).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from fercli.errors import FercliError

#: File name endings read as still images (compared in lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".jp2")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 gray frames (F, H, W) from gray (F, H, W), (F, H, W, 1) or RGB (F, H, W, 3) frames."""
    if frames.ndim == 3:
        return frames
    if frames.ndim == 4 and frames.shape[-1] == 1:
        return frames[..., 0]
    if frames.ndim == 4 and frames.shape[-1] == 3:
        import cv2

        f, h, w, _ = frames.shape
        if f == 0:
            return np.zeros((0, h, w), np.uint8)
        # All frames as one tall image: one call instead of one per frame.
        return cv2.cvtColor(np.ascontiguousarray(frames).reshape(f * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(f, h, w)
    raise FercliError(f"frames must be (F, H, W) gray or (F, H, W, 3) colour, found shape {frames.shape}")


def frame_to_gray(frame: np.ndarray) -> np.ndarray:
    """One (H, W[, 1|3]) frame as (H, W) gray."""
    return frame if frame.ndim == 2 else to_gray(frame[None])[0]


def to_color(frames: np.ndarray) -> np.ndarray:
    """(F, H, W[, 1]) gray frames as (F, H, W, 3) with three equal channels; colour frames unchanged."""
    if frames.ndim == 4 and frames.shape[-1] == 3:
        return frames
    gray = frames[..., 0] if frames.ndim == 4 else frames
    return np.repeat(gray[..., None], 3, axis=-1)


def resize_frames(frames: np.ndarray, size: Optional[tuple[int, int]]) -> np.ndarray:
    """Resize (F, H, W[, 3]) uint8 frames to ``size`` = (w, h); no-op when equal."""
    if size is None or (frames.shape[2], frames.shape[1]) == tuple(size):
        return frames
    import cv2

    shrinking = size[0] < frames.shape[2]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = np.empty((len(frames), size[1], size[0], *frames.shape[3:]), np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, tuple(size), interpolation=interp).reshape(out.shape[1:])
    return out


def to_channels(frames: np.ndarray, channels: int) -> np.ndarray:
    """(F, H, W[, 3]) uint8 -> (F, C, H, W) uint8 with C = ``channels`` (gray <-> colour as above)."""
    if channels == 1:
        return np.ascontiguousarray(to_gray(frames)[:, None])
    if channels == 3:
        return np.ascontiguousarray(np.moveaxis(to_color(frames), -1, 1))
    raise FercliError(f"cannot turn frames into {channels} channels")
