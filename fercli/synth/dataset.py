"""The stage: ``synthesize`` makes the CK+-like set, subjects x classes x clips
(see :mod:`fercli.synth`)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.expressions import CK_CLASSES
from fercli.progress import ProgressFn, report
from fercli.synth.clip import _render_clip
from fercli.synth.facs import PROTOTYPES
from fercli.synth.identity import _make_subject
from fercli.synth.motion import MOTIONS
from fercli.synth.textures import astronaut, load_faces


def synthesize(
    subjects: int = 10,
    clips_per_class: int = 1,
    classes: Optional[Sequence[str]] = None,
    frames: tuple[int, int] = (8, 16),
    size: tuple[int, int] = (640, 490),
    color: bool = False,
    seed: int = 0,
    faces: Optional[str] = None,
    progress: Optional[ProgressFn] = None,
    motion: str = "none",
    faces_per_frame: int = 1,
) -> Clips:
    """Make a CK+-like set of expression clips (see the module docstring).

    ``classes`` picks a subset of :data:`CK_CLASSES` (in the given order);
    ``frames`` is the (min, max) clip length; ``size`` is (width, height);
    ``faces`` a folder of face photographs to warp instead of the astronaut.
    Subject ``i`` and the clips of class ``c`` depend only on (seed, i, c), so a
    class subset or more subjects keep the clips they share identical.
    """
    classes = list(CK_CLASSES if classes is None else classes)
    if not classes:
        raise FercliError("--classes needs at least one class")
    unknown = [c for c in classes if c not in PROTOTYPES]
    if unknown:
        raise FercliError(f"unknown class '{unknown[0]}' (synth knows {', '.join(CK_CLASSES)})")
    if len(set(classes)) != len(classes):
        raise FercliError("--classes lists a class twice")
    if subjects < 1:
        raise FercliError(f"--subjects must be at least 1 (got {subjects})")
    if clips_per_class < 1:
        raise FercliError(f"--clips-per-class must be at least 1 (got {clips_per_class})")
    lo, hi = int(frames[0]), int(frames[1])
    if lo < 1 or hi < lo:
        raise FercliError(f"--frames needs 0 < MIN <= MAX (got {lo}:{hi})")
    w, h = int(size[0]), int(size[1])
    if w < 16 or h < 16:
        raise FercliError(f"--size must be at least 16x16 (got {w}x{h})")
    if motion not in MOTIONS:
        raise FercliError(f"--motion must be one of {', '.join(MOTIONS)} (got '{motion}')")
    head_motion = MOTIONS[motion]
    textures = load_faces(faces) if faces is not None else [astronaut()]

    if faces_per_frame < 1 or subjects % faces_per_frame:
        raise FercliError(f"--subjects ({subjects}) must be a multiple of --faces-per-frame ({faces_per_frame})")
    k_faces = int(faces_per_frame)
    # Faces side by side: each in a tile of its own (its own background), the
    # last tile taking the remainder of the width.
    tiles = [w // k_faces] * (k_faces - 1) + [w - (w // k_faces) * (k_faces - 1)]
    if min(tiles) < 16:
        raise FercliError(f"--size {w}x{h} is too narrow for {k_faces} faces side by side")
    width = max(3, len(str(subjects)))
    sequences, landmarks, labels, subj, clip_ids, sources, poses = [], [], [], [], [], [], []
    occluded: dict[str, list[int]] = {}
    speech_hz: dict[str, float] = {}
    total = subjects // k_faces * len(classes) * clips_per_class
    done = 0
    report(progress, 0, total)
    for g in range(subjects // k_faces):
        members = [_make_subject(s, textures, np.random.default_rng([seed, 0, s]), (tw, h), color, width)
                   for s, tw in zip(range(g * k_faces, (g + 1) * k_faces), tiles)]
        group = "+".join(m.name for m in members)
        k = 0
        for label, name in enumerate(classes):
            for rep in range(clips_per_class):
                parts = []
                for s, member, tw in zip(range(g * k_faces, (g + 1) * k_faces), members, tiles):
                    rng = np.random.default_rng([seed, 1, s, CK_CLASSES.index(name), rep])
                    motion_rng = np.random.default_rng([seed, 2, s, CK_CLASSES.index(name), rep])
                    speech_rng = np.random.default_rng([seed, 3, s, CK_CLASSES.index(name), rep]) if head_motion.speech else None
                    # Every face of a group clip shows the first one's clip length.
                    length = (lo, hi) if not parts else (len(parts[0][0]),) * 2
                    parts.append(_render_clip(member, name, rng, length, (tw, h), color, head_motion, motion_rng, speech_rng))
                seq, pts, occ, truth, rate = parts[0] if k_faces == 1 else (np.concatenate([p[0] for p in parts], axis=2), *parts[0][1:])
                k += 1
                if occ.any():
                    occluded[f"{group}_{k:03d}"] = [int(np.argmax(occ)), int(len(occ) - 1 - np.argmax(occ[::-1]))]
                if rate is not None:
                    speech_hz[f"{group}_{k:03d}"] = round(rate, 4)
                sequences.append(seq)
                landmarks.append(pts)
                poses.append(truth)
                labels.append(label)
                subj.append(group)
                clip_ids.append(f"{group}_{k:03d}")
                sources.append("synth:" + "+".join(m.texture.name for m in members))
                done += 1
                report(progress, done, total)
    clips = Clips.from_sequences(
        sequences, labels, classes, subj, clip_ids, sources,
        landmarks=np.concatenate(landmarks).astype(np.float32),
        face_found=np.ones(sum(len(x) for x in sequences), bool), head_pose=np.concatenate(poses),
    )
    clips.meta = {
        "synth": {
            "seed": seed, "subjects": subjects, "clips_per_class": clips_per_class, "frames": [lo, hi],
            "size": [w, h], "color": color, "faces": faces or "astronaut", "motion": motion,
        },
        "landmarks": "ground truth (synth model), frame pixels",
        "head_pose": "ground truth rotation (synth model); position unknown (orthographic render)",
    }
    if occluded:
        # First and last occluded frame per clip (--motion strong): the face is
        # there, its landmarks exact, but partly hidden.
        clips.meta["synth"]["occluded"] = occluded
    if speech_hz:
        # Syllables per second of each clip's talking mouth (--motion speech; the
        # leftmost face's in a group clip, like the landmarks).
        clips.meta["synth"]["speech_hz"] = speech_hz
    if k_faces > 1:
        # The artifact holds one face's landmarks per frame: the leftmost's.  Tile
        # k of group g is exactly subject g*K+k's single-face clip rendered at the
        # tile's size with --frames N:N (same seed), so its truth is that clip's
        # landmarks shifted right by the tiles before it.
        clips.meta["synth"]["faces_per_frame"] = k_faces
        clips.meta["synth"]["tiles"] = tiles
        clips.meta["landmarks"] = "ground truth (synth model) of the leftmost face, frame pixels"
    return clips
