"""The training engine: history/config record, resume equivalence, SIGTERM, --init-from, folds, no pickle.

Most runs call the stage in-process (a subprocess costs ~4 s of torch import on
2 shared cores); the CLI is exercised where the CLI itself is the point
(SIGTERM, the --init-from report, one-line errors)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from conftest import ROOT, assert_user_error, fercli
from train_helpers import fit, max_diff, tiny_clips, train_to, weights, write

# CLI flags equal to the in-process options below (8x8, no dropout, SGD 0.05, batch 8).
BASE = ["--size", "8", "--config", "dropout=0", "--config", "width=0.125", "--batch-size", "8", "--optimizer", "sgd", "--lr", "0.05"]
# cnn-gru has no 'width': it takes its backbone's config from --init-from
GRU = ["--size", "8", "--config", "dropout=0", "--batch-size", "8", "--optimizer", "sgd", "--lr", "0.05"]


def opts(epochs: int, **kw):
    from fercli.train import RunOptions

    kw.setdefault("fold", 0)
    return RunOptions("plain-cnn", config={"dropout": 0, "width": 0.125}, size=(8, 8), fit=fit(epochs), **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    path = write(d / "ck.h5", tiny_clips())
    from fercli import artifacts

    clips, ident, _ = artifacts.load_clips(path, "test")
    return {"dir": d, "ck": path, "datasets": [(clips, ident)]}


@pytest.fixture(scope="module")
def full_run(data):
    """The uninterrupted reference: plain-cnn, fold 0, 6 epochs."""
    out = data["dir"] / "full.h5"
    train_to(out, opts(6), data["datasets"])
    return out


def test_train_records_history_config_and_folds(full_run):
    from fercli.protocol import load_model_file

    mf = load_model_file(str(full_run), "test")
    h = mf.record.history
    assert [e["epoch"] for e in h] == list(range(1, 7))
    for key in ("loss", "train_acc", "test_acc", "test_loss", "lr", "seconds", "img_per_s"):
        assert key in h[-1]
    assert h[-1]["loss"] < h[0]["loss"]  # it learns the bars
    run = mf.record.extra["run"]
    assert run["seed"] == 0 and run["torch"] == torch.__version__ and run["device"] == "cpu" and run["world_size"] == 1
    assert run["options"]["fit"]["batch_size"] == 8 and run["options"]["fit"]["augment"]["rotation"] == 10.0
    assert mf.record.extra["fold"] == 0 and mf.record.extra["n_test"] == 12 and mf.record.extra["n_train"] == 24
    assert mf.record.config["input_size"] == 8 and mf.record.config["in_channels"] == 1
    assert mf.record.extra["progress"] == {"partition": 0, "epoch": 6, "complete": True}


def test_resume_reaches_the_same_weights(data, full_run):
    from fercli.protocol import load_model_file

    part = data["dir"] / "part.h5"
    train_to(part, opts(3), data["datasets"])
    assert max_diff(weights(part), weights(full_run)) > 1e-3  # really only half trained
    train_to(part, opts(6), data["datasets"], resume=load_model_file(str(part), "test"))
    assert max_diff(weights(part), weights(full_run)) == 0.0
    assert len(load_model_file(str(part), "test").record.history) == 6


@pytest.mark.parametrize("where", [[], ["--device-memory", "1K"]], ids=["resident", "streamed"])
def test_sigterm_saves_a_checkpoint_and_resume_matches(data, full_run, where):
    out = data["dir"] / f"term{len(where)}.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "fercli", "train", "plain-cnn", data["ck"], "--fold", "0", "--epochs", "6", *BASE, *where, "-o", str(out)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while not out.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    text = stderr.decode()
    assert proc.returncode == 143, text  # documented: 128 + SIGTERM, checkpoint kept
    assert "resume with --resume" in text and "Traceback" not in text
    with h5py.File(out) as f:
        done = len(json.loads(f.attrs["history"]))
    assert 1 <= done < 6
    assert not [p for p in os.listdir(out.parent) if p.startswith(".fercli-tmp")]
    # resume in-process (the CLI's --resume only loads -o and passes it here)
    from fercli.protocol import load_model_file

    train_to(out, opts(6), data["datasets"], resume=load_model_file(str(out), "test"))
    assert max_diff(weights(out), weights(full_run)) == 0.0


def test_repeated_sigterm_stops_once_with_one_message(data):
    """A cluster often delivers SIGTERM twice (to the job step, and again through
    torchrun to every rank); later signals must not interrupt the orderly stop: one
    sentence, exit 143, a checkpoint that resumes."""
    out = data["dir"] / "term-repeated.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "fercli", "train", "plain-cnn", data["ck"], "--fold", "0", "--epochs", "6", *BASE, "-o", str(out)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while not out.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    sent = 0
    while proc.poll() is None and time.time() < deadline:  # SIGTERM every 10 ms until it has stopped
        proc.send_signal(signal.SIGTERM)
        sent += 1
        time.sleep(0.01)
    _, stderr = proc.communicate(timeout=120)
    text = stderr.decode()
    assert sent >= 2, "the stop took less than one repeat: the test proved nothing"
    assert proc.returncode == 143, text
    assert text.count("stopped by signal") == 1 and "Traceback" not in text, text
    assert "resume with --resume" in text
    from fercli.protocol import load_model_file

    assert 1 <= len(load_model_file(str(out), "test").record.history) < 6
    assert not [p for p in os.listdir(out.parent) if p.startswith(".fercli-tmp")]


def test_no_pickle_in_model_artifacts(full_run):
    with h5py.File(full_run) as f:
        seen = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                # numbers, or UTF-8 strings (the partition record's ids): nothing to unpickle
                assert obj.dtype.kind in "fiub" or h5py.check_string_dtype(obj.dtype) is not None, (name, obj.dtype)
                seen.append(name)
            for key, value in obj.attrs.items():
                assert isinstance(value, (str, bytes, np.integer, np.floating, int, float)), (name, key, type(value))
                if isinstance(value, bytes):
                    assert not value.startswith(b"\x80"), (name, key)  # a pickle stream's PROTO opcode

        f.visititems(visit)
        assert any(n.startswith("weights/") for n in seen) and any(n.startswith("optimizer/") for n in seen)


def test_epochs_zero_then_init_from_with_freeze(data):
    from fercli.errors import FercliError
    from fercli.protocol import load_model_file

    d = data["dir"]
    cnn = d / "cnn0.h5"
    rec = train_to(cnn, opts(0, fold=1), data["datasets"])
    assert rec.history == [] and rec.extra["progress"]["complete"]
    src = weights(cnn)
    # 3.2.3 transfer: the static CNN becomes cnn-gru's frame model (under 'backbone.').
    gru = d / "gru.h5"
    proc = fercli("train", "cnn-gru", data["ck"], "--init-from", cnn, "--input", "probs", "--fold", "1", "--epochs", "1",
                  "--freeze", *GRU, "-o", gru, check=True)
    msg = proc.stderr.decode()
    assert f"{len(src)} tensors loaded" in msg and "skipped for shape" in msg and "under 'backbone.'" in msg, msg
    got = weights(gru)
    assert all(np.array_equal(got["backbone." + k], v) for k, v in src.items())  # loaded and frozen
    rec = load_model_file(str(gru), "test").record
    assert rec.config["backbone"] == "plain-cnn" and rec.config["frames"] == 4 and rec.config["input"] == "probs"
    assert rec.extra["init"]["loaded"] == len(src) and rec.extra["init"]["frozen"] is True
    assert rec.extra["init"]["new"] > 0  # the GRU head
    # a source trained with another held-out fold would leak its test subjects into training
    with pytest.raises(FercliError, match="fold 1"):
        train_to(d / "leak.h5", opts(0, fold=0), data["datasets"], init=load_model_file(str(cnn), "test"))
    assert not (d / "leak.h5").exists()


def test_init_matching_rules():
    from fercli.models.registry import build
    from fercli.train.init import load_matching

    src, _ = build("plain-cnn", 5, {"input_size": 8})
    dst, _ = build("plain-cnn", 3, {"input_size": 8})
    state = {k: v.numpy() for k, v in src.state_dict().items()}
    report = load_matching(dst, state, "src")
    assert report.prefix == ""
    assert report.skipped_shape == ["classifier.weight", "classifier.bias"]  # 5 vs 3 classes: left new
    assert set(report.new) == {"classifier.weight", "classifier.bias"}
    assert torch.equal(dst.state_dict()["trunk.body.0.weight"], src.state_dict()["trunk.body.0.weight"])


def test_folds_all_in_one_artifact(data):
    from fercli.protocol import load_model_file

    out = data["dir"] / "all.h5"
    rec = train_to(out, opts(1, fold=None, all_folds=True), data["datasets"])
    assert [e["fold"] for e in rec.extra["folds"]] == [0, 1, 2]
    with h5py.File(out) as f:
        assert sorted(f["folds"].keys()) == ["0", "1", "2"]
    mf = load_model_file(str(out), "test")
    assert sum(e["n_test"] for e in mf.record.extra["folds"]) == 36
    assert not np.array_equal(mf.arrays["folds/0"]["classifier.weight"], mf.arrays["folds/1"]["classifier.weight"])
    assert mf.record.extra["progress"]["complete"]


def test_bad_requests_are_one_sentence(data, full_run, tmp_path):
    var = write(tmp_path / "var.h5", tiny_clips(variable=True))
    assert_user_error(fercli("train", "cnn-gru", var, "--epochs", "0", *GRU, "-o", tmp_path / "x.h5"), "resample")
    assert not (tmp_path / "x.h5").exists()
    from fercli.errors import FercliError
    from fercli.train import RunOptions, train

    clips = tiny_clips()
    with pytest.raises(FercliError, match="lbptop"):
        train(RunOptions("lbptop-gru", fold=0), [(clips, {"id": "a"})])
    with pytest.raises(FercliError, match="fold 7"):
        train(RunOptions("plain-cnn", fold=7), [(clips, {"id": "a"})])
    with pytest.raises(FercliError, match="add neutral to --classes"):
        train(RunOptions("plain-cnn", frame="first-last", classes=["angry", "happy"], fold=0), [(tiny_clips(classes=["angry", "happy", "sad"]), {"id": "a"})])
    with pytest.raises(FercliError, match="--classes names joy"):
        train(RunOptions("plain-cnn", classes=["joy", "sad"], fold=0), [(clips, {"id": "a"})])
    from fercli.protocol import load_model_file

    with pytest.raises(FercliError, match="other options"):  # --resume with another seed
        train(RunOptions("plain-cnn", config={"dropout": 0, "width": 0.125}, size=(8, 8), fold=0, fit=fit(6, seed=3)), data["datasets"],
              resume=load_model_file(str(full_run), "test"))


def test_official_split_cross_database_identity_first_last():
    from fercli.train import RunOptions, train
    from fercli.train.augment import AugmentConfig

    a = tiny_clips(split=True)
    b = tiny_clips(classes=["sad", "neutral", "happy"], seed=1, split=True)
    f = fit(1, augment=AugmentConfig(rotation=0, flip=False))
    rec = train(RunOptions("plain-cnn", config={"dropout": 0.0}, size=(8, 8), frame="first-last", fit=f), [(a, {"id": "a"}), (b, {"id": "b"})])
    assert rec.class_names == ["neutral", "happy", "sad"]  # reconciled by name
    assert rec.extra["partition"]["scheme"] == "official split"
    # 2 data sets x 4 train subjects x 6 clips x (2 first + 2 last frames of 4)
    assert rec.extra["n_train"] == 2 * 4 * 6 * 4 and rec.extra["n_test"] == 2 * 2 * 6 * 4
    # neutral: every clip's first frames + the neutral clips' peaks
    assert rec.extra["class_counts_train"][0] == 2 * 4 * 6 * 2 + 2 * 4 * 2 * 2
    ident = train(RunOptions("plain-cnn", task="identity", size=(8, 8), fit=fit(0)), [(tiny_clips(), {"id": "a"})])
    assert ident.class_names == [f"S{i}" for i in range(6)]


def test_augmentation_same_params_for_every_frame_and_exact_shift_flip():
    from fercli.train import augment as aug

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 8, 8)
    clip = torch.stack([x, x.flip(0)], 1).unsqueeze(2)  # (B=2, T=2, C=1, 8, 8): frame 1 differs
    p = aug.draw(2, aug.AugmentConfig(rotation=10, flip=True, shift=2), g)
    out = aug.apply(clip, p)
    single0 = aug.apply(clip[:, 0], p)
    single1 = aug.apply(clip[:, 1], p)
    assert torch.allclose(out[:, 0], single0, atol=1e-6) and torch.allclose(out[:, 1], single1, atol=1e-6)
    # no rotation: a flip and an integer shift are exact pixel moves with zero fill
    img = torch.arange(64.0).view(1, 1, 8, 8)
    flipped = aug.apply(img, torch.tensor([[0.0, -1.0, 0.0, 0.0]]))
    assert torch.allclose(flipped, img.flip(-1), atol=1e-4)
    shifted = aug.apply(img, torch.tensor([[0.0, 1.0, 2.0, 1.0]]))
    expect = torch.zeros_like(img)
    expect[..., 1:, 2:] = img[..., :-1, :-2]
    assert torch.allclose(shifted, expect, atol=1e-4)


def test_schedules():
    from fercli.models import registry
    from fercli.train.engine import lr_at

    assert [lr_at("step:80,140,180", 0.1, e, 200) for e in (0, 79, 80, 140, 199)] == pytest.approx([0.1, 0.1, 0.01, 0.001, 0.0001])
    assert registry.get_spec("lb-mbnet").recipe.schedule_for(200) == "step:80,140,180"  # 5.3.1
    assert lr_at("cosine", 1.0, 0, 10) == 1.0 and lr_at("constant", 0.5, 9, 10) == 0.5


def test_a_library_caller_gets_the_architectures_recipe():
    """Issue 24: the recipe was resolved in the CLI, so fercli.train.train gave lb-mbnet Adam 1e-3."""
    from fercli.train import AugmentConfig, FitOptions, RunOptions, train

    clips = tiny_clips(frames=1)
    rec = train(RunOptions("lb-mbnet", config={"depth": 14, "expansion": 1, "channels": [8, 4, 8, 8, 16, 16]}, size=(16, 16),
                           fit=FitOptions(epochs=0, lr=0.05, augment=AugmentConfig(flip=False))), [(clips, {"id": "a"})])
    fit_run = rec.extra["run"]["options"]["fit"]
    assert {k: fit_run[k] for k in ("optimizer", "lr", "batch_size", "momentum", "schedule")} == \
           {"optimizer": "sgd", "lr": 0.05, "batch_size": 128, "momentum": 0.9, "schedule": "step:1,1,1"}  # 5.3.1 but the given lr
    assert fit_run["augment"] == {"rotation": 0.0, "flip": False, "shift": 4}
    plain = train(RunOptions("plain-cnn", config={"width": 0.125}, size=(8, 8), fit=FitOptions(epochs=0)), [(clips, {"id": "a"})])
    assert plain.extra["run"]["options"]["fit"]["optimizer"] == "adam" and plain.extra["run"]["options"]["fit"]["augment"]["rotation"] == 10.0


def test_multistream_fuses_trained_streams_per_fold(tmp_path):
    """3.2.5: four stream artifacts -> fusion; fold k of the fusion uses fold k of each stream; streams stay frozen."""
    from fercli.protocol import load_model_file
    from fercli.train import RunOptions, train
    from train_helpers import with_planes

    clips = with_planes(tiny_clips())
    ds = [(clips, {"id": "p"})]
    paths = []
    for i, (arch, cfg) in enumerate([("cnn-gru", {"input": "features", "backbone_config": {"width": 0.125}}),
                                     ("cnn-gru", {"input": "probs", "backbone_config": {"width": 0.125}}),
                                     ("lbptop-gru", {"plane": "xt"}), ("lbptop-gru", {"plane": "yt"})]):
        p = tmp_path / f"s{i}.h5"
        train_to(p, RunOptions(arch, config=cfg, size=(8, 8), fold=0, fit=fit(0)), ds)
        paths.append(p)
    streams = [load_model_file(str(p), "t") for p in paths]
    rec = train_to(tmp_path / "ms.h5", RunOptions("multistream", size=(8, 8), fold=0, fit=fit(1)), ds, streams=streams)
    assert [s["arch"] for s in rec.config["streams"]] == ["cnn-gru", "cnn-gru", "lbptop-gru", "lbptop-gru"]
    assert rec.extra["data_prep"]["input_names"] == ["clip", "xt", "yt"]
    for i, s in enumerate(streams):
        for k, v in s.record.state.items():
            assert np.array_equal(rec.state[f"streams.{i}.{k}"], v), (i, k)
    fresh = weights(tmp_path / "ms.h5")["classifier.weight"]
    assert rec.history and fresh.shape == (3, 512)
    from fercli.errors import FercliError

    with pytest.raises(FercliError, match="fold 0"):  # fold 1 of the fusion must not use fold-0 streams
        train(RunOptions("multistream", size=(8, 8), fold=1, fit=fit(0)), ds, streams=streams)


def test_averaged_outputs_fusion_trains_nothing_and_scores_the_mean(tmp_path):
    """3.1 (4): --config fusion=average --epochs 0 writes the fusion of fold k's streams; evaluate scores the mean probabilities."""
    from fercli.evaluate import evaluate
    from fercli.protocol import load_model_file
    from fercli.protocol.samples import SampleSpec, build_samples, clip_labels, to_float
    from fercli.models import registry
    from fercli.train import RunOptions
    from train_helpers import with_planes

    clips = with_planes(tiny_clips())
    ds = [(clips, {"id": "p"})]
    paths = []
    for plane in ("xt", "yt"):
        p = tmp_path / f"{plane}.h5"
        train_to(p, RunOptions("lbptop-gru", config={"plane": plane}, size=(8, 8), fold=0, fit=fit(1)), ds)
        paths.append(p)
    streams = [load_model_file(str(p), "t") for p in paths]
    train_to(tmp_path / "avg.h5", RunOptions("multistream", config={"fusion": "average"}, size=(8, 8), fold=0, fit=fit(0)), ds, streams=streams)
    avg = load_model_file(str(tmp_path / "avg.h5"), "t")
    assert avg.record.config["fusion"] == "average" and not any(k.startswith("classifier") for k in avg.record.state)
    report = evaluate(avg, clips, latency=False)
    assert report["trainable_params"] == 0
    # the same held-out clips scored by hand: argmax of the two streams' mean probabilities
    test = np.flatnonzero(np.asarray(clips.folds) == 0)
    probs = []
    for s in streams:
        model = registry.from_record(s.record).eval()
        spec = SampleSpec.from_json(s.record.extra["data_prep"], model, s.record.config)
        samples = build_samples(clips, test, clip_labels(clips, s.record.class_names), s.record.class_names, spec)
        with torch.no_grad():
            probs.append(torch.softmax(model(*[to_float(torch.from_numpy(samples.inputs[n])) for n in spec.input_names]), 1))
    expected = float(((probs[0] + probs[1]).argmax(1).numpy() == samples.labels).mean())
    assert report["accuracy_mean"] == pytest.approx(expected)


