"""Who is who without subject ids: face descriptors and identity clusters.

A descriptor is the 128-D embedding of dlib's face-recognition ResNet
(``dlib_face_recognition_resnet_model_v1.dat``, shipped in the
``face_recognition_models`` package with the landmark model; dlib reports 99.38 %
on LFW).  dlib cuts its 150x150 face chip from the 68 landmarks fercli already has;
two photographs of one person are typically less than 0.6 apart (Euclidean),
different people more.

Used twice:

* ``align --faces all`` (:class:`Gallery`): a face that appears again after an
  exit, an occlusion or a cut -- whenever the tracker would otherwise start a new
  face -- takes back the id of the closest face seen before if their descriptors
  are within :data:`SAME_FACE`;
* ``split --by identity`` (:func:`cluster`): clips are grouped into identities
  when no subject ids exist, so no person lands in two folds.

The threshold (:data:`SAME_FACE` = 0.5) was chosen from distances measured here on
the two real people the installed packages ship (scikit-image's astronaut
photograph and matplotlib's ``grace_hopper.jpg``; docs/analysis.md lists them):
different people 0.68 apart in the photographs and 0.6-0.75 between their synth
clips, the same person (a face and its mirror image, synth clips of one face
under expression, pose and light) 0.1-0.35 apart.  0.5 sits between the two;
single linkage errs towards merging, which for folds is the safe side (two people
in one fold costs balance, one person in two folds leaks).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from fercli import faces
from fercli.errors import FercliError

#: Descriptor distance under which two faces are taken to be one person (module docstring).
SAME_FACE = 0.5
#: Frames per clip whose descriptors are averaged (evenly spaced over the frames with a face).
FRAMES_PER_CLIP = 3
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@functools.lru_cache(maxsize=1)
def recognition_model():
    """dlib's face-recognition ResNet (loaded once per process)."""
    path = os.path.join(faces.models_dir(), MODEL_FILE)
    return faces.load_dlib_model("face_recognition_model_v1", path, "dlib's face recognition model (from face_recognition_models)")


def descriptor(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(128,) descriptor of the face whose 68 ``landmarks`` (pixels) lie in ``image``
    (RGB, or gray, which is given to the network as three equal channels)."""
    import dlib

    rgb = image if image.ndim == 3 else np.repeat(np.asarray(image)[..., None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    pts = np.asarray(landmarks, np.float64)
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
                                       [dlib.point(int(round(x)), int(round(y))) for x, y in pts])
    return np.asarray(recognition_model().compute_face_descriptor(rgb, shape), np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean descriptor distance (broadcasting over leading axes)."""
    return np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1)


def clip_descriptors(clips, progress=None) -> np.ndarray:
    """(N, 128) per clip: the mean descriptor of up to :data:`FRAMES_PER_CLIP` frames
    with a face (their recorded landmarks; NaN for a clip without landmarks)."""
    from fercli.progress import report

    if clips.landmarks is None:
        raise FercliError("the clips have no landmarks to cut face chips from: run `fercli align` first (or synth data)")
    out = np.full((len(clips), 128), np.nan, np.float32)
    found = clips.face_found if clips.face_found is not None else np.ones(len(clips.frames), bool)
    for i in range(len(clips)):
        rows = np.arange(clips.offsets[i], clips.offsets[i + 1])
        rows = rows[found[rows].astype(bool) & np.isfinite(clips.landmarks[rows]).all((1, 2))]
        if len(rows):
            picks = rows[np.unique(np.linspace(0, len(rows) - 1, min(FRAMES_PER_CLIP, len(rows))).round().astype(int))]
            out[i] = np.mean([descriptor(clips.frames[t], clips.landmarks[t]) for t in picks], axis=0)
        report(progress, i + 1, len(clips))
    return out


def cluster(descriptors: np.ndarray, threshold: float = SAME_FACE) -> np.ndarray:
    """Identity per row (0, 1, ... in order of first appearance): single linkage, i.e.
    rows closer than ``threshold`` are one identity, and so, transitively, are their
    neighbours'.  A row without a descriptor (NaN) is an identity of its own."""
    n = len(descriptors)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    d = np.asarray(descriptors, np.float32)
    ok = np.isfinite(d).all(1)
    valid = np.flatnonzero(ok)
    for start in range(0, len(valid), 1024):  # the distance matrix in blocks of rows
        block = valid[start:start + 1024]
        dist = distance(d[block][:, None, :], d[valid][None, :, :])
        for a, b in zip(*np.nonzero(dist < threshold)):
            i, j = root(int(block[a])), root(int(valid[b]))
            if i != j:
                parent[max(i, j)] = min(i, j)
    roots = np.array([root(i) for i in range(n)], dtype=np.int64)
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # number identities by first appearance
    return order[inverse]


def identity_report(labels: np.ndarray, subjects: Sequence[str], threshold: float, shown: int = 10) -> dict:
    """What :func:`cluster` found, for the CLI line and the lineage: the threshold,
    the number of identities, their sizes (clips) and the given subject names each
    one took (the first ``shown``), so a reviewer can see which clips were pooled."""
    clusters = []
    for k in range(int(labels.max()) + 1 if len(labels) else 0):
        members = sorted({str(s) for s in np.asarray(subjects, dtype=object)[labels == k]})
        clusters.append({"identity": identity_name(k), "clips": int((labels == k).sum()), "given_subjects": len(members),
                         "first_given": members[:shown]})
    return {"inferred": True, "method": f"dlib ResNet face descriptors, single linkage under {threshold:g}", "threshold": float(threshold),
            "identities": len(clusters), "sizes": [c["clips"] for c in clusters], "clusters": clusters}


def identity_name(k: int) -> str:
    return f"identity{k:03d}"


# --------------------------------------------------------------------------- tracking


@dataclass
class Gallery:
    """Descriptors of every face id a tracker has given out in one video, for taking
    a returning face's id back (``MultiFaceTracker``)."""

    threshold: float = SAME_FACE
    known: dict[int, list[np.ndarray]] = field(default_factory=dict)
    #: descriptors kept per id (the first ones: the face as it was first seen)
    keep: int = 4

    def clear(self) -> None:
        self.known.clear()

    def add(self, face_id: int, desc: Optional[np.ndarray]) -> None:
        if desc is not None and len(self.known.setdefault(face_id, [])) < self.keep:
            self.known[face_id].append(desc)

    def match(self, desc: np.ndarray, exclude: Sequence[int] = ()) -> Optional[int]:
        """The known id (not in ``exclude``: faces followed right now) closest to
        ``desc`` if within the threshold, else None."""
        best, best_d = None, self.threshold
        for fid, descs in self.known.items():
            if fid in exclude:
                continue
            d = float(np.min(distance(np.stack(descs), desc)))
            if d < best_d:
                best, best_d = fid, d
        return best

    def distance_to(self, face_id: int, desc: np.ndarray) -> float:
        descs = self.known.get(face_id)
        return float(np.min(distance(np.stack(descs), desc))) if descs else float("nan")
