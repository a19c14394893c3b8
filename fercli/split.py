"""Subject-independent k-fold assignment (thesis 3.3.1, 4.3.1: 10-fold, no subject in two folds).

CK+ and Oulu-CASIA results are reported with subject-independent 10-fold cross
validation: every clip of a subject lands in the same fold, so a network is
never tested on a face it saw in training.  Folds should also hold the classes
in about the dataset's proportions, which subjects allow only approximately.

The assignment is greedy: subjects (groups) go largest first (seeded random
order among equals), each to the fold where adding its class
counts raises the sum over folds and classes of (count / class total)^2 the
least -- the fold with the fewest of *its* classes, relative to how common
each class is -- ties broken by fewer clips, then by a seeded fold order.
Among groups of equal size, those of the commonest main class go first, so a
class is dealt round the folds in turn and remainders land in small folds.  An
empty fold always costs nothing, so every fold gets a subject first.  With
``by='clip'`` every clip is its own group and the same rule gives ordinary
stratified k-fold.  With ``by='identity'`` (data without subject ids) the groups
are identities clustered from face descriptors (:func:`infer_identities`); they
replace the subjects, and the folds' record says they were inferred.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from fercli.artifacts import ClipReader, Clips, ClipWriter
from fercli.clipstream import map_clips
from fercli.errors import FercliError
from fercli.progress import ProgressFn

BY = ("subject", "clip", "identity")


def has_official_split(clips: Clips) -> bool:
    """True when the dataset ships its own partition (FER2013 Usage, SFEW/AFEW Train/Val, CIFAR)."""
    return clips.split is not None and any(str(s) for s in clips.split)


def assign_folds(clips: Clips, folds: int, by: str = "subject", seed: int = 0) -> np.ndarray:
    """Fold id (0..folds-1) per clip, subject-independent and class-stratified.

    Deterministic for a given (clips, folds, by, seed); independent of the
    order of the clips.  Raises :class:`FercliError` when there are fewer
    subjects (or clips) than folds.
    """
    if by not in BY:
        raise FercliError(f"--by must be subject, clip or identity (got '{by}')")
    if folds < 2:
        raise FercliError(f"--folds must be at least 2 (got {folds})")
    n = len(clips)
    if by in ("subject", "identity"):  # identity: split() put the inferred identities in subjects
        keys = np.asarray([str(s) for s in clips.subjects], dtype=object)
        names, group = np.unique(keys, return_inverse=True) if n else (np.zeros(0, object), np.zeros(0, np.int64))
        what = "identities" if by == "identity" else "subjects"
    else:
        names, group = np.asarray(clips.clip_ids, dtype=object), np.arange(n)
        what = "clips"
    return assign_groups(group, len(names), clips.labels, len(clips.class_names), folds, seed, what)


def assign_groups(group: np.ndarray, n_groups: int, labels: np.ndarray, k: int, folds: int, seed: int = 0, what: str = "subjects") -> np.ndarray:
    """Fold id per item of groups ``group`` (0..n_groups-1) with labels in 0..k-1 (-1
    unlabelled): the rule of :func:`assign_folds` for any grouping (the experiment
    protocol's folds over several data artifacts, by subject within each origin)."""
    if folds < 2:
        raise FercliError(f"--folds must be at least 2 (got {folds})")
    if n_groups < folds:
        raise FercliError(f"only {n_groups} {what} for {folds} folds: use --folds {max(2, n_groups)} or fewer" if n_groups >= 2
                          else f"only {n_groups} {what}: cross-validation needs at least 2")
    # Unlabelled clips (label -1) are balanced as a class of their own.
    cls = np.where(np.asarray(labels) < 0, k, labels)
    counts = np.zeros((n_groups, k + 1), dtype=np.int64)
    np.add.at(counts, (group, cls), 1)
    totals = counts.sum(axis=0)
    weight = np.where(totals > 0, 1.0 / np.maximum(totals, 1), 0.0)

    rng = np.random.default_rng(seed)
    sizes = counts.sum(axis=1)
    # Largest groups first; among equal sizes, group by main class (commonest
    # class first) so each class is dealt round the folds in turn and the
    # remainders land in the smallest folds; random within that.
    main_class = np.argmax(counts, axis=1)
    class_rank = np.argsort(np.argsort(-totals, kind="stable"), kind="stable")
    order = np.lexsort((rng.permutation(n_groups), class_rank[main_class], -sizes))
    fold_rank = rng.permutation(folds)  # seeded tie-break between folds

    fold_counts = np.zeros((folds, k + 1), dtype=np.int64)
    fold_sizes = np.zeros(folds, dtype=np.int64)
    group_fold = np.empty(n_groups, dtype=np.int64)
    for g in order:
        c = counts[g]
        cost = fold_counts @ (c * weight)
        best = np.lexsort((fold_rank, fold_sizes, np.round(cost, 12)))[0]
        group_fold[g] = best
        fold_counts[best] += c
        fold_sizes[best] += sizes[g]
    return group_fold[group]


def fold_report(clips: Clips, folds: np.ndarray) -> dict:
    """Clips, subjects and class counts per fold, and how far classes are from even."""
    k = len(clips.class_names)
    present = sorted(int(f) for f in np.unique(folds) if f >= 0)
    per_fold = []
    for f in present:
        idx = np.flatnonzero(folds == f)
        labels = clips.labels[idx]
        per_fold.append({
            "fold": f,
            "clips": int(len(idx)),
            "subjects": int(len(set(str(s) for s in clips.subjects[idx]))),
            "classes": {clips.class_names[c]: int((labels == c).sum()) for c in range(k)},
        })
    spread = {}
    for c, name in enumerate(clips.class_names):
        values = [p["classes"][name] for p in per_fold]
        if values:
            spread[name] = int(max(values) - min(values))
    subject_folds: dict[str, set] = {}
    for s, f in zip(clips.subjects, folds):
        subject_folds.setdefault(str(s), set()).add(int(f))
    return {
        "folds": len(present),
        "per_fold": per_fold,
        "class_spread": spread,
        "subjects_in_several_folds": sum(1 for v in subject_folds.values() if len(v) > 1),
    }


def official_report(clips: Clips) -> dict[str, int]:
    """Clips per official partition ('' = none)."""
    assert clips.split is not None
    values = [str(s) for s in clips.split]
    return {name: values.count(name) for name in sorted(set(values))}


def split(clips: Clips, folds: int, by: str = "subject", seed: int = 0) -> Clips:
    """A copy of ``clips`` with ``folds`` set by :func:`assign_folds` (official split kept as it is)."""
    out = clips.copy()
    settings = {"k": int(folds), "by": by, "seed": int(seed)}
    if by == "identity":
        out = infer_identities(out)
        found = out.meta["identities"]
        settings["identities"] = f"inferred from face descriptors, not given ({found['identities']} identities, {found['method']})"
    out.folds = assign_folds(out, folds, by, seed)
    out.meta = {**out.meta, "folds": settings}
    return out


def infer_identities(clips: Clips, threshold: Optional[float] = None) -> Clips:
    """A copy whose subjects are identities clustered from face descriptors
    (:mod:`fercli.identity`): for data without subject ids, so that ``--by identity``
    folds keep every person in one fold.  ``meta['identities']`` records the
    clusters (sizes, the given subject names each pooled)."""
    from fercli import identity

    threshold = identity.SAME_FACE if threshold is None else threshold
    labels = identity.cluster(identity.clip_descriptors(clips), threshold)
    out = clips.copy()
    out.subjects = np.array([identity.identity_name(int(k)) for k in labels], dtype=object)
    out.meta["identities"] = identity.identity_report(labels, clips.subjects, threshold)
    return out


def keep_official(clips: Clips) -> Clips:
    """A copy that keeps the official split and records that no folds were made."""
    return clips.copy()


#: The per-clip arrays :func:`split` sets (folds; subjects, with ``by='identity'``).
SET_FIELDS = ("folds", "subjects")


def write_split(reader: ClipReader, writer: ClipWriter, header: Clips, progress: Optional[ProgressFn] = None) -> None:
    """Stream ``reader``'s clips into ``writer`` with the folds (and subjects) and meta of
    ``header``, what :func:`split` or :func:`keep_official` made of ``reader.header``:
    folds need only the per-clip arrays, the frames go through a batch at a time."""
    done = 0

    def with_folds(batch: Clips) -> Clips:
        nonlocal done  # map_clips hands the batches over in order
        rows = np.arange(done, done + len(batch))
        done += len(batch)
        values = {name: None if getattr(header, name) is None else getattr(header, name)[rows] for name in SET_FIELDS}
        return dataclasses.replace(batch, meta=dict(header.meta), **values)

    map_clips(reader, writer, with_folds, progress)
    if writer.n_clips == 0:
        writer.append(with_folds(reader.read(np.zeros(0, np.int64))))


def describe(report: dict, by: Optional[str] = None) -> str:
    """One line for the CLI."""
    sizes = [p["clips"] for p in report["per_fold"]]
    subjects = [p["subjects"] for p in report["per_fold"]]
    worst = max(report["class_spread"].values(), default=0)
    return (f"{report['folds']} folds{f' by {by}' if by else ''}: {min(sizes)}-{max(sizes)} clips and "
            f"{min(subjects)}-{max(subjects)} subjects per fold; per-class counts differ by at most {worst} between folds; "
            f"{report['subjects_in_several_folds']} subject(s) in more than one fold")
