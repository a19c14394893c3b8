"""`evaluate`: metrics, held-out selection per fold, report artifact, PNG figure, complexity figures."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import fercli
from train_helpers import fit, tiny_clips, train_to, write


def test_metrics_from_confusion():
    from fercli.evaluate import confusion, metrics_from_confusion

    cm = confusion(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 1, 0]), 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    m = metrics_from_confusion(cm, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3), "f1": pytest.approx(2 / 3), "support": 3}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["confusion_normalised"][0] == pytest.approx([2 / 3, 1 / 3, 0])


def test_train_then_evaluate_every_fold_end_to_end(tmp_path):
    """tiny end-to-end: --folds all training -> `fercli evaluate --json -o --figure`."""
    from fercli import artifacts
    from fercli.train import RunOptions

    data = write(tmp_path / "ck.h5", tiny_clips())
    clips, ident, _ = artifacts.load_clips(data, "test")
    model = tmp_path / "m.h5"
    rec = train_to(model, RunOptions("plain-cnn", config={"dropout": 0, "width": 0.125}, size=(8, 8), all_folds=True, fit=fit(4)), [(clips, ident)])
    proc = fercli("evaluate", model, data, "--json", "-o", tmp_path / "r.h5", "--figure", tmp_path / "cm.png", check=True)
    r = json.loads(proc.stdout)
    assert [f["fold"] for f in r["folds"]] == [0, 1, 2] and [f["n"] for f in r["folds"]] == [12, 12, 12]
    # each fold is evaluated with its own weights on its own held-out subjects: same as training's last test_acc
    assert [f["accuracy"] for f in r["folds"]] == pytest.approx([e["test_acc"] for e in rec.extra["folds"]], abs=1e-6)
    accs = [f["accuracy"] for f in r["folds"]]
    assert r["accuracy_mean"] == pytest.approx(np.mean(accs), abs=1e-5) and r["accuracy_std"] == pytest.approx(np.std(accs), abs=1e-5)
    assert r["pooled"]["n"] == 36 and sum(map(sum, r["pooled"]["confusion"])) == 36
    assert r["trainable_params"] > 10_000 and r["flops"] > 0 and r["cpu_latency_ms"] > 0
    assert set(r["pooled"]["per_class"]) == {"neutral", "happy", "sad"}
    with h5py.File(tmp_path / "r.h5") as f:
        assert f.attrs["fercli_kind"] == "report"
        assert f["confusion"][()].sum() == 36 and len(f["fold_accuracy"]) == 3
        assert [e["stage"] for e in json.loads(f.attrs["fercli_lineage"])][-1] == "evaluate"
    png = (tmp_path / "cm.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[0] > 100 and img.shape[1] > 100


def test_single_fold_and_official_split_selection(tmp_path):
    from fercli.errors import FercliError
    from fercli.evaluate import evaluate
    from fercli.protocol import load_model_file
    from fercli.train import RunOptions

    clips = tiny_clips()
    m = tmp_path / "f2.h5"
    train_to(m, RunOptions("plain-cnn", size=(8, 8), fold=2, fit=fit(1)), [(clips, {"id": "a"})])
    r = evaluate(load_model_file(str(m), "t"), tiny_clips(), latency=False)
    assert [f["fold"] for f in r["folds"]] == [2] and r["folds"][0]["n"] == 12
    with pytest.raises(FercliError, match="fold 2"):  # fold 0's clips were its training data
        evaluate(load_model_file(str(m), "t"), tiny_clips(), fold=0, latency=False)
    with pytest.raises(FercliError, match="scoring them would leak"):  # fold 0/1 clips trained it
        evaluate(load_model_file(str(m), "t"), tiny_clips(), split="all", latency=False)
    r = evaluate(load_model_file(str(m), "t"), tiny_clips(), split="all", latency=False, include_training_data=True)
    assert r["folds"][0]["n"] == 36 and "INCLUDES" in r["folds"][0]["part"]
    s = tmp_path / "split.h5"
    train_to(s, RunOptions("plain-cnn", size=(8, 8), fit=fit(1)), [(tiny_clips(split=True), {"id": "b"})])
    r = evaluate(load_model_file(str(s), "t"), tiny_clips(split=True), latency=False)
    assert r["folds"][0]["part"] == "official test part" and r["folds"][0]["n"] == 12
    # classes are matched by name, whatever their order in the data
    r = evaluate(load_model_file(str(s), "t"), tiny_clips(split=True, classes=["sad", "happy", "neutral"]), latency=False)
    assert r["pooled"]["per_class"]["sad"]["support"] == 4


def test_computed_folds_are_replayed_whatever_folds_the_data_carries(tmp_path):
    """Data without a fold array: training computes subject folds and records them; evaluate
    scores the recorded test clips even when handed data whose own fold array differs."""
    from fercli.evaluate import evaluate
    from fercli.protocol import load_model_file
    from fercli.split import assign_folds
    from fercli.train import RunOptions

    clips = tiny_clips()
    clips.folds = None
    m = tmp_path / "c.h5"
    rec = train_to(m, RunOptions("plain-cnn", config={"width": 0.125}, size=(8, 8), fold=1, n_folds=3, fit=fit(1)), [(clips, {"id": "a"})])
    part = rec.extra["partition"]
    assert part["data"][0]["fold_source"].startswith("computed") and part["settings"]["n_folds"] == 3
    expected = set(np.flatnonzero(assign_folds(clips, 3, "subject", 0) == 1))
    data = tiny_clips()
    data.folds = (assign_folds(data, 3, "subject", 0) + 1) % 3  # another fold numbering
    r = evaluate(load_model_file(str(m), "t"), data, latency=False)
    assert r["folds"][0]["fold"] == 1 and r["folds"][0]["n"] == rec.extra["n_test"] == len(expected)
    assert rec.history[-1]["test_acc"] == pytest.approx(r["folds"][0]["accuracy"], abs=1e-6)
