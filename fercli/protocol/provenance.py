"""What made an artifact, read from its lineage: the data set and preprocessing of a
``clips`` artifact, and the history of a model (what it trained on, identity
pre-training, pruning steps, epochs).

``fercli train`` records :func:`data_summary` of every data artifact in its inputs,
and ``fercli evaluate`` writes :func:`model_summary` and the evaluated data's summary
into the report (``report.provenance``).  The chapter tables name their rows from
these (:mod:`fercli.results`), not from how a Makefile called the stages: a row can
then only say what its model really is (thesis Tables 3.1-3.5, 4.1-4.3, 5.2-5.6).
"""

from __future__ import annotations

import json

from typing import Optional, Sequence

#: Published data sets as the thesis's tables name them.
DATASET_NAMES = {"ckplus": "CK+", "oulu": "Oulu-CASIA", "fer2013": "FER2013", "sfew": "SFEW", "afew": "AFEW",
                 "cifar10": "CIFAR-10", "synth": "synth", "video": "video", "images": "images"}


def dataset_name(key: str) -> str:
    return DATASET_NAMES.get(str(key), str(key))


def data_summary(lineage: Sequence[dict]) -> dict:
    """The data set(s) at the root of a clips artifact's lineage and what was done to them.

    ``datasets``: the ``ingest`` data set names / ``synth`` in order of appearance;
    ``faces``: ``aligned`` or ``unaligned`` (``align --no-align``), None before ``align``;
    ``ckplus_split``: clips cut by ``resample --ckplus-split`` (4.2.7); ``frames``: the
    last ``resample -n``; ``planes``: LBP-TOP planes; ``folds``: ``split --folds``.
    """
    out: dict = {"datasets": [], "faces": None, "ckplus_split": False, "frames": None, "planes": None, "folds": None}
    for entry in lineage or []:
        if not isinstance(entry, dict):
            continue
        stage, params = entry.get("stage"), entry.get("parameters") or {}
        if stage in ("ingest", "synth") and not entry.get("inputs"):
            name = str(params.get("dataset", "?")) if stage == "ingest" else "synth"
            if name not in out["datasets"]:
                out["datasets"].append(name)
        elif stage == "align":
            out["faces"] = "aligned" if params.get("align", True) else "unaligned"
        elif stage == "resample":
            out["frames"] = params.get("n")
            out["ckplus_split"] = bool(params.get("ckplus_split"))
        elif stage == "lbptop":
            out["planes"] = list(params.get("planes") or [])
        elif stage == "split":
            out["folds"] = params.get("folds")
    return out


def _summary_of_input(identity: dict) -> dict:
    """A training input's data summary: recorded by train (``made_by``), or, for models
    written before that, the data set named by its origins."""
    if isinstance(identity.get("made_by"), dict):
        return identity["made_by"]
    names = []
    for origin in identity.get("origins") or []:
        kind, _, rest = str(origin).partition(":")
        name = rest.split(":", 1)[0] if kind == "ingest" else "synth" if kind == "synth" else "?"
        if name not in names:
            names.append(name)
    return {"datasets": names, "faces": None}


def model_summary(lineage: Sequence[dict]) -> dict:
    """A model's history from its lineage (the model's own step is the last entry).

    ``trained_on``: the data summaries of the clips its last training read;
    ``task``; ``identity_pretrained``: an ancestor trained on subject identities (4.2.6);
    ``expansions``: the LB-MBNet ratios from the first training through every
    ``rebuild`` (``[12, 8, 6, 3]`` = pruned r12 -> r8 -> r6 -> r3; one entry when never
    pruned); ``epochs``: the epochs of every training in its history, in order.
    """
    entries = [e for e in lineage or [] if isinstance(e, dict)]
    own = entries[-1] if entries else {}
    if own.get("stage") == "merge" and (own.get("parameters") or {}).get("kind") == "model":
        # fold models joined by `fercli merge` (issue 21): the history of the --folds all model it
        # equals -- one fold's chain of trainings, its own step the last fold's training
        entries = _one_fold(entries[:-1])
        own = entries[-1] if entries else {}
    trains = [e for e in entries if e.get("stage") == "train"]
    own_train = own if own.get("stage") == "train" else None
    options = ((own_train or {}).get("parameters") or {}).get("options") or {}
    task = options.get("task", "expression")
    expansions: list = []
    for e in entries:
        params = e.get("parameters") or {}
        if e.get("stage") == "train" and not expansions and "expansion" in ((params.get("options") or {}).get("config") or {}):
            expansions.append(params["options"]["config"]["expansion"])
        elif e.get("stage") == "rebuild" and "expansion" in params:
            if not expansions:
                expansions.append(None)  # the pruned model's own ratio is not in this lineage
            expansions.append(params["expansion"])
    return {
        "arch": ((own_train or {}).get("parameters") or {}).get("arch"),
        "task": task,
        "trained_on": [_summary_of_input(i) for i in (own_train or {}).get("inputs") or [] if i.get("kind") == "clips"],
        "identity_pretrained": task != "identity" and any(((e.get("parameters") or {}).get("options") or {}).get("task") == "identity" for e in trains),
        "expansions": expansions,
        "epochs": [int((e.get("parameters") or {}).get("epochs") or 0) for e in trains],
    }



def _one_fold(entries: list[dict]) -> list[dict]:
    """The lineage entries of joined fold models with each training once -- its last fold's (the
    other folds repeat it with only the held-out fold changed): what a --folds all history records."""
    def key(e: dict) -> str:
        params = dict(e.get("parameters") or {})
        params["options"] = {k: v for k, v in (params.get("options") or {}).items() if k not in ("fold", "all_folds")}
        return json.dumps(params, sort_keys=True, default=str)

    last = {key(e): i for i, e in enumerate(entries) if e.get("stage") == "train"}
    return [e for i, e in enumerate(entries) if e.get("stage") != "train" or last[key(e)] == i]

def describe_data(summary: Optional[dict]) -> str:
    """'CK+', 'CK+ unaligned faces', 'synth + FER2013' ..."""
    if not summary:
        return "?"
    text = " + ".join(dataset_name(d) for d in summary.get("datasets") or []) or "?"
    if summary.get("faces") == "unaligned":
        text += ", unaligned faces"
    return text
