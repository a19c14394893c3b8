"""Which clips train, which are held out: planned once at training time, written into
the model, replayed by every later stage (thesis 3.3.1, 4.3.1-4.3.2, 5.3.1).

**Planning** (:func:`plan`), per data artifact given to ``fercli train``:

- an artifact with a ``fold`` array (``fercli split``) keeps its folds: with
  ``--fold k`` its fold k is the test part and its other folds train;
- with ``--fold``/``--folds`` and no artifact holding folds, folds are computed by
  subject (``--n-folds``, ``--seed``; :func:`fercli.split.assign_groups`) over all
  of them, subjects compared within their data origin (:mod:`.join`);
- an artifact without folds but with an official split (FER2013, SFEW, CIFAR-10)
  contributes its train part to training, its validation part to validation and
  its test part to the test part -- never a clip of its test part to training;
- any other artifact (no folds, no official split) goes to training only.

Before anything trains, every run (fold) is checked: no subject of its test part
may be in its training part -- within one artifact (unless its folds were made
``--by clip``) and across related artifacts (the aligned and unaligned copies of
one data set, say).  A violation is refused with a sentence.

**The record** (:class:`PartitionRecord`) is stored in the model artifact:

- ``extra.partition`` (JSON): scheme, classes and the rule that chose them, fold
  settings, per data artifact its identity (``fercli_id``, path), origins, role
  and fold source, and per run (fold) and part (train / val / test) the number
  of clips and subjects and the per-class sample counts;
- ``partition/<d>/`` (HDF5 datasets, one group per data artifact ``d``): for every
  clip the run used, ``clip_id``, ``subject``, ``sequence_id`` (strings), ``label``
  (model class) and ``part`` (runs x clips, uint8: 0 unused, 1 train, 2 val,
  3 test) -- compact for CK+ (hundreds of clips) and AffectNet-sized data
  (300 k clips x 10 runs = 3 MB) alike.

**Replaying** (:func:`replay`): a data artifact given to ``evaluate`` or ``prune``
is matched against the record: the very artifact (same ``fercli_id``) by clip id;
a copy of it (the same data origin: re-aligned, unaligned, ``--ckplus-split`` or
not) by clip id and by the id of the original sequence, and by subject -- a clip
of a subject the run trained on counts as trained whatever its id; data of
another origin is new to the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from fercli.artifacts import Clips, display_name
from fercli.errors import FercliError
from fercli.protocol.join import join_class_names, origin_groups, related, remap_labels

VERSION = 1
UNUSED, TRAIN, VAL, TEST = 0, 1, 2, 3
PART_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}

# Official partitions, compared in lower case.  FER2013's 'PublicTest' is its
# validation part and 'PrivateTest' its test part (the thesis reports the latter);
# a data set with only train/val (e.g. AFEW 'Train'/'Val') is tested on 'val'.
TRAIN_PARTS = {"train", "training"}
TEST_PARTS = {"test", "testing", "privatetest"}
VAL_PARTS = {"val", "valid", "validation", "publictest"}

ROLE_FOLDS = "folds from the artifact"
ROLE_COMPUTED = "folds computed by subject"
ROLE_OFFICIAL = "official split"
ROLE_TRAIN_ONLY = "training only"


# --------------------------------------------------------------------------- data


@dataclass
class DataSet:
    """One data artifact as the protocol sees it: its clips, identity and per-clip
    labels among the model's classes (-1: not used)."""

    clips: Clips
    identity: dict
    labels: np.ndarray

    @property
    def name(self) -> str:
        return display_name(str(self.identity.get("path") or self.identity.get("id") or "the data"))

    @property
    def origins(self) -> list[str]:
        return list(self.identity.get("origins") or [])


