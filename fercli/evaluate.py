"""``evaluate``: accuracy, per-class precision/recall/F1, confusion matrices,
mean +- std over folds, parameters, FLOPs and CPU latency (thesis 3.3, Fig 3.7,
Tables 3.1-3.5, 4.4, 5.2-5.6).

What is evaluated by default is what the model did NOT train on:

- a ``--folds all`` model: each fold's weights on that fold's held-out clips,
  reported per fold and as mean +- std (the thesis's 10-fold protocol); the
  confusion matrix sums the folds;
- a ``--fold k`` model: fold k's held-out clips;
- a model trained on an official split: the test part (see
  :mod:`fercli.train.data` for the partition names);
- a model trained on all of some data: everything in DATA (say so: ``part``).

``split='all'`` evaluates every labelled clip of DATA instead.  Folds come from
the data's ``fold`` array, or are recomputed exactly as training computed them
(the fold scheme is stored in the model's ``extra.partition``).
"""

from __future__ import annotations

import statistics
import time
from typing import Optional

import numpy as np
import torch

from fercli.artifacts import Clips
from fercli.errors import FercliError
from fercli.models import registry
from fercli.progress import ProgressFn, report
from fercli.train import data as D
from fercli.train.checkpoint import ModelFile, fold_state


# --------------------------------------------------------------------------- metrics


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def metrics_from_confusion(cm: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, row-normalised matrix."""
    cm = np.asarray(cm, dtype=np.int64)
    total = int(cm.sum())
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    rows = cm.sum(1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros(cm.shape, np.float64), where=rows > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / total) if total else None,
        "n": total,
        "per_class": {name: {"precision": round(float(precision[i]), 6), "recall": round(float(recall[i]), 6),
                             "f1": round(float(f1[i]), 6), "support": int(support[i])} for i, name in enumerate(class_names)},
        "macro_f1": round(float(f1[present].mean()), 6) if present.any() else None,
        "confusion": cm.tolist(),
        "confusion_normalised": np.round(normalised, 6).tolist(),
    }


# --------------------------------------------------------------------------- complexity


def count_parameters(model: torch.nn.Module) -> dict:
    """Trainable parameters, frozen parameters (e.g. a fusion's trained streams), and
    fixed values the model needs (non-statistic buffers such as chapter 5's LBC kernels)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    fixed_buffers = 0
    for name, b in model.named_buffers():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("running_mean", "running_var", "num_batches_tracked"):
            continue  # BatchNorm statistics are not model parameters in the thesis's tables
        fixed_buffers += b.numel()
    return {"trainable_params": int(trainable), "frozen_params": int(frozen), "fixed_params": int(fixed_buffers)}


def flops_of(model: torch.nn.Module, inputs: list[torch.Tensor]) -> Optional[int]:
    """FLOPs of one forward pass (torch.utils.flop_counter: 2 x multiply-accumulates)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    except Exception:  # an op the counter cannot trace: report unknown, not a crash
        return None
    return int(counter.get_total_flops())


def cpu_latency_ms(model: torch.nn.Module, inputs: list[torch.Tensor], runs: int = 7, warmup: int = 2) -> float:
    """Median wall time of one sample's forward pass on the CPU, in ms."""
    model = model.cpu().eval()
    inputs = [x.cpu() for x in inputs]
    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            model(*inputs)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


# --------------------------------------------------------------------------- evaluate


def _labels_for(clips: Clips, class_names: list[str], task: str) -> np.ndarray:
    """Data labels mapped onto the model's classes by name (-1: not a model class)."""
    if task == "identity":
        lookup = {c: i for i, c in enumerate(class_names)}
        return np.asarray([lookup.get(str(s), -1) for s in clips.subjects], dtype=np.int64)
    lookup = {c.lower(): i for i, c in enumerate(class_names)}
    data_to_model = np.asarray([lookup.get(c.lower(), -1) for c in clips.class_names] + [-1], dtype=np.int64)
    if len(clips.class_names) and np.all(data_to_model[:-1] < 0):
        raise FercliError(f"none of the data's classes ({', '.join(clips.class_names)}) is a class of the model ({', '.join(class_names)})")
    return data_to_model[clips.labels]


def evaluate(mf: ModelFile, clips: Clips, fold: Optional[int] = None, split: str = "test", device: str = "cpu",
             latency: bool = True, progress: Optional[ProgressFn] = None) -> dict:
    """Evaluate a trained model artifact on ``clips``; returns a JSON-able report."""
    from fercli.train.run import RunOptions, prepare
    from fercli.train.engine import Dist, resolve_device

    if split not in ("test", "all"):
        raise FercliError(f"--split must be test or all, not '{split}'")
    rec = mf.record
    extra = rec.extra or {}
    prep = extra.get("data_prep") or {}
    task = prep.get("task", "expression")
    class_names = list(rec.class_names)
    labels = _labels_for(clips, class_names, task)
    clips.labels = labels
    part_info = extra.get("partition") or {}
    dev = resolve_device(device, Dist())

    # which weights on which clips
    jobs: list[tuple[Optional[int], dict, np.ndarray, str]] = []
    labelled = np.flatnonzero(labels >= 0)
    if not len(labelled):
        raise FercliError("no clip of the data has a class the model knows")
    trained = mf.folds_trained
    own_fold = extra.get("fold")
    if split == "all":
        wanted = [fold] if fold is not None else (trained or [own_fold])
        for k in wanted:
            jobs.append((k, fold_state(mf, k, "model") if k is not None else rec.state, labelled, "all labelled clips"))
    elif trained or own_fold is not None or fold is not None:
        n_folds = int(part_info.get("n_folds", 10))
        ids, _ = D.fold_assignment(clips, n_folds, int(part_info.get("fold_seed", 0)))
        wanted = [fold] if fold is not None else (trained or [int(own_fold)])
        for k in wanted:
            state = fold_state(mf, k, "model")
            test = labelled[ids[labelled] == k]
            if not len(test):
                raise FercliError(f"the data has no labelled clips in fold {k}")
            jobs.append((k, state, test, f"fold {k} (held out)"))
    else:
        parts = D.official_parts(clips.split)
        if parts is not None and len(parts[2]):
            test = np.intersect1d(parts[2], labelled)
            jobs.append((None, rec.state, test, "official test part"))
        else:
            jobs.append((None, rec.state, labelled, "all labelled clips (the model has no held-out part here)"))

    opts = RunOptions(arch=rec.arch, frame=prep.get("frame", "last"), frames=prep.get("frames"),
                      size=tuple(prep["size"]) if prep.get("size") else None, task=task)
    results = []
    pooled = np.zeros((len(class_names), len(class_names)), np.int64)
    model = None
    first_inputs = None
    for i, (k, state, index, what) in enumerate(jobs):
        model, _ = registry.build(rec.arch, len(class_names), rec.config)
        registry.load_weights(model, rec.arch, state)  # names, shapes, finite values checked
        model.eval().to(dev)
        samples, names, _ = prepare(clips, opts, rec.config, model, labels, class_names, index=index)
        if not len(samples):
            raise FercliError(f"{what}: no samples to evaluate")
        preds = []
        with torch.no_grad():
            for start in range(0, len(samples), 128):
                xs = [torch.from_numpy(samples.inputs[n][start:start + 128]).to(dev).float().div_(255.0) for n in names]
                preds.append(model(*xs).float().argmax(1).cpu().numpy())
        y_pred = np.concatenate(preds)
        cm = confusion(samples.labels, y_pred, len(class_names))
        pooled += cm
        m = metrics_from_confusion(cm, class_names)
        results.append({"fold": k, "part": what, **m})
        if first_inputs is None:
            first_inputs = [torch.from_numpy(samples.inputs[n][:1]).float().div_(255.0) for n in names]
        report(progress, i + 1, len(jobs))

    accs = [r["accuracy"] for r in results if r["accuracy"] is not None]
    overall = metrics_from_confusion(pooled, class_names)
    out = {
        "model": mf.identity, "arch": rec.arch, "config": rec.config, "class_names": class_names,
        "split": split, "folds": results,
        "accuracy_mean": round(float(np.mean(accs)), 6) if accs else None,
        "accuracy_std": round(float(np.std(accs)), 6) if len(accs) > 1 else 0.0,
        "pooled": overall,
    }
    model = model.cpu()
    out.update(count_parameters(model))
    try:
        from fercli.models.summary import model_summary

        summary = model_summary(rec) or {}
        for key in ("trainable_params", "frozen_params", "fixed_params"):
            if key in summary:
                out[key] = summary[key]
    except Exception:  # the summary is optional; our own counts stand
        pass
    out["flops"] = flops_of(model, first_inputs)
    out["input_shapes"] = [list(x.shape) for x in first_inputs]
    if latency:
        out["cpu_latency_ms"] = cpu_latency_ms(model, first_inputs)
    return out


# --------------------------------------------------------------------------- figure


def confusion_figure(cm_normalised: list[list[float]], class_names: list[str], title: str = "") -> np.ndarray:
    """A Fig 3.7-style row-normalised confusion matrix as a BGR image (OpenCV)."""
    import cv2

    m = np.asarray(cm_normalised, dtype=np.float64)
    k = len(class_names)
    cell = 64 if k <= 10 else 40
    font = cv2.FONT_HERSHEY_SIMPLEX
    label_w = max(cv2.getTextSize(c, font, 0.5, 1)[0][0] for c in class_names) + 16 if class_names else 40
    top = 40 + label_w
    left = 30 + label_w
    w, h = left + k * cell + 20, top + k * cell + 50
    img = np.full((h, w, 3), 255, np.uint8)
    for i in range(k):
        for j in range(k):
            v = float(m[i, j]) if m.size else 0.0
            # white -> dark blue, like matplotlib's Blues
            colour = (int(255 - 80 * v), int(255 - 200 * v), int(255 - 230 * v))
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), colour, -1)
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), (200, 200, 200), 1)
            text = f"{v:.2f}"
            (tw, th), _ = cv2.getTextSize(text, font, 0.4, 1)
            cv2.putText(img, text, (x0 + (cell - tw) // 2, y0 + (cell + th) // 2), font, 0.4,
                        (255, 255, 255) if v > 0.5 else (0, 0, 0), 1, cv2.LINE_AA)
    for i, name in enumerate(class_names):
        (tw, th), _ = cv2.getTextSize(name, font, 0.5, 1)
        cv2.putText(img, name, (left - tw - 8, top + i * cell + (cell + th) // 2), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        # column labels written vertically: draw on a strip, rotate it
        strip = np.full((th + 8, tw + 4, 3), 255, np.uint8)
        cv2.putText(strip, name, (2, th + 2), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        strip = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
        sh, sw = strip.shape[:2]
        x0 = left + i * cell + (cell - sw) // 2
        y0 = top - sh - 6
        img[y0:y0 + sh, x0:x0 + sw] = np.minimum(img[y0:y0 + sh, x0:x0 + sw], strip)
    cv2.putText(img, "predicted", (left + k * cell // 2 - 36, top + k * cell + 30), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if title:
        cv2.putText(img, title, (10, 22), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return img
