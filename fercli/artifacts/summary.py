"""What `fercli info` shows of an artifact of any kind."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from fercli.artifacts.arrays import read_strings
from fercli.artifacts.attributes import _as_str, read_json_attr
from fercli.artifacts.base import display_name
from fercli.artifacts.lineage import read_lineage
from fercli.artifacts.models import fold_runs

# --------------------------------------------------------------------------- summary


def summarize(f: h5py.File, path: str) -> dict:
    """What `fercli info` shows: kind, shapes, counts, lineage (JSON-able)."""
    kind = _as_str(f.attrs.get("fercli_kind"))
    out: dict[str, Any] = {
        "path": display_name(path),
        "kind": kind,
        "schema": int(f.attrs.get("fercli_schema", 0)),
        "id": _as_str(f.attrs.get("fercli_id", "")),
        "fercli_version": _as_str(f.attrs.get("fercli_version", "")),
        "created": _as_str(f.attrs.get("fercli_created", "")),
        "meta": read_json_attr(f, "fercli_meta", {}) or {},
        "lineage": read_lineage(f),
    }
    datasets: dict[str, dict] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and not name.startswith("weights/") and not name.startswith(("optimizer/", "folds/", "partition/", "source/weights/", "source/partition/")):
            datasets[name] = {"shape": list(obj.shape), "dtype": str(obj.dtype) if obj.dtype.kind != "O" else "str"}

    f.visititems(visit)
    out["datasets"] = datasets
    if kind == "clips":
        labels = f["label"][()] if "label" in f else np.zeros(0, np.int64)
        class_names = list(read_json_attr(f, "class_names", []) or [])
        subjects = read_strings(f["subject"]) if "subject" in f else np.zeros(0, object)
        offsets = f["offsets"][()] if "offsets" in f else np.zeros(1, np.int64)
        lengths = np.diff(offsets)
        out["clips"] = int(len(labels))
        out["frames"] = int(offsets[-1]) if len(offsets) else 0
        out["frame_shape"] = list(f["frames"].shape[1:]) if "frames" in f else []
        out["clip_length"] = {"min": int(lengths.min()), "max": int(lengths.max()), "mean": round(float(lengths.mean()), 2)} if len(lengths) else {}
        out["class_names"] = class_names
        out["class_counts"] = {name: int((labels == i).sum()) for i, name in enumerate(class_names)}
        if np.any(labels < 0):
            out["class_counts"]["(unlabelled)"] = int((labels < 0).sum())
        out["subjects"] = int(len(set(subjects.tolist())))
        if "face_found" in f:
            ff, piece = f["face_found"], 1 << 22  # counted a piece at a time: millions of frames
            found = sum(int(np.count_nonzero(ff[lo:lo + piece])) for lo in range(0, len(ff), piece))
            out["face_found_rate"] = round(found / len(ff), 4) if len(ff) else None
        if "fold" in f:
            folds = f["fold"][()]
            out["folds"] = {str(int(k)): int((folds == k).sum()) for k in np.unique(folds)}
        if "split" in f:
            split = read_strings(f["split"])
            out["split"] = {str(k): int((split == k).sum()) for k in sorted(set(split.tolist()))}
        if "planes" in f:
            out["planes"] = {k: list(f["planes"][k].shape) for k in f["planes"].keys() if k != "offsets"}
        if "segment" in f:
            segments = read_strings(f["segment"])
            out["segments"] = {str(k) or "(whole)": int((segments == k).sum()) for k in sorted(set(segments.tolist()))}
    elif kind == "model":
        out["arch"] = _as_str(f.attrs.get("arch", ""))
        out["config"] = read_json_attr(f, "config", {})
        out["class_names"] = read_json_attr(f, "class_names", [])
        history = read_json_attr(f, "history", []) or []
        out["epochs_trained"] = len(history)
        if history:
            out["last_epoch"] = history[-1]
        g = f.get("weights")
        out["weights"] = {"tensors": len(g) if g is not None else 0, "values": int(sum(g[k].size for k in g)) if g is not None else 0}
        out["fold_results"] = _model_fold_results(read_json_attr(f, "extra", {}) or {}, history)
    elif kind == "report":
        out.update(_report_summary(read_json_attr(f, "report", {}) or {}), predictions="predictions" in f)
    return out


# -- analysis (issue 14): model fold results and report accuracy for `fercli info`


def _model_fold_results(extra: dict, history: list) -> list[dict]:
    """Per fold run: fold, part name, epochs, last test accuracy, held-out samples."""
    return [{"fold": run["fold"], "part": run["part"], "epochs": len(run["history"]), "test_acc": run["test_acc"],
             "n_test": run["n_test"]} for run in fold_runs(extra, history)]


def _report_summary(report: dict) -> dict:
    pooled = report.get("pooled") or {}
    return {
        "arch": report.get("arch"), "class_names": report.get("class_names") or [], "model": (report.get("model") or {}).get("path"),
        "accuracy": pooled.get("accuracy"), "accuracy_mean": report.get("accuracy_mean"), "accuracy_std": report.get("accuracy_std"),
        "samples": pooled.get("n"), "macro_f1": pooled.get("macro_f1"),
        "fold_results": [{"fold": r.get("fold"), "part": r.get("part"), "accuracy": r.get("accuracy"), "n": r.get("n")}
                         for r in report.get("folds") or [] if isinstance(r, dict)],
    }
