"""``evaluate``: accuracy, per-class precision/recall/F1, confusion matrices,
chance and majority-class baselines, mean +- std over folds, parameters, FLOPs and
CPU latency (thesis 3.3, Fig 3.7, Tables 3.1-3.5, 4.1-4.4, 5.2-5.6).

What is scored is what the model did NOT train on, as its partition record says
(:mod:`fercli.protocol.partition`):

- every run (fold) of the model with its own weights, on the clips of DATA that the
  record lists in that run's test part -- matched by clip id in the very data the
  model trained on, and by clip id or original sequence id in a copy of it (an
  unaligned or re-aligned copy, ``--ckplus-split`` clips of the same sequences);
- in DATA of another origin (a new data set), every clip: the model never met them;
- a clip whose subject the run trained on is never reported as held out.  When DATA
  holds nothing held out, or ``split='all'`` would score trained-on clips, the
  evaluation is refused with a sentence (``include_training_data`` scores them
  anyway, and the report says so).

A model written before partition records is evaluated as fercli did then (DATA's
folds or official split) and its report says ``partition: reconstructed``.
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
from fercli.models.summary import complexity, freeze_as_trained
from fercli.progress import ProgressFn, report
from fercli.protocol import partition as P
from fercli.protocol.join import class_key
from fercli.protocol.modelfile import ModelFile, fold_state
from fercli.protocol.samples import SampleReader, SampleSpec, clip_labels, to_float

#: Samples per forward pass, and most bytes of samples held at once (data larger than memory is read in loads).
EVAL_BATCH = 128
EVAL_LOAD_BYTES = 256 << 20


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


def baselines(y_true: np.ndarray, class_names: list[str]) -> dict:
    """What no model needs to learn: uniform guessing over the model's classes, and
    always answering the commonest class of the scored labels."""
    counts = np.bincount(np.asarray(y_true, dtype=np.int64), minlength=len(class_names))
    top = int(np.argmax(counts)) if counts.sum() else 0
    return {"chance": round(1.0 / max(1, len(class_names)), 6),
            "majority": round(float(counts[top] / counts.sum()), 6) if counts.sum() else None,
            "majority_class": class_names[top] if counts.sum() else None}


# --------------------------------------------------------------------------- complexity


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


# --------------------------------------------------------------------------- what to score


def _jobs(mf: ModelFile, data: P.DataSet, fold: Optional[int], split: str, include_training_data: bool) -> tuple[list, dict]:
    """[(fold, clip indices, what)] to score, and how they were chosen (for the report)."""
    labelled = np.flatnonzero(data.labels >= 0)
    rec = mf.partition
    if rec is None:
        if split == "all":
            wanted = [fold] if fold is not None else (mf.folds_trained or [mf.record.extra.get("fold")])
            return [(k, labelled, "all labelled clips") for k in wanted], {"source": "reconstructed (the model has no partition record)"}
        jobs = P.reconstructed_parts(mf.record.extra, data.clips, data.labels, mf.folds_trained, fold)
        return jobs, {"source": "reconstructed (the model has no partition record)"}
    runs = [rec.run_of(fold, mf.name)] if fold is not None else list(range(len(rec.runs)))
    jobs, how = [], {"source": "record", "runs": []}
    for r in runs:
        run = rec.runs[r]
        rp = P.replay(rec, r, data)
        trained = np.intersect1d(rp.trained, labelled)
        entry = {"fold": run.fold, "match": rp.match, "matched_to": rp.matched_to, "trained_clips_in_data": int(len(trained))}
        if split == "all":
            if len(trained) and not include_training_data:
                subjects = sorted(set(map(str, data.clips.subjects[trained])))
                raise FercliError(f"{mf.name} trained on subjects {P.describe_subjects(subjects)} of {data.name} ({P.run_label(run)}); "
                                  "scoring them would leak: use --split test (the held-out part), or --include-training-data to score them anyway")
            index, what = labelled, "all labelled clips" + (" (INCLUDES clips the model trained on)" if len(trained) else "")
        else:
            index = np.intersect1d(rp.where(P.TEST), labelled)
            what = f"{run.name} (held out)" if run.fold is not None else "official test part"
            if not len(index):
                index = np.intersect1d(rp.where(P.UNSEEN, P.OTHER), labelled)
                what = ("every clip (data the model never met)" if rp.match == "new" else
                        f"{run.name}: clips of subjects the model never trained on")
            if not len(index):
                subjects = sorted(set(map(str, data.clips.subjects[trained]))) if len(trained) else []
                who = f" (subjects {P.describe_subjects(subjects)})" if subjects else ""
                raise FercliError(f"{mf.name} trained on every clip of {data.name} it could score{who} ({P.run_label(run)}): nothing in it is held out "
                                  "(--split all --include-training-data scores them anyway)")
        entry["scored_clips"] = int(len(index))
        entry["skipped_trained_clips"] = int(len(np.setdiff1d(trained, index)))
        how["runs"].append(entry)
        jobs.append((run.fold, index, what))
    return jobs, how


# --------------------------------------------------------------------------- evaluate


def evaluate(mf: ModelFile, clips: Clips, fold: Optional[int] = None, split: str = "test", device: str = "auto",
             latency: bool = True, progress: Optional[ProgressFn] = None, identity: Optional[dict] = None,
             include_training_data: bool = False) -> dict:
    """Evaluate a trained model artifact on ``clips`` (the artifact ``identity``); returns a JSON-able report."""
    from fercli.device import resolve_device

    if split not in ("test", "all"):
        raise FercliError(f"--split must be test or all, not '{split}'")
    rec = mf.record
    class_names = list(rec.class_names)
    model = freeze_as_trained(registry.from_record(rec), rec)
    spec = SampleSpec.from_json(rec.extra.get("data_prep") or {}, model, rec.config)
    data = P.DataSet(clips, dict(identity or {}), clip_labels(clips, class_names, spec.task))
    model_keys = {class_key(c) for c in class_names}
    if spec.task != "identity" and len(clips.class_names) and not any(class_key(c) in model_keys for c in clips.class_names):
        raise FercliError(f"none of the data's classes ({', '.join(clips.class_names)}) is a class of the model ({', '.join(class_names)})")
    if not np.any(data.labels >= 0):
        raise FercliError("no clip of the data has a class the model knows")
    spec.check(clips, data.name)
    jobs, how = _jobs(mf, data, fold, split, include_training_data)
    dev = resolve_device(device)

    results = []
    pooled = np.zeros((len(class_names), len(class_names)), np.int64)
    first_inputs = None
    outputs: list[dict] = []  # per evaluated sample, for the report's 'predictions' (fercli table / show)
    for i, (k, index, what) in enumerate(jobs):
        registry.load_state(model, fold_state(mf, k, "model"), rec.arch)
        model.eval().to(dev)
        samples = SampleReader([(clips, index, data.labels)], class_names, spec)  # read a load at a time
        if not len(samples):
            raise FercliError(f"{what}: no samples to evaluate")
        load = max(1, EVAL_LOAD_BYTES // samples.sample_bytes // EVAL_BATCH) * EVAL_BATCH  # whole batches: the same batches as one load
        probs = []
        with torch.no_grad():
            for lo in range(0, len(samples), load):
                part = samples.read(np.arange(lo, min(len(samples), lo + load)))
                if first_inputs is None:
                    first_inputs = [to_float(torch.from_numpy(part.inputs[n][:1])) for n in spec.input_names]
                for start in range(0, len(part), EVAL_BATCH):
                    xs = [to_float(torch.from_numpy(part.inputs[n][start:start + EVAL_BATCH]).to(dev)) for n in spec.input_names]
                    probs.append(torch.softmax(model(*xs).float(), 1).cpu().numpy())
        y_prob = np.concatenate(probs)
        y_pred = y_prob.argmax(1)
        outputs.append({"clip": samples.clip_index, "fold": np.full(len(y_pred), -1 if k is None else k),
                        "truth": samples.labels, "prediction": y_pred, "probabilities": y_prob})
        cm = confusion(samples.labels, y_pred, len(class_names))
        pooled += cm
        results.append({"fold": k, "part": what, **metrics_from_confusion(cm, class_names), "baselines": baselines(samples.labels, class_names),
                        "clips": int(len(index))})
        report(progress, i + 1, len(jobs))

    accs = [r["accuracy"] for r in results if r["accuracy"] is not None]
    overall = metrics_from_confusion(pooled, class_names)
    overall["baselines"] = baselines(np.repeat(np.arange(len(class_names)), pooled.sum(1)), class_names)
    out = {
        "model": mf.identity, "arch": rec.arch, "config": rec.config, "class_names": class_names,
        "split": split, "partition": how, "folds": results,
        "accuracy_mean": round(float(np.mean(accs)), 6) if accs else None,
        "accuracy_std": round(float(np.std(accs)), 6) if len(accs) > 1 else 0.0,
        "pooled": overall,
        "predictions": _predictions(clips, outputs, len(class_names)),
    }
    model = model.cpu()
    c = complexity(model, first_inputs)
    out.update({k: c[k] for k in ("trainable_params", "frozen_params", "fixed_params", "bn_stats", "flops")})
    out["input_shapes"] = [list(x.shape) for x in first_inputs]
    if latency:
        out["cpu_latency_ms"] = cpu_latency_ms(model, first_inputs)
    return out


def _predictions(clips: Clips, outputs: list[dict], k: int) -> dict[str, np.ndarray]:
    """One row per evaluated sample (one per clip unless frames are samples):
    clip id, subject, fold, true and predicted class index, class probabilities."""
    cat = {key: np.concatenate([o[key] for o in outputs]) if outputs else np.zeros(0) for key in ("clip", "fold", "truth", "prediction")}
    clip = cat.pop("clip").astype(np.int64)
    return {"clip_id": clips.clip_ids[clip], "subject": clips.subjects[clip], **{key: v.astype(np.int64) for key, v in cat.items()},
            "probabilities": np.concatenate([o["probabilities"] for o in outputs]) if outputs else np.zeros((0, k), np.float32)}
