"""`fercli export` (thesis 4.2.7): ONNX round trip, whole and split into CNN + GRU for the live system."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_user_error, fercli

from fercli import artifacts
from fercli.errors import FercliError

onnx = pytest.importorskip("onnx")


def _record(arch, config):
    from fercli.models import registry

    model, cfg = registry.build(arch, 3, config)
    # Non-trivial batch-norm statistics, so a graph exported in training mode would differ.
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.uniform_(-0.2, 0.2)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)
    return artifacts.ModelRecord(arch, cfg, registry.state_to_numpy(model), ["anger", "happy", "neutral"])


CNN_GRU = {"backbone": "mobilenet-v3-small", "backbone_config": {"in_channels": 3, "input_size": 48}, "input": "probs", "fc": 0, "frames": 5}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "live.h5"
    artifacts.save_model(str(path), _record("cnn-gru", CNN_GRU), [])
    return path


def test_split_round_trip_runs_like_pytorch(model_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import torch

    from fercli.models import registry

    out = tmp_path / "live.onnx"
    proc = fercli("export", model_file, "--onnx", out, "--split", check=True)
    assert proc.stderr.decode().count("max abs diff vs PyTorch") == 2
    cnn_path, gru_path = tmp_path / "live-cnn.onnx", tmp_path / "live-gru.onnx"
    assert cnn_path.exists() and gru_path.exists() and not out.exists()
    meta = {p.key: p.value for p in onnx.load(str(cnn_path)).metadata_props}
    assert json.loads(meta["fercli_class_names"]) == ["anger", "happy", "neutral"] and meta["fercli_part"] == "cnn"

    model = registry.from_record(artifacts.load_model(str(model_file), "t")[0]).eval()
    frames = torch.rand(7, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    cnn = ort.InferenceSession(str(cnn_path), providers=["CPUExecutionProvider"])
    gru = ort.InferenceSession(str(gru_path), providers=["CPUExecutionProvider"])
    # The live system's path: CNN per frame (batch 7 here), then the GRU on a window
    # of a length other than the one exported with (dynamic time axis).
    probs = cnn.run(None, {"image": frames.numpy()})[0]
    logits = gru.run(None, {"sequence": probs[None, :3]})[0]
    with torch.inference_mode():
        want_probs = model.frame_probs(frames).numpy()
        want = model.sequence_logits(torch.from_numpy(want_probs[None, :3])).numpy()
        whole = model(frames[None, :3]).numpy()
    assert np.abs(probs - want_probs).max() < 1e-5
    assert np.abs(logits - want).max() < 1e-5 and np.abs(logits - whole).max() < 1e-5


def test_whole_frame_model(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    src = tmp_path / "cnn.h5"
    artifacts.save_model(str(src), _record("plain-cnn", {"input_size": 32}), [])
    fercli("export", src, "--onnx", tmp_path / "cnn.onnx", check=True)
    session = ort.InferenceSession(str(tmp_path / "cnn.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    out = session.run(None, {"image": np.random.default_rng(0).random((4, 1, 32, 32), dtype=np.float32)})[0]
    assert out.shape == (4, 3)  # dynamic batch


def test_user_errors(model_file, tmp_path):
    src = tmp_path / "cnn.h5"
    artifacts.save_model(str(src), _record("plain-cnn", {"input_size": 32}), [])
    assert_user_error(fercli("export", src, "--onnx", tmp_path / "x.onnx", "--split"), "cnn-gru")
    assert_user_error(fercli("export", model_file), "--onnx")
    assert_user_error(fercli("export", model_file, "--onnx", tmp_path / "nofolder" / "x.onnx"), "does not exist")
    assert not list(tmp_path.glob("*.onnx"))


def test_missing_onnx_package_is_a_sentence(model_file, tmp_path, monkeypatch):
    import importlib.util

    from fercli import export

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    record = artifacts.load_model(str(model_file), "t")[0]
    with pytest.raises(FercliError, match="pip install onnx"):
        export.export_onnx(record, str(tmp_path / "x.onnx"))
