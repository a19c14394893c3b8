"""How data artifacts are joined: one rule for ``fercli merge`` and ``fercli train A B``
(cross-database training, thesis 4.3.2 / Table 4.1; shards of one job array).

- **Class names** are matched case-insensitively, the first spelling met wins, and
  the joined list is the union in order of first appearance over the inputs in
  the order given (so the first input's classes keep their ids).  ``Happy`` in
  one data set and ``happy`` in another are one class, in ``merge`` and in
  ``train`` alike.
- **Subjects and clip ids are never renamed.**  A subject id names one person
  *within a data origin*: the ``ingest`` or ``synth`` step at the root of an
  artifact's lineage (``ingest:ckplus``, ``synth:seed=1:faces=astronaut``).  The
  aligned and the unaligned copy of CK+ share their origin, so ``S005`` is one
  person in both; CK+ and FER2013 do not, so their ids never meet.  An artifact
  whose lineage names no origin (a library user's own arrays) is compared with
  every other one -- the cautious choice for leak checks.  ``merge`` keeps ids
  as they are and refuses two clips with one id (``--prefix-ids`` namespaces them
  as ``<file stem>:<id>``); ``train`` keeps every artifact's ids apart in its
  partition record, so copies of one data set may share ids.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Datasets whose subject ids mean the same person whatever folder they were read from.
PUBLISHED = ("ckplus", "oulu", "fer2013", "sfew", "afew", "cifar10")


def class_key(name: str) -> str:
    """The form class names are compared in."""
    return str(name).strip().lower()


def join_class_names(lists: Sequence[Sequence[str]]) -> tuple[list[str], list[np.ndarray]]:
    """Union of the class lists (case-insensitive, first spelling wins, order of first
    appearance); per input, the array mapping its label ids to the joined ids."""
    joined: list[str] = []
    index: dict[str, int] = {}
    for names in lists:
        for c in names:
            if class_key(c) not in index:
                index[class_key(c)] = len(joined)
                joined.append(str(c))
    return joined, [np.asarray([index[class_key(c)] for c in names], dtype=np.int64) for names in lists]


def remap_labels(labels: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """Labels through ``lookup`` (label id -> new id or -1); label -1 stays -1."""
    table = np.append(np.asarray(lookup, dtype=np.int64), -1)
    labels = np.asarray(labels, dtype=np.int64)
    return table[np.where(labels < 0, len(table) - 1, labels)]


def labels_onto(class_names: Sequence[str], labels: np.ndarray, target: Sequence[str]) -> np.ndarray:
    """Labels of data with ``class_names`` as ids of the ``target`` classes (-1: not one of them)."""
    where = {class_key(c): i for i, c in enumerate(target)}
    return remap_labels(labels, np.asarray([where.get(class_key(c), -1) for c in class_names], dtype=np.int64))


def data_origins(lineage: Sequence[dict]) -> list[str]:
    """The roots of an artifact's lineage that name who its subjects are (see the module docstring)."""
    out: list[str] = []
    for entry in lineage or []:
        if not isinstance(entry, dict) or entry.get("inputs"):
            continue
        stage, params = entry.get("stage"), entry.get("parameters") or {}
        if stage == "ingest":
            dataset = str(params.get("dataset", "?"))
            tag = f"ingest:{dataset}" if dataset in PUBLISHED else f"ingest:{dataset}:{'|'.join(map(str, params.get('sources') or []))}"
        elif stage == "synth":
            tag = f"synth:seed={params.get('seed')}:faces={params.get('faces') or 'astronaut'}"
        else:
            continue
        if tag not in out:
            out.append(tag)
    return out


def related(a: Sequence[str], b: Sequence[str]) -> bool:
    """Can subject ids of artifacts with origins ``a`` and ``b`` name the same person?"""
    return not a or not b or bool(set(a) & set(b))


def origin_groups(origins: Sequence[Sequence[str]]) -> list[int]:
    """Group index per artifact: artifacts are in one group when related (transitively)."""
    parent = list(range(len(origins)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(origins)):
        for j in range(i):
            if related(origins[i], origins[j]):
                parent[root(i)] = root(j)
    roots = [root(i) for i in range(len(origins))]
    order = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return [order[r] for r in roots]
