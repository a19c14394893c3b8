"""The 'report' kind: evaluation results and per-sample predictions."""

from __future__ import annotations

from typing import Optional, Sequence

import h5py
import numpy as np

from fercli.artifacts.arrays import read_strings, write_array
from fercli.artifacts.attributes import read_json_attr, write_json_attr
from fercli.artifacts.output import create_artifact
from fercli.artifacts.validation import LAYOUTS, _check_dataset, _damaged, _json

# --------------------------------------------------------------------------- report
#
# Written by ``fercli evaluate -o``:
#     attrs report (JSON)       the whole result (per fold, pooled, per class, model, data)
#     confusion                 (K, K) int64 pooled counts, rows true, columns predicted
#     confusion_normalised      (K, K) float64 row-normalised
#     fold_accuracy             (folds,) float64
#     predictions/<field>       per evaluated sample (PREDICTION_FIELDS): clip_id, subject, fold,
#                               truth, prediction (int), probabilities (samples, K)

#: Per-sample datasets of a report's ``predictions`` group (``fercli evaluate -o``).
PREDICTION_FIELDS = ("clip_id", "subject", "fold", "truth", "prediction", "probabilities")


def write_report(f: h5py.File, report: dict, predictions: Optional[dict[str, np.ndarray]] = None) -> None:
    """Fill an artifact of kind 'report': the JSON report, the pooled confusion
    matrices, per-fold accuracies and, per evaluated sample, the predictions."""
    write_json_attr(f, "report", report)
    pooled = report.get("pooled") or {}
    f.create_dataset("confusion", data=np.asarray(pooled.get("confusion", []), np.int64))
    f.create_dataset("confusion_normalised", data=np.asarray(pooled.get("confusion_normalised", []), np.float64))
    f.create_dataset("fold_accuracy", data=np.asarray([r.get("accuracy") for r in report.get("folds", [])], np.float64))
    if predictions is not None:
        g = f.create_group("predictions")
        for key in PREDICTION_FIELDS:
            write_array(g, key, np.asarray(predictions[key]))


def save_report(path: str, result: dict, lineage: Sequence[dict], predictions: Optional[dict[str, np.ndarray]] = None) -> None:
    """An evaluation result as a 'report' artifact."""
    with create_artifact(path, "report", lineage, {"stage": "evaluate"}) as f:
        write_report(f, result, predictions)


def read_report(f: h5py.File) -> tuple[dict, Optional[dict[str, np.ndarray]]]:
    """(report JSON, per-sample predictions or None for reports written before them)."""
    report = read_json_attr(f, "report", {}) or {}
    if "predictions" not in f:
        return report, None
    g = f["predictions"]
    return report, {key: read_strings(g[key]) if g[key].dtype.kind == "O" else g[key][()] for key in PREDICTION_FIELDS}


def _report_layout(f: h5py.File, ds: dict[str, h5py.Dataset], name: str) -> None:
    art = "report"
    _json(f, "report", name, art, dict, {}, required=True)
    _check_dataset(ds.get("confusion"), "confusion", "int", name, art, (1, 2))
    k = ds["confusion"].shape[0]
    if ds["confusion"].shape not in ((k, k), (0,)):  # (0,): a report of no classes
        raise _damaged(name, art, f"'confusion' must be square, found {ds['confusion'].shape}")
    _check_dataset(ds.get("confusion_normalised"), "confusion_normalised", "float", name, art, (1, 2), k)
    _check_dataset(ds.get("fold_accuracy"), "fold_accuracy", "float", name, art, 1)
    if "predictions" in f:
        _check_dataset(ds.get("predictions/truth"), "predictions/truth", "int", name, art, 1)  # its length is every field's
        n = ds["predictions/truth"].shape[0]
        for key in PREDICTION_FIELDS:
            kind = "str" if key in ("clip_id", "subject") else "float" if key == "probabilities" else "int"
            _check_dataset(ds.get(f"predictions/{key}"), f"predictions/{key}", kind, name, art, 2 if key == "probabilities" else 1, n)


LAYOUTS["report"] = _report_layout
