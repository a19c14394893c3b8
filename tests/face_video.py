"""A real face in motion for align/live tests, made from scikit-image's astronaut photograph.

Until a test needs ``fercli.synth``'s expressions, a moving crop of one real
face is enough: dlib finds it, and its landmarks are known exactly (dlib's on the
still photograph, carried through each frame's known warp), so alignment and
tracking can be checked against ground truth.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _reference() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data

    from fercli import faces

    img = skimage.data.astronaut()
    gray = img.mean(axis=2).astype(np.uint8)
    box = faces.hog_detector()(gray, 0)[0]
    lms = faces.predict_landmarks(faces.shape_predictor(), gray, (box.left(), box.top(), box.right() + 1, box.bottom() + 1))
    return img, lms


def face_frames(n: int, size: tuple[int, int] = (200, 200), seed: int = 0, scale: float = 1.0, max_angle: float = 6.0):
    """(n, H, W, 3) RGB frames of a face drifting/rotating smoothly, and (n, 68, 2) true landmarks."""
    import cv2

    img, lms = _reference()
    rng = np.random.default_rng(seed)
    w, h = size
    centre = lms[27:31].mean(0)  # nose bridge
    angles = np.linspace(-max_angle, max_angle, n) * rng.choice([-1, 1])
    shifts = np.cumsum(rng.normal(0, 1.5, size=(n, 2)), axis=0)
    frames, truth = [], []
    for t in range(n):
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angles[t]), scale)
        m[:, 2] += np.array([w / 2, h / 2]) - centre + shifts[t]
        frames.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        truth.append(lms @ m[:, :2].T + m[:, 2])
    return np.stack(frames), np.stack(truth).astype(np.float32)


def face_clips(lengths=(8, 6, 7), blank: dict | None = None, gray: bool = False, size=(200, 200)):
    """A Clips of moving-face clips with true landmarks; ``blank`` = {clip: [frame, ...]} set to black."""
    from fercli.artifacts import Clips

    seqs, truths = [], []
    for i, n in enumerate(lengths):
        f, lm = face_frames(n, size=size, seed=i)
        for t in (blank or {}).get(i, []):
            f[t] = 0
        if gray:
            f = f.mean(axis=3).round().astype(np.uint8)
        seqs.append(f)
        truths.append(lm)
    k = len(lengths)
    return Clips.from_sequences(seqs, labels=[i % 2 for i in range(k)], class_names=["happy", "surprise"],
                                subjects=[f"S{i // 2}" for i in range(k)], clip_ids=[f"c{i}" for i in range(k)],
                                landmarks=np.concatenate(truths), face_found=np.ones(sum(lengths), bool))
