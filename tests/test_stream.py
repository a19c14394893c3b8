"""Data larger than the device: the lazy reader, the sample reader, streamed training equal to resident training.

Streaming is forced with a tiny --device-memory cap (1 byte: a load per batch;
3000 bytes: loads of a few batches that do not line up with the batches), on
8x8 frames so an epoch takes milliseconds.  Equality is bit for bit on the CPU:
the same batches in the same order with the same augmentation parameters and
dropout masks, whichever way the data reaches the device.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from conftest import assert_user_error, fercli
from train_helpers import fit, max_diff, tiny_clips, train_to, weights, with_planes, write


def _history(path) -> list[dict]:
    with h5py.File(path) as f:
        hist = json.loads(f.attrs["history"])
    return [{k: v for k, v in h.items() if k not in ("seconds", "img_per_s")} for h in hist]


def _extra(path) -> dict:
    with h5py.File(path) as f:
        return json.loads(f.attrs["extra"])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from fercli import artifacts

    d = tmp_path_factory.mktemp("stream")
    path = write(d / "ck.h5", tiny_clips(variable=True))
    return {"dir": d, "path": path, "eager": artifacts.load_clips(path, "test")[:2], "lazy": artifacts.load_clips(path, "test", lazy=True)[:2]}


def _opts(epochs: int, cap=None, **kw):
    from fercli.train import RunOptions

    f = fit(epochs)
    f.augment.shift = 1  # rotation + flip + shift: every augmentation parameter is drawn
    f.shuffle_window = 16  # the block/window order, not a plain permutation (180 samples)
    # every frame a sample (several per clip, clips of 4-6 frames), dropout and BatchNorm on, val + test parts
    return RunOptions("plain-cnn", config={"width": 0.125}, size=(8, 8), frame="all", fold=0, val=0.3, fit=f, device_memory=cap, **kw)


@pytest.fixture(scope="module")
def resident(data):
    out = data["dir"] / "resident.h5"
    train_to(out, _opts(3), [data["eager"]])  # clips read whole, as before streaming existed
    return out


# --------------------------------------------------------------------------- the reader


def test_lazy_rows_read_only_the_rows_asked_for(tmp_path, monkeypatch):
    from fercli import artifacts

    clips = tiny_clips(subjects=40, frames=6)
    clips.landmarks = np.random.default_rng(0).random((len(clips.frames), 68, 2)).astype(np.float32)
    path = write(tmp_path / "big.h5", clips)
    eager, _, _ = artifacts.load_clips(path, "test")
    lazy, _, _ = artifacts.load_clips(path, "test", lazy=True)
    assert isinstance(lazy.frames, artifacts.LazyRows) and lazy.frame_shape == eager.frame_shape
    rng = np.random.default_rng(1)
    for index in (rng.integers(0, len(eager.frames), 300), np.array([7, 7, 0, -1]), np.arange(3, 200, 5), np.zeros(0, np.int64)):
        assert np.array_equal(lazy.frames[index], eager.frames[index])
        assert np.array_equal(lazy.landmarks[index], eager.landmarks[index])
    assert np.array_equal(lazy.frames[5:9], eager.frames[5:9]) and np.array_equal(lazy.frames[-2], eager.frames[-2])
    assert np.array_equal(np.asarray(lazy.frames), eager.frames)

    # an array task's shard (align/lbptop --shard): only its clips' rows come from the file
    read: list[tuple[int, int]] = []
    original = artifacts.LazyRows._read

    def counting(self, key):
        out = original(self, key)
        read.append((self._ds.name, len(out) if isinstance(key, slice) else 1))
        return out

    monkeypatch.setattr(artifacts.LazyRows, "_read", counting)
    shard = artifacts.shard_indices(len(lazy), (3, 8))
    part = lazy.select(shard)
    assert np.array_equal(part.frames, eager.select(shard).frames) and np.array_equal(part.landmarks, eager.select(shard).landmarks)
    assert sum(n for name, n in read if name == "/frames") == len(part.frames) < len(eager.frames) / 4
    assert sum(n for name, n in read if name == "/landmarks") == len(part.frames)


def test_sample_reader_builds_what_build_samples_builds(data):
    from fercli.protocol.samples import SampleReader, SampleSpec, Samples, build_samples, clip_labels

    eager, lazy = data["eager"][0], data["lazy"][0]
    other = tiny_clips(variable=True, seed=5)
    labels, other_labels = clip_labels(eager, eager.class_names), clip_labels(other, eager.class_names)
    rng = np.random.default_rng(2)
    specs = [SampleSpec(("image",), 1, "all"), SampleSpec(("image",), 1, "last"), SampleSpec(("image",), 3, "first-last", size=(6, 5)),
             SampleSpec(("clip",), 1, frames=3)]
    for spec in specs:
        rows, other_rows = np.sort(rng.choice(len(eager), 20, replace=False)), np.sort(rng.choice(len(other), 9, replace=False))
        whole = Samples.concat([build_samples(eager, rows, labels, eager.class_names, spec),
                                build_samples(other, other_rows, other_labels, eager.class_names, spec)])
        reader = SampleReader([(lazy, rows, labels), (other, other_rows, other_labels)], eager.class_names, spec)
        reader.PIECE_BYTES = 100  # pieces of a clip or two
        assert len(reader) == len(whole) and np.array_equal(reader.labels, whole.labels) and np.array_equal(reader.clip_index, whole.clip_index)
        assert reader.sample_bytes == sum(v[0].nbytes for v in whole.inputs.values()) + 8
        some = np.sort(rng.choice(len(whole), len(whole) // 3, replace=False))
        for got, want in ((reader.read_all(), np.arange(len(whole))), (reader.read(some), some)):
            for name in whole.inputs:
                assert np.array_equal(got.inputs[name], whole.inputs[name][want]), (spec, name)
            assert np.array_equal(got.labels, whole.labels[want])
    planes = with_planes(tiny_clips())
    rows = np.arange(3, 30, 2)
    spec = SampleSpec(("xt", "yt"), 1)
    whole = build_samples(planes, rows, clip_labels(planes, planes.class_names), planes.class_names, spec)
    got = SampleReader([(planes, rows, clip_labels(planes, planes.class_names))], planes.class_names, spec).read(np.array([0, 5, 13]))
    assert all(np.array_equal(got.inputs[k], whole.inputs[k][[0, 5, 13]]) for k in ("xt", "yt"))


def test_sample_order_is_a_permutation_read_in_windows():
    from fercli.train.engine import sample_order

    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(sample_order(100, 100, g()), torch.randperm(100, generator=g()))  # small sets: as before
    assert torch.equal(sample_order(100, 0, g()), torch.randperm(100, generator=g()))
    order = sample_order(10_000, 1024, g())
    assert sorted(order.tolist()) == list(range(10_000))
    # each window of 1024 samples comes from 64 blocks of 16 consecutive samples
    for w in range(0, 10_000, 1024):
        assert len(set((order[w:w + 1024] // 16).tolist())) <= 64
    assert not torch.equal(order, sample_order(10_000, 1024, torch.Generator().manual_seed(4)))


# --------------------------------------------------------------------------- streamed training


def test_streaming_equals_resident_bit_for_bit(data, resident):
    ref_w, ref_h = weights(resident), _history(resident)
    assert _extra(resident)["run"]["data_mode"]["mode"] == "resident"
    for cap, per_load in ((1, 8), (3000, 20)):  # a load per batch; loads of 20 samples across batch ends
        out = data["dir"] / f"stream-{cap}.h5"
        train_to(out, _opts(3, cap), [data["lazy"]])
        mode = _extra(out)["run"]["data_mode"]
        assert mode["mode"] == "streaming" and mode["load_samples"] == per_load and mode["budget_from"] == "--device-memory"
        assert max_diff(weights(out), ref_w) == 0.0
        assert _history(out) == ref_h  # loss, accuracies of train, val and test parts
    assert len(ref_h) == 3 and "val_acc" in ref_h[-1] and "test_acc" in ref_h[-1]


def test_a_streamed_run_resumes_resident(data, resident):
    from fercli.protocol import load_model_file

    out = data["dir"] / "part.h5"
    train_to(out, _opts(2, 1), [data["lazy"]])
    train_to(out, _opts(3), [data["eager"]], resume=load_model_file(str(out), "test"))
    assert max_diff(weights(out), weights(resident)) == 0.0
    assert _history(out) == _history(resident)


def test_each_rank_reads_only_its_share(data):
    """Under torchrun a rank's loads hold only the samples of its slices of the global batches."""
    from fercli.models.recipe import TrainingRecipe
    from fercli.protocol.samples import SampleReader, SampleSpec, clip_labels
    from fercli.train.engine import Dist, global_batches, sample_order
    from fercli.train.stream import StreamedData

    clips = data["lazy"][0]
    reader = SampleReader([(clips, np.arange(len(clips)), clip_labels(clips, clips.class_names))], clips.class_names,
                          SampleSpec(("image",), 1, "all"))
    full = reader.read_all()
    read = reader.read
    asked: dict[int, list[np.ndarray]] = {0: [], 1: []}
    for rank in (0, 1):
        reader.read = lambda want, r=rank: asked[r].append(want) or read(want)  # type: ignore[method-assign]
        order = sample_order(len(reader), 64, torch.Generator().manual_seed(0))
        batches = list(global_batches(order, 7, fit(1).with_recipe(TrainingRecipe()).augment, torch.Generator().manual_seed(1), Dist(2, rank, rank)))
        fed = list(StreamedData(reader, torch.device("cpu"), 10).feed(batches))
        assert len(fed) == len(batches)
        for (load, local), batch in zip(fed, batches):  # the load holds the batch's samples, indexed in the same order
            assert torch.equal(load.inputs["image"][local.index], torch.from_numpy(full.inputs["image"][batch.index.numpy()]))
            assert torch.equal(load.labels[local.index], torch.from_numpy(full.labels[batch.index.numpy()]))
            assert torch.equal(local.params, batch.params) and local.n_global == batch.n_global
    reader.read = read  # type: ignore[method-assign]
    share = {r: np.concatenate(asked[r]) for r in (0, 1)}
    assert sorted(np.concatenate([share[0], share[1]]).tolist()) == list(range(len(reader)))  # together: every sample once
    assert all(len(w) <= 10 for r in (0, 1) for w in asked[r])


