"""One clip of one subject: expression, head motion and speech composed per frame,
warped, lit, shaded and noised, with its exact ground truth."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from fercli.geometry import apply_matrix, compose, invert
from fercli.synth.facs import AU_FIELDS, PROTOTYPES, UNILATERAL, _INNER_LOWER, _INNER_UPPER, _one_side, _ramp
from fercli.synth.identity import Subject
from fercli.synth.lighting import _light_field
from fercli.synth.motion import MOTIONS, Motion, _head_motion, _motion_blur
from fercli.synth.mouth import _mouth_cavity
from fercli.synth.occluders import _occlude
from fercli.synth.speech import speech_track
from fercli.synth.warp import RING, _pose_matrix, _project, _warp_maps


def _render_clip(subject: Subject, class_name: str, rng: np.random.Generator, frames: tuple[int, int], size: tuple[int, int], color: bool,
                 motion: Motion = MOTIONS["none"], motion_rng: Optional[np.random.Generator] = None,
                 speech_rng: Optional[np.random.Generator] = None):
    """One clip: frames, ground-truth landmarks (frame pixels), which frames an
    occluder covers, the true head pose and the speech rate (None: not talking).
    ``motion`` moves the head along paths drawn from ``motion_rng`` (a stream of its
    own, so the expression is the same with or without motion); a talking mouth
    (``motion.speech``) comes from ``speech_rng``, a third stream, so a speech clip
    is its mild clip with the mouth and jaw moving on top."""
    w, h = size
    n = int(rng.integers(frames[0], frames[1] + 1))
    # per-clip variation of pose and light (label-independent)
    yaw = subject.yaw + rng.normal(0, 2.0)
    roll = subject.roll + rng.normal(0, 1.5)
    iod = subject.iod * rng.uniform(0.95, 1.05)
    centre = subject.centre + rng.normal(0, 0.02, 2) * [w, h]
    brightness = rng.uniform(0.93, 1.07)
    noise_sigma = rng.uniform(1.0, 3.0) / 255.0
    # expression: per-AU intensity and timing
    apex = rng.uniform(0.75, 1.2) * subject.expressivity
    aus = {au: apex * rng.uniform(0.75, 1.15) for au in PROTOTYPES[class_name]}
    side = int(rng.integers(0, 2))
    onset = int(rng.integers(1, max(1, n // 3) + 1)) if n > 1 else 0
    onset = min(onset, n - 1)
    plateau = int(rng.integers(0, min(2, max(0, n - onset - 2)) + 1)) if n > 2 else 0
    power = rng.uniform(0.7, 1.4)
    ramps = {au: _ramp(n, onset, plateau, power, rng.uniform(0, 0.15)) for au in aus}
    # small head drift within the clip
    drift_xy = np.cumsum(rng.normal(0, 0.006 * iod, (n, 2)), axis=0)
    drift_roll = np.cumsum(rng.normal(0, 0.25, n))
    drift_yaw = np.cumsum(rng.normal(0, 0.25, n))
    fields = {au: (_one_side(AU_FIELDS[au], side) if class_name in UNILATERAL else AU_FIELDS[au]) for au in aus}
    head = _head_motion(motion, motion_rng, n, yaw, iod, centre, drift_xy, size) if motion.moves else None
    speech = speech_track(speech_rng, n) if motion.speech else None

    light = _light_field(subject, size, centre, iod, brightness, 0.0, color)
    to_src_inv_base = subject.to_source
    ring_src = apply_matrix(to_src_inv_base, RING)
    neutral_gap = float(np.mean(subject.neutral[_INNER_LOWER, 1] - subject.neutral[_INNER_UPPER, 1]))

    # Sensor noise: one field per clip, shifted by a random offset every frame
    # (drawing fresh Gaussian noise for every pixel was a third of the frame time).
    pad = 32
    noise_bank = rng.standard_normal((h + pad, w + pad, 3) if color else (h + pad, w + pad), dtype=np.float32) * np.float32(noise_sigma)
    noise_offsets = rng.integers(0, pad + 1, (n, 2))

    out = np.empty((n, h, w, 3) if color else (n, h, w), np.uint8)
    pts_out = np.empty((n, 68, 2), np.float64)
    occluded = np.zeros(n, bool)
    angles = np.zeros((n, 3))  # the head's yaw, pitch, roll per frame (degrees): the true pose
    src_pts = np.concatenate([subject.texture.landmarks, ring_src])
    shapes, poses = [], []  # per frame: the model shape and its canonical -> frame similarity
    for t in range(n):
        shape = subject.neutral.copy()
        for au, k in aus.items():
            shape += (k * ramps[au][t]) * fields[au]
        if speech is not None:
            shape += speech.field(t)
        shapes.append(shape)
        if head is None:
            angles[t] = (yaw + drift_yaw[t], 0.0, roll + drift_roll[t])
            pose = _pose_matrix(iod, angles[t, 2], centre + drift_xy[t])
        else:
            angles[t] = (head["yaw"][t] + drift_yaw[t], head["pitch"][t], roll + drift_roll[t] + head["roll"][t])
            pose = _pose_matrix(iod * head["scale"][t], angles[t, 2], head["centre"][t])
        poses.append(pose)
        pts_out[t] = apply_matrix(pose, _project(shape, angles[t, 0], angles[t, 1]))
    for t in range(n):
        shape, dst, pose = shapes[t], pts_out[t], poses[t]
        if head is not None:
            light = _light_field(subject, size, centre, iod, brightness * head["gain"][t], head["turn"][t], color)
        ring_dst = apply_matrix(pose, RING)
        global_inv = compose(subject.to_source, invert(pose))
        map_x, map_y = _warp_maps(np.concatenate([dst, ring_dst]), src_pts, subject.triangles, global_inv, (w, h))
        warped = cv2.remap(subject.source_rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped = warped.astype(np.float32)
        warped *= np.float32(1 / 255.0)
        alpha = warped[..., -1:] if color else warped[..., -1]
        fg = warped[..., :3] if color else warped[..., 0]
        frame = fg * alpha + subject.background * (1 - alpha)
        frame *= light
        gap = float(np.mean(shape[_INNER_LOWER, 1] - shape[_INNER_UPPER, 1])) - neutral_gap
        face_shade = float(np.mean(fg[int(np.clip(dst[30, 1], 0, h - 1)), int(np.clip(dst[30, 0], 0, w - 1))]))
        _mouth_cavity(frame, dst, gap, iod, max(0.3, face_shade) * brightness)
        if head is not None:
            if head["kernel"][t] is not None:
                frame = _motion_blur(frame, alpha, subject.background * light, head["kernel"][t])
            occ = head["occlusion"]
            if occ is not None and occ[0] <= t < occ[1]:
                _occlude(frame, pose, occ[2], occ[3])
                occluded[t] = True
        oy, ox = noise_offsets[t]
        frame += noise_bank[oy:oy + h, ox:ox + w]
        np.clip(frame * 255.0 + 0.5, 0, 255, out=frame)
        out[t] = frame.astype(np.uint8)
    return out, pts_out, occluded, true_pose(angles), (speech.rate if speech is not None else None)


def true_pose(angles: np.ndarray) -> np.ndarray:
    """(n, 6) head poses in :mod:`fercli.pose`'s columns of frames rendered at
    ``angles`` (yaw, pitch, roll in degrees): the rotation exactly, the position
    NaN (the render is orthographic, so the head has no distance)."""
    from fercli.pose import from_yaw_pitch_roll

    out = np.full((len(angles), 6), np.nan, np.float32)
    out[:, 3:] = from_yaw_pitch_roll(angles[:, 0], angles[:, 1], angles[:, 2])
    return out