def official_parts(split: Optional[np.ndarray]) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(train, val, test) clip indices of the official split, or None without one."""
    if split is None:
        return None
    low = np.asarray([str(s).lower() for s in split], dtype=object)
    train = np.flatnonzero(np.isin(low, list(TRAIN_PARTS)))
    val = np.flatnonzero(np.isin(low, list(VAL_PARTS)))
    test = np.flatnonzero(np.isin(low, list(TEST_PARTS)))
    if not len(train):
        return None
    if not len(test):  # train/val data sets are tested on val
        test, val = val, np.zeros(0, np.int64)
    return train, val, test


# --------------------------------------------------------------------------- the record


@dataclass
class Run:
    """One experiment of a training run: a held-out fold, or the official split / all data."""

    fold: Optional[int]
    name: str


@dataclass
class ArtifactPart:
    """The clips of one data artifact that a training run used, and their part per run."""

    identity: dict
    origins: list[str]
    role: str
    clip_ids: np.ndarray
    subjects: np.ndarray
    sequences: np.ndarray
    labels: np.ndarray
    parts: np.ndarray  # (runs, clips) uint8
    fold_source: Optional[str] = None
    subject_independent: bool = True
    rows: Optional[np.ndarray] = None  # clip indices in the training-time Clips (not stored)

    @property
    def name(self) -> str:
        return display_name(str(self.identity.get("path") or self.identity.get("id") or "?"))

    def rows_in(self, run: int, part: int) -> np.ndarray:
        assert self.rows is not None, "rows exist only while training"
        return self.rows[self.parts[run] == part]

    def subjects_in(self, run: int, part: int) -> set[str]:
        return set(self.subjects[self.parts[run] == part].tolist())

    def arrays(self) -> dict[str, np.ndarray]:
        return {"clip_id": _utf8(self.clip_ids), "subject": _utf8(self.subjects), "sequence_id": _utf8(self.sequences),
                "label": self.labels.astype(np.int32), "part": self.parts.astype(np.uint8)}


@dataclass
class PartitionRecord:
    runs: list[Run]
    data: list[ArtifactPart]
    class_names: list[str]
    scheme: str
    classes: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    counts: list[dict] = field(default_factory=list)  # per run: {part: {clips, subjects, samples_per_class}}

    def run_of(self, fold: Optional[int], name: str = "the model") -> int:
        for i, r in enumerate(self.runs):
            if r.fold == fold:
                return i
        if not self.folds:
            raise FercliError(f"{name} was trained on its {self.runs[0].name}, not on folds: drop --fold")
        have = ", ".join(map(str, self.folds))
        raise FercliError(f"{name} was trained with fold {have} held out, not fold {fold}: fold {fold}'s clips were training data for it")

    def only_run(self, run: int) -> "PartitionRecord":
        """The record of one run: what a model made from that run's weights (prune, rebuild) trained on."""
        keep = [dataclasses.replace(a, parts=a.parts[run:run + 1]) for a in self.data]
        return dataclasses.replace(self, runs=[self.runs[run]], data=keep, counts=self.counts[run:run + 1])

    @property
    def folds(self) -> list[int]:
        return [r.fold for r in self.runs if r.fold is not None]

    def subjects(self, run: int, part: int, origins: Optional[Sequence[str]] = None) -> list[str]:
        """Sorted subjects of ``part`` in ``run`` over the artifacts related to ``origins`` (all: None)."""
        out: set[str] = set()
        for a in self.data:
            if origins is None or related(a.origins, origins):
                out |= a.subjects_in(run, part)
        return sorted(out)

    # -- storage
    def summary(self) -> dict:
        return {
            "version": VERSION, "scheme": self.scheme, "class_names": list(self.class_names), "classes": self.classes,
            "settings": self.settings,
            "data": [{"path": a.identity.get("path"), "id": a.identity.get("id"), "origins": a.origins, "role": a.role,
                      "fold_source": a.fold_source, "subject_independent": a.subject_independent, "clips": int(len(a.clip_ids))}
                     for a in self.data],
            "runs": [{"fold": r.fold, "name": r.name, "parts": self.counts[i] if i < len(self.counts) else {}} for i, r in enumerate(self.runs)],
            "arrays": "partition/<d>/{clip_id, subject, sequence_id, label, part}: part[run, clip] 0 unused, 1 train, 2 val, 3 test",
        }

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        return {f"partition/{d}": a.arrays() for d, a in enumerate(self.data)}

    @classmethod
    def from_stored(cls, summary: dict, groups: dict[str, dict[str, np.ndarray]], name: str = "the model") -> "PartitionRecord":
        try:
            runs = [Run(r["fold"], r["name"]) for r in summary["runs"]]
            data = []
            for d, info in enumerate(summary["data"]):
                g = groups[f"partition/{d}"]
                parts = np.asarray(g["part"], dtype=np.uint8).reshape(len(runs), -1)
                data.append(ArtifactPart({"path": info.get("path"), "id": info.get("id")}, list(info.get("origins") or []),
                                         info.get("role", ""), _strings(g["clip_id"]), _strings(g["subject"]), _strings(g["sequence_id"]),
                                         np.asarray(g["label"], dtype=np.int64), parts, info.get("fold_source"),
                                         bool(info.get("subject_independent", True))))
            return cls(runs, data, list(summary["class_names"]), summary["scheme"], summary.get("classes") or {},
                       summary.get("settings") or {}, [r.get("parts") or {} for r in summary["runs"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise FercliError(f"{name} has a damaged partition record ({exc})") from None


def _utf8(values: np.ndarray) -> np.ndarray:
    """Strings as fixed-length UTF-8 bytes: stored gzip-compressed (300 k ids take ~1 MB)."""
    encoded = [str(v).encode("utf-8") for v in values]
    return np.asarray(encoded, dtype=f"S{max((len(e) for e in encoded), default=1) or 1}")


def _strings(values) -> np.ndarray:
    return np.asarray([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def read_partition(f, summary: Optional[dict], name: str) -> Optional[PartitionRecord]:
    """The record stored in an open model artifact (or its ``source/`` group), None for older models."""
    if not isinstance(summary, dict) or summary.get("version") is None:
        return None
    if summary["version"] > VERSION:
        raise FercliError(f"{name} has a partition record of version {summary['version']}, newer than this fercli reads: upgrade fercli")
    groups = {}
    if "partition" in f:
        for d in f["partition"].keys():
            g = f["partition"][d]
            groups[f"partition/{d}"] = {k: g[k][()] for k in g.keys()}
    return PartitionRecord.from_stored(summary, groups, name)


# --------------------------------------------------------------------------- planning


def _keys(datasets: Sequence[DataSet]) -> list[np.ndarray]:
    """Per artifact, a subject key per clip: subjects are compared within their origin group."""
    groups = origin_groups([d.origins for d in datasets])
    several = len(set(groups)) > 1
    return [np.asarray([f"{g}\x1f{s}" if several else str(s) for s in d.clips.subjects], dtype=object) for d, g in zip(datasets, groups)]


def _computed_folds(datasets: Sequence[DataSet], idx: Sequence[int], keys: list[np.ndarray], n_folds: int, seed: int) -> dict[int, np.ndarray]:
    """Folds by subject over the artifacts ``idx`` (one artifact: exactly ``fercli split``'s)."""
    from fercli.split import assign_groups

    joined, lookups = join_class_names([datasets[i].clips.class_names for i in idx])
    allkeys = np.concatenate([keys[i] for i in idx])
    labels = np.concatenate([remap_labels(datasets[i].clips.labels, lk) for i, lk in zip(idx, lookups)])
    names, group = np.unique(allkeys, return_inverse=True)
    ids = assign_groups(group, len(names), labels, len(joined), n_folds, seed)
    out, start = {}, 0
    for i in idx:
        out[i] = ids[start:start + len(datasets[i].clips)]
        start += len(datasets[i].clips)
    return out


def plan(datasets: Sequence[DataSet], class_names: Sequence[str], fold: Optional[int] = None, all_folds: bool = False,
         n_folds: int = 10, seed: int = 0, val: float = 0.0, classes: Optional[dict] = None) -> PartitionRecord:
    """The runs of a training job and every clip's part in each (see the module docstring)."""
    labelled = [np.flatnonzero(d.labels >= 0) for d in datasets]
    keys = _keys(datasets)
    want_folds = fold is not None or all_folds
    has_folds = [d.clips.folds is not None and bool(np.any(d.clips.folds[lab] >= 0)) for d, lab in zip(datasets, labelled)]
    official = [official_parts(d.clips.split) for d in datasets]
    roles: list[str] = []
    fold_ids: dict[int, np.ndarray] = {}
    sources: dict[int, str] = {}
    if want_folds and not any(has_folds):
        fold_ids = _computed_folds(datasets, range(len(datasets)), keys, n_folds, seed)
        roles = [ROLE_COMPUTED] * len(datasets)
        sources = {i: f"computed: {n_folds} folds by subject, seed {seed}" for i in range(len(datasets))}
    else:
        for i, d in enumerate(datasets):
            if want_folds and has_folds[i]:
                roles.append(ROLE_FOLDS)
                fold_ids[i] = np.asarray(d.clips.folds, dtype=np.int64)
                if d.clips.meta.get("folds"):
                    sources[i] = f"fercli split: {_describe_folds(d.clips.meta)}"
            elif official[i] is not None:
                roles.append(ROLE_OFFICIAL)
            else:
                roles.append(ROLE_TRAIN_ONLY)
    if want_folds:
        present = sorted({int(k) for i in fold_ids for k in np.unique(fold_ids[i][labelled[i]]) if k >= 0})
        wanted = present if all_folds else [fold]
        for k in wanted:
            if k not in present:
                raise FercliError(f"--fold {k} is not in the data (its folds are {', '.join(map(str, present))})")
        runs = [Run(k, f"fold {k}") for k in wanted]
        scheme = "folds"
    elif any(r == ROLE_OFFICIAL for r in roles):
        runs, scheme = [Run(None, "official split")], "official split"
    else:
        runs, scheme = [Run(None, "all data")], "all data (no test part)"

    parts = [np.zeros((len(runs), len(d.clips)), np.uint8) for d in datasets]
    for i, d in enumerate(datasets):
        lab = np.zeros(len(d.clips), bool)
        lab[labelled[i]] = True
        for r, run in enumerate(runs):
            p = parts[i][r]
            if roles[i] in (ROLE_FOLDS, ROLE_COMPUTED):
                ids = fold_ids[i]
                p[lab & (ids >= 0) & (ids != run.fold)] = TRAIN
                p[lab & (ids == run.fold)] = TEST
            elif roles[i] == ROLE_OFFICIAL:
                tr, va, te = official[i]
                for where, code in ((tr, TRAIN), (va, VAL), (te, TEST)):
                    sel = np.zeros(len(d.clips), bool)
                    sel[where] = True
                    p[lab & sel] = code
            else:
                p[lab] = TRAIN
    if val > 0:
        _hold_out_validation(parts, keys, val, seed)
    for r, run in enumerate(runs):
        if not any(np.any(p[r] == TRAIN) for p in parts):
            raise FercliError(f"{run.name} leaves no labelled clips to train on")
    subject_independent = [not (roles[i] == ROLE_FOLDS and (d.clips.meta.get("folds") or {}).get("by") == "clip") for i, d in enumerate(datasets)]
    _check_no_test_subject_trains(datasets, runs, parts, keys, roles, subject_independent)

    record = PartitionRecord(runs, [], list(class_names), scheme, dict(classes or {}),
                             {"n_folds": n_folds, "seed": seed, "val_fraction": val} if want_folds or val > 0 else {})
    for i, d in enumerate(datasets):
        used = np.flatnonzero(np.any(parts[i] > 0, axis=0))
        record.data.append(ArtifactPart(
            {"path": d.identity.get("path"), "id": d.identity.get("id")}, d.origins, roles[i],
            np.asarray(d.clips.clip_ids[used], dtype=object), np.asarray(d.clips.subjects[used], dtype=object),
            np.asarray(d.clips.sequences[used], dtype=object), d.labels[used], parts[i][:, used], sources.get(i),
            subject_independent[i], used))
        _check_unique_ids(d, used)
    return record


def _describe_folds(meta: dict) -> str:
    f = meta.get("folds") or {}
    return ", ".join(f"{k} {v}" for k, v in f.items())


def _check_unique_ids(d: DataSet, used: np.ndarray) -> None:
    ids = d.clips.clip_ids[used]
    if len(set(ids.tolist())) != len(ids):
        seen: set = set()
        dup = next(str(c) for c in ids if c in seen or seen.add(c))
        raise FercliError(f"clip id '{dup}' occurs twice in {d.name}: the model records its partition by clip id, so ids must be unique")


def _hold_out_validation(parts: list[np.ndarray], keys: list[np.ndarray], val: float, seed: int) -> None:
    """Move ``val`` of each run's training subjects (all their clips) to validation."""
    for r in range(parts[0].shape[0]):
        train_keys = np.concatenate([k[p[r] == TRAIN] for p, k in zip(parts, keys)])
        subjects = np.unique(train_keys.astype(str))
        if not len(subjects):
            continue
        rng = np.random.default_rng(seed + 7919)
        chosen = set(rng.choice(subjects, size=max(1, int(round(val * len(subjects)))), replace=False).tolist())
        for p, k in zip(parts, keys):
            move = (p[r] == TRAIN) & np.isin(k.astype(str), list(chosen))
            p[r][move] = VAL


def _check_no_test_subject_trains(datasets, runs, parts, keys, roles, independent) -> None:
    """Refuse a run whose test part shares a subject with its training part (see the module docstring)."""
    for r, run in enumerate(runs):
        for i, d in enumerate(datasets):
            test = set(keys[i][parts[i][r] == TEST].tolist())
            if not test:
                continue
            for j, e in enumerate(datasets):
                if i == j and (roles[i] == ROLE_OFFICIAL or not independent[i]):
                    continue  # an official split is the data set's own; --by clip folds were asked for
                shared = sorted(test & set(keys[j][parts[j][r] == TRAIN].tolist()))
                if shared:
                    where = d.name if i == j else f"{d.name} and {e.name}"
                    names = ", ".join(s.split("\x1f")[-1] for s in shared[:5]) + (" ..." if len(shared) > 5 else "")
                    raise FercliError(f"{run.name} would test subjects it trains on ({names}, in {where}): "
                                      "give every artifact the same subject-independent folds (one fercli split, then align/resample)")


# --------------------------------------------------------------------------- replay

#: Replay status of a clip of some data for one run of the model.
UNSEEN, OTHER, TRAIN_SUBJECT = 10, 11, 12


@dataclass
class Replay:
    """Per clip of the data given to evaluate/prune: TRAIN / VAL / TEST (the record's
    part), TRAIN_SUBJECT (not a recorded training clip, but its subject trained),
    OTHER (in the record, unused by this run), UNSEEN (never met by the model)."""

    status: np.ndarray
    match: str  # 'same' | 'copy' | 'new'
    matched_to: list[str]
    train_subjects: list[str]

    def where(self, *codes: int) -> np.ndarray:
        return np.flatnonzero(np.isin(self.status, codes))

    @property
    def trained(self) -> np.ndarray:
        return self.where(TRAIN, TRAIN_SUBJECT)


def replay(record: PartitionRecord, run: int, data: DataSet) -> Replay:
    """Match the clips of ``data`` against run ``run`` of ``record`` (see the module docstring)."""
    clips = data.clips
    n = len(clips)
    same = [a for a in record.data if a.identity.get("id") and a.identity.get("id") == data.identity.get("id")]
    rel = same or [a for a in record.data if related(a.origins, data.origins)]
    ids = [str(c) for c in clips.clip_ids]
    seqs = [str(c) for c in clips.sequences]
    # The most-trained part wins when several recorded clips match (the three
    # --ckplus-split clips of one sequence are always in one part anyway).
    rank_of = {UNUSED: 1, TEST: 2, VAL: 3, TRAIN: 4}
    best = np.zeros(n, dtype=np.int64)
    for a in rel:
        ranks = [rank_of[int(c)] for c in a.parts[run]]
        by_id = dict(zip(a.clip_ids.tolist(), ranks))
        by_seq: dict[str, int] = {}
        if not same:  # a copy: its clips may be the record's clips cut or uncut
            for sq, rk in zip(a.sequences.tolist(), ranks):
                by_seq[sq] = max(rk, by_seq.get(sq, 0))
        found = np.asarray([by_id.get(c, by_seq.get(sq, 0)) for c, sq in zip(ids, seqs)], dtype=np.int64) if n else best
        best = np.maximum(best, found)
    status = np.asarray([UNSEEN, OTHER, TEST, VAL, TRAIN], dtype=np.int64)[best]
    train_subjects = set()
    val_subjects = set()
    for a in rel:
        train_subjects |= a.subjects_in(run, TRAIN)
        val_subjects |= a.subjects_in(run, VAL)
    subj = np.asarray([str(s) for s in clips.subjects], dtype=object)
    trained_subject = np.isin(subj, list(train_subjects)) if train_subjects else np.zeros(n, bool)
    # A clip of a subject the run trained on is trained on, whatever its id says --
    # except the very artifact's recorded parts, which are the truth for it, and the
    # test parts of partitions that are not subject-independent by design (an
    # official split, folds made --by clip).
    strict = not same and all(a.subject_independent and a.role != ROLE_OFFICIAL for a in rel)
    override = trained_subject & ((status != TRAIN) if strict else np.isin(status, [UNSEEN, OTHER]))
    status[override] = TRAIN_SUBJECT
    if val_subjects and not same:
        status[(status == UNSEEN) & np.isin(subj, list(val_subjects))] = VAL
    match = "same" if same else ("copy" if rel and np.any(status != UNSEEN) else "new")
    return Replay(status, match, [a.name for a in rel], sorted(train_subjects))


def run_label(run: Run) -> str:
    return f"fold {run.fold} held out" if run.fold is not None else run.name


def describe_subjects(subjects: Sequence[str], limit: int = 6) -> str:
    s = list(subjects)
    return ", ".join(s[:limit]) + (f" ... ({len(s)} in all)" if len(s) > limit else "")


def sample_counts(record: PartitionRecord, datasets: Sequence[DataSet],
                  labels_of: Callable[[int, np.ndarray], np.ndarray]) -> None:
    """Fill ``record.counts``: per run and part, clips, subjects and per-class samples
    (``labels_of(artifact index, clip rows)`` gives the samples' labels)."""
    record.counts = []
    k = len(record.class_names)
    for r in range(len(record.runs)):
        entry = {}
        for code, name in PART_NAMES.items():
            rows = [a.rows_in(r, code) for a in record.data]
            n_clips = int(sum(len(x) for x in rows))
            if not n_clips:
                continue
            labels = np.concatenate([labels_of(i, x) for i, x in enumerate(rows)])
            counts = np.bincount(labels[labels >= 0], minlength=k)
            entry[name] = {"clips": n_clips, "subjects": len(record.subjects(r, code)), "samples": int(len(labels)),
                           "samples_per_class": {c: int(v) for c, v in zip(record.class_names, counts)},
                           "clips_per_data": [int(len(x)) for x in rows]}
        record.counts.append(entry)


# --------------------------------------------------------------------------- models without a record


def reconstructed_parts(extra: dict, clips: Clips, labels: np.ndarray, folds_trained: Sequence[int],
                        fold: Optional[int]) -> list[tuple[Optional[int], np.ndarray, str]]:
    """[(fold, test clip indices, what)] for a model written before partition records,
    chosen as fercli did then: DATA's fold array (or folds recomputed from the fold
    count and seed the model stored), else DATA's official test part, else all of it."""
    info = extra.get("partition") or {}
    labelled = np.flatnonzero(labels >= 0)
    own = extra.get("fold")
    if folds_trained or own is not None or fold is not None:
        if clips.folds is not None and np.any(clips.folds >= 0):
            ids = np.asarray(clips.folds, dtype=np.int64)
        else:
            from fercli.split import assign_folds

            ids = np.asarray(assign_folds(clips, int(info.get("n_folds", 10)), "subject", int(info.get("fold_seed", 0))), dtype=np.int64)
        wanted = [fold] if fold is not None else (list(folds_trained) or [int(own)])
        out = []
        for k in wanted:
            test = labelled[ids[labelled] == k]
            if not len(test):
                raise FercliError(f"the data has no labelled clips in fold {k}")
            out.append((k, test, f"fold {k} (held out; partition reconstructed)"))
        return out
    parts = official_parts(clips.split)
    if parts is not None and len(parts[2]):
        return [(None, np.intersect1d(parts[2], labelled), "official test part (partition reconstructed)")]
    return [(None, labelled, "all labelled clips (the model has no held-out part here; partition reconstructed)")]


# --------------------------------------------------------------------------- description


#: Subject lists longer than this are given as counts only (``fercli info``); the
#: model's ``partition/<d>/subject`` datasets hold them all.
LIST_LIMIT = 5000


def describe(record: Optional[PartitionRecord]) -> dict:
    """What ``fercli info MODEL`` shows: per run and part, subjects, clips and per-class samples."""
    if record is None:
        return {"source": "none: the model was written before fercli recorded partitions (evaluate reconstructs one)"}
    out = {k: v for k, v in record.summary().items() if k != "runs"}
    out["source"] = "record"
    out["runs"] = []
    for r, run in enumerate(record.runs):
        entry: dict = {"fold": run.fold, "name": run.name}
        counts = record.counts[r] if r < len(record.counts) else {}
        for code, name in PART_NAMES.items():
            subjects = record.subjects(r, code)
            if not subjects and name not in counts:
                continue
            part = dict(counts.get(name, {}))
            part["subjects"] = len(subjects)
            if len(subjects) <= LIST_LIMIT:
                part["subject_ids"] = subjects
            entry[name] = part
        out["runs"].append(entry)
    return out


def describe_lines(info: dict) -> list[str]:
    """``fercli info``'s human summary of :func:`describe`: one line per data artifact and per run."""
    if info.get("source") != "record":
        return [info.get("source", "")]
    lines = [f"{info['scheme']}; classes {', '.join(info['class_names'])} ({info['classes'].get('rule', '')}"
             + (f"; left out: {', '.join(info['classes']['left_out'])}" if info["classes"].get("left_out") else "") + ")"]
    for d in info["data"]:
        lines.append(f"data {d['path']}: {d['role']}" + (f" ({d['fold_source']})" if d.get("fold_source") else "") + f", {d['clips']} clips used")
    for run in info["runs"]:
        bits = []
        for name in ("train", "val", "test"):
            p = run.get(name)
            if not p:
                continue
            text = f"{name} {p['subjects']} subjects / {p.get('clips', 0)} clips / {p.get('samples', 0)} samples"
            if name == "test" and p.get("subject_ids") is not None:
                text += f" ({describe_subjects(p['subject_ids'])})"
            bits.append(text)
        lines.append(f"{run['name']}: " + "; ".join(bits))
    return lines
