"""The stage: a synth run, its clips generated one at a time (``Synthesis``) so a
writer can append them as they come and memory holds one clip, whatever the
number of subjects and clips (issue 19); ``synthesize`` gathers them in memory.
See :mod:`fercli.synth` for how a clip is made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

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

if TYPE_CHECKING:
    from fercli.artifacts import ClipWriter
    from fercli.synth.video import VideoFrames


@dataclass
class _Rendered:
    """One clip as rendered: frames, ground truth and the names it is stored under."""

    frames: np.ndarray     # (n, H, W[, 3]) uint8
    landmarks: np.ndarray  # (n, 68, 2) float64, frame pixels (the leftmost face's)
    head_pose: np.ndarray  # (n, 6) float32
    label: int
    subject: str
    clip_id: str
    source: str


class Synthesis:
    """A synth run: the options checked (and ``--faces`` loaded) on construction, the
    clips generated one at a time by :meth:`clips`, the run's meta complete once
    they all have been.

    ``classes`` picks a subset of :data:`CK_CLASSES` (in the given order);
    ``frames`` is the (min, max) clip length; ``size`` is (width, height);
    ``faces`` a folder of face photographs to warp instead of the astronaut.
    Subject ``i`` and the clips of class ``c`` depend only on (seed, i, c), so a
    class subset or more subjects keep the clips they share identical.
    """

    def __init__(
        self,
        subjects: int = 10,
        clips_per_class: int = 1,
        classes: Optional[Sequence[str]] = None,
        frames: tuple[int, int] = (8, 16),
        size: tuple[int, int] = (640, 490),
        color: bool = False,
        seed: int = 0,
        faces: Optional[str] = None,
        motion: str = "none",
        faces_per_frame: int = 1,
    ):
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
        self.textures = load_faces(faces) if faces is not None else [astronaut()]
        if faces_per_frame < 1 or subjects % faces_per_frame:
            raise FercliError(f"--subjects ({subjects}) must be a multiple of --faces-per-frame ({faces_per_frame})")
        k_faces = int(faces_per_frame)
        # Faces side by side: each in a tile of its own (its own background), the
        # last tile taking the remainder of the width.
        tiles = [w // k_faces] * (k_faces - 1) + [w - (w // k_faces) * (k_faces - 1)]
        if min(tiles) < 16:
            raise FercliError(f"--size {w}x{h} is too narrow for {k_faces} faces side by side")
        self.class_names = classes
        self.subjects, self.clips_per_class, self.frames, self.size = subjects, clips_per_class, (lo, hi), (w, h)
        self.color, self.seed, self.faces, self.motion = color, seed, faces, motion
        self.k_faces, self.tiles = k_faces, tiles
        self._occluded: dict[str, list[int]] = {}
        self._speech_hz: dict[str, float] = {}

    def __len__(self) -> int:
        """How many clips the run makes."""
        return self.subjects // self.k_faces * len(self.class_names) * self.clips_per_class

    def _rendered(self, progress: Optional[ProgressFn] = None) -> Iterator[_Rendered]:
        (lo, hi), h, seed, k_faces = self.frames, self.size[1], self.seed, self.k_faces
        head_motion = MOTIONS[self.motion]
        width = max(3, len(str(self.subjects)))
        self._occluded.clear()
        self._speech_hz.clear()
        total = len(self)
        done = 0
        report(progress, 0, total)
        for g in range(self.subjects // k_faces):
            members = [_make_subject(s, self.textures, np.random.default_rng([seed, 0, s]), (tw, h), self.color, width)
                       for s, tw in zip(range(g * k_faces, (g + 1) * k_faces), self.tiles)]
            group = "+".join(m.name for m in members)
            k = 0
            for label, name in enumerate(self.class_names):
                for rep in range(self.clips_per_class):
                    parts = []
                    for s, member, tw in zip(range(g * k_faces, (g + 1) * k_faces), members, self.tiles):
                        rng = np.random.default_rng([seed, 1, s, CK_CLASSES.index(name), rep])
                        motion_rng = np.random.default_rng([seed, 2, s, CK_CLASSES.index(name), rep])
                        speech_rng = np.random.default_rng([seed, 3, s, CK_CLASSES.index(name), rep]) if head_motion.speech else None
                        # Every face of a group clip shows the first one's clip length.
                        length = (lo, hi) if not parts else (len(parts[0][0]),) * 2
                        parts.append(_render_clip(member, name, rng, length, (tw, h), self.color, head_motion, motion_rng, speech_rng))
                    seq, pts, occ, truth, rate = parts[0] if k_faces == 1 else (np.concatenate([p[0] for p in parts], axis=2), *parts[0][1:])
                    k += 1
                    clip_id = f"{group}_{k:03d}"
                    if occ.any():
                        self._occluded[clip_id] = [int(np.argmax(occ)), int(len(occ) - 1 - np.argmax(occ[::-1]))]
                    if rate is not None:
                        self._speech_hz[clip_id] = round(rate, 4)
                    yield _Rendered(seq, pts, truth, label, group, clip_id, "synth:" + "+".join(m.texture.name for m in members))
                    done += 1
                    report(progress, done, total)

    def clips(self, progress: Optional[ProgressFn] = None) -> Iterator[Clips]:
        """The run's clips, one :class:`Clips` of one clip at a time, in order."""
        for r in self._rendered(progress):
            yield Clips.from_sequences(
                [r.frames], [r.label], self.class_names, [r.subject], [r.clip_id], [r.source],
                landmarks=r.landmarks.astype(np.float32), face_found=np.ones(len(r.frames), bool), head_pose=r.head_pose,
            )

    def write(self, writer: "ClipWriter", video: Optional["VideoFrames"] = None, progress: Optional[ProgressFn] = None) -> None:
        """Append every clip to ``writer`` as it is made (and its frames to ``video``,
        the artifact's frames then pointing at the video's), then the run's meta."""
        from fercli.synth.video import record_video_trace

        for clips in self.clips(progress):
            if video is not None:
                video.write(clips.frames)
                record_video_trace(clips, video.path, video.fps, first_frame=writer.n_frames)
            writer.append(clips)
        writer.meta.update(self.meta)

    @property
    def meta(self) -> dict:
        """The artifact's meta: the parameters, and per clip what was drawn (complete once
        every clip has been generated)."""
        (lo, hi), (w, h) = self.frames, self.size
        meta = {
            "synth": {
                "seed": self.seed, "subjects": self.subjects, "clips_per_class": self.clips_per_class, "frames": [lo, hi],
                "size": [w, h], "color": self.color, "faces": self.faces or "astronaut", "motion": self.motion,
            },
            "landmarks": "ground truth (synth model), frame pixels",
            "head_pose": "ground truth rotation (synth model); position unknown (orthographic render)",
        }
        if self._occluded:
            # First and last occluded frame per clip (--motion strong): the face is
            # there, its landmarks exact, but partly hidden.
            meta["synth"]["occluded"] = dict(self._occluded)
        if self._speech_hz:
            # Syllables per second of each clip's talking mouth (--motion speech; the
            # leftmost face's in a group clip, like the landmarks).
            meta["synth"]["speech_hz"] = dict(self._speech_hz)
        if self.k_faces > 1:
            # The artifact holds one face's landmarks per frame: the leftmost's.  Tile
            # k of group g is exactly subject g*K+k's single-face clip rendered at the
            # tile's size with --frames N:N (same seed), so its truth is that clip's
            # landmarks shifted right by the tiles before it.
            meta["synth"]["faces_per_frame"] = self.k_faces
            meta["synth"]["tiles"] = list(self.tiles)
            meta["landmarks"] = "ground truth (synth model) of the leftmost face, frame pixels"
        return meta


def synthesize(progress: Optional[ProgressFn] = None, **options) -> Clips:
    """Make a CK+-like set of expression clips, all in memory; ``options`` are
    :class:`Synthesis`'s (``fercli synth`` streams the clips to the artifact instead)."""
    run = Synthesis(**options)
    rendered = list(run._rendered(progress))
    clips = Clips.from_sequences(
        [r.frames for r in rendered], [r.label for r in rendered], run.class_names, [r.subject for r in rendered],
        [r.clip_id for r in rendered], [r.source for r in rendered],
        landmarks=np.concatenate([r.landmarks for r in rendered]).astype(np.float32),
        face_found=np.ones(sum(len(r.frames) for r in rendered), bool), head_pose=np.concatenate([r.head_pose for r in rendered]),
    )
    clips.meta = run.meta
    return clips