def test_folds_all_resume_after_interruption_in_the_second_fold(tmp_path):
    """A --folds all run stopped inside fold 1 resumes there and ends with every fold's exact weights."""
    from fercli.errors import Interrupted
    from fercli.protocol import load_model_file, save_model_file
    from fercli.train import Callbacks, Stopped, train

    clips = tiny_clips()
    ds = [(clips, {"id": "a"})]
    ref = tmp_path / "ref.h5"
    train_to(ref, opts(2, fold=None, all_folds=True), ds)
    out = tmp_path / "cut.h5"
    calls = []

    def save(record, arrays):
        save_model_file(str(out), record, [], arrays)
        calls.append(record.extra["progress"])
        if len(calls) == 3:  # fold 1, epoch 1 just written: the signal arrives now
            raise Interrupted(15)

    with pytest.raises(Stopped) as stop:
        train(opts(2, fold=None, all_folds=True), ds, callbacks=Callbacks(save=save))
    assert stop.value.epoch == 1 and calls[2] == {"partition": 1, "epoch": 1, "complete": False}
    mf = load_model_file(str(out), "test")
    assert mf.folds_trained == [0]
    train_to(out, opts(2, fold=None, all_folds=True), ds, resume=load_model_file(str(out), "test"))
    a, b = load_model_file(str(out), "t"), load_model_file(str(ref), "t")
    assert a.folds_trained == b.folds_trained == [0, 1, 2]
    for k in (0, 1, 2):
        assert max_diff(a.arrays[f"folds/{k}"], b.arrays[f"folds/{k}"]) == 0.0
    assert [f["fold"] for f in a.record.extra["folds"]] == [0, 1, 2]
