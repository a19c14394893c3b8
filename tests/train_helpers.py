"""Tiny data for the training/evaluation tests (8x8 frames: a test epoch is milliseconds)."""

from __future__ import annotations

import numpy as np

from fercli.artifacts import Clips, save_clips

CLASSES = ["neutral", "happy", "sad"]


def tiny_clips(subjects: int = 6, frames: int = 4, size: int = 8, seed: int = 0, split: bool = False,
               variable: bool = False, classes=CLASSES) -> Clips:
    """Per class a bar in a different place fading in over the clip, plus noise."""
    rng = np.random.default_rng(seed)
    seqs, labels, subj, parts = [], [], [], []
    for s in range(subjects):
        for c, name in enumerate(classes):
            for r in range(2):
                base = np.zeros((size, size), np.float32)
                k = CLASSES.index(name) if name in CLASSES else c
                if k == 0:
                    base[1:3, :] = 220
                elif k == 1:
                    base[:, size - 3:size - 1] = 220
                else:
                    base[size // 2:size // 2 + 2, 1:size - 1] = 220
                t = frames + (r + s) % 3 if variable else frames
                seq = np.stack([np.clip(base * (i + 1) / t + rng.normal(0, 15, (size, size)), 0, 255) for i in range(t)]).astype(np.uint8)
                seqs.append(seq)
                labels.append(c)
                subj.append(f"S{s}")
                parts.append("test" if s >= subjects - 2 else "train")
    folds = np.asarray([int(x[1:]) % 3 for x in subj])
    extra = {"folds": folds}
    if split:
        extra = {"split": np.asarray(parts, dtype=object)}
    return Clips.from_sequences(seqs, labels, list(classes), subj, **extra)


def write(path, clips: Clips) -> str:
    save_clips(str(path), clips, [])
    return str(path)


def weights(path) -> dict:
    from fercli.protocol import load_model_file

    return load_model_file(str(path), "test").record.state


def max_diff(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) if a[k].size else 0.0 for k in a)


def train_to(path, opts, datasets, **kw):
    """Run the training stage in-process, checkpointing to ``path`` like the CLI."""
    from fercli.protocol import save_model_file
    from fercli.train import Callbacks, train

    return train(opts, datasets, callbacks=Callbacks(save=lambda r, a: save_model_file(str(path), r, [], a)), **kw)


def fit(epochs: int, **kw):
    from fercli.train import FitOptions

    return FitOptions(epochs=epochs, batch_size=8, optimizer="sgd", lr=0.05, **kw)


def with_planes(clips, maps: int = 8, size: int = 8, seed: int = 0):
    """Add fake LBP-TOP 'xt'/'yt' code maps (M per clip) so plane models can be fed."""
    rng = np.random.default_rng(seed)
    n = len(clips)
    clips.planes = {k: rng.integers(0, 256, (n * maps, size, size), dtype=np.uint8) for k in ("xt", "yt")}
    clips.plane_offsets = np.arange(n + 1, dtype=np.int64) * maps
    return clips