def test_cli_says_it_streams_and_matches_the_resident_run(data):
    from fercli.train import RunOptions

    ref = data["dir"] / "cli-ref.h5"
    f = fit(2)
    f.shuffle_window = 16
    train_to(ref, RunOptions("plain-cnn", config={"dropout": 0, "width": 0.125}, size=(8, 8), fold=0, fit=f), [data["eager"]])
    out = data["dir"] / "cli.h5"
    proc = fercli("train", "plain-cnn", data["path"], "--fold", "0", "--size", "8", "--config", "dropout=0", "--config", "width=0.125",
                  "--batch-size", "8", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "2", "--shuffle-window", "16",
                  "--device", "cpu", "--device-memory", "1K", "-o", out, check=True)
    text = proc.stderr.decode()
    lines = [line for line in text.splitlines() if line.startswith("data: ")]
    assert len(lines) == 1 and "streaming from the artifacts" in lines[0] and "1.0 KiB budget, --device-memory" in lines[0], text
    assert max_diff(weights(out), weights(ref)) == 0.0
    assert _extra(out)["run"]["data_mode"]["mode"] == "streaming"
    assert_user_error(fercli("train", "plain-cnn", data["path"], "--device-memory", "lots", "-o", data["dir"] / "x.h5"), "--device-memory")
