"""Every registered network: output shapes, features, registry round trip through an HDF5 model artifact."""

from __future__ import annotations

import pytest
import torch

from fercli import artifacts
from fercli.errors import FercliError
from fercli.models import registry
from fercli.models.blocks import InvertedResidual, SqueezeExcite

torch.set_num_threads(1)

# Small configs so the whole file runs in seconds on 2 cores.
TINY_LB = {"depth": 14, "expansion": 2, "channels": [8, 8, 8, 16, 16, 32], "input_size": 16}
CASES = [
    ("plain-cnn", {"input_size": 32}, ("image",)),
    ("plain-cnn", {"in_channels": 3, "input_size": 32, "batch_norm": False}, ("image",)),
    ("cnn-gru", {"frames": 3, "backbone_config": {"input_size": 32}}, ("clip",)),
    ("cnn-gru", {"frames": 3, "input": "probs", "rnn": "lstm", "fc": 0, "backbone_config": {"input_size": 32}}, ("clip",)),
    ("cnn-gru", {"frames": 3, "rnn": "max", "backbone": "mobilenet-v3-small", "backbone_config": {"input_size": 32, "width_mult": 0.5}}, ("clip",)),
    ("lbptop-gru", {"plane": "yt", "maps": 3, "input_size": 24}, ("yt",)),
    ("lbptop-gru", {"plane": "xt", "rnn": "max", "maps": 3, "input_size": 24}, ("xt",)),
    ("mobilenet-v2", {"input_size": 32, "width_mult": 0.35}, ("image",)),
    ("mobilenet-v3", {"input_size": 32, "width_mult": 0.5, "in_channels": 1}, ("image",)),
    ("mobilenet-v3-large", {"input_size": 32, "width_mult": 0.5}, ("image",)),
    ("mobilenet-v3-small", {"input_size": 32, "last_point": 64}, ("image",)),
    ("lb-mbnet", TINY_LB, ("image",)),
    ("lb-mbnet", {**TINY_LB, "in_channels": 1, "expansion": [1, 2, 3]}, ("image",)),
]


@pytest.mark.parametrize("arch,config,inputs", CASES, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(CASES)])
def test_shapes_and_round_trip(arch, config, inputs, tmp_path):
    torch.manual_seed(0)
    model, resolved = registry.build(arch, 5, config)
    assert registry.inputs_for(arch, config) == inputs
    assert tuple(model.inputs) == inputs
    model.eval()
    xs = tuple(torch.rand_like(x) for x in model.dummy_inputs(2))
    with torch.no_grad():
        y = model(*xs)
        f = model.features(*xs)
    assert y.shape == (2, 5)
    assert f.shape == (2, model.feature_dim)
    assert torch.allclose(model.classify(f), y, atol=1e-5)

    # Through an HDF5 model artifact and back: same outputs, no pickle involved.
    rec = artifacts.ModelRecord(arch, resolved, registry.state_to_numpy(model), list("abcde"))
    path = tmp_path / "m.h5"
    artifacts.save_model(str(path), rec, [artifacts.lineage_entry("test", {}, [])])
    loaded, _, _ = artifacts.load_model(str(path), "test")
    again = registry.from_record(loaded).eval()
    with torch.no_grad():
        assert torch.allclose(again(*xs), y, atol=1e-5)


def test_frame_model_features_are_128d():
    for arch in ("plain-cnn", "mobilenet-v3-small"):
        m, _ = registry.build(arch, 7, {"input_size": 32})
        assert m.feature_dim == 128


def test_cnn_gru_halves_compose_to_forward():
    """The live system runs frame_vectors per frame and sequence_logits per window."""
    torch.manual_seed(0)
    m, _ = registry.build("cnn-gru", 4, {"input": "probs", "fc": 0, "frames": 4, "backbone_config": {"input_size": 32}})
    m.eval()
    (clip,) = m.dummy_inputs(2)
    clip = torch.rand_like(clip)
    with torch.no_grad():
        per_frame = torch.stack([m.frame_vectors(clip[:, t]) for t in range(clip.shape[1])], 1)
        assert torch.allclose(per_frame, torch.stack([m.frame_probs(clip[:, t]) for t in range(4)], 1))
        assert torch.allclose(per_frame.sum(-1), torch.ones(2, 4), atol=1e-5)  # PD: softmax rows
        assert torch.allclose(m.sequence_logits(per_frame), m(clip), atol=1e-5)


def test_lbptop_bigru_sums_directions():
    torch.manual_seed(0)
    m, _ = registry.build("lbptop-gru", 3, {"maps": 4, "input_size": 16})
    assert m.temporal.rnn.bidirectional
    m.eval()
    seq = torch.rand(2, 4, 256)
    with torch.no_grad():
        _, h = m.temporal.rnn(seq)
        expected = m.temporal.fc(h[0] + h[1])
        assert torch.allclose(m.temporal(seq), expected)


def test_multistream_concatenates_frozen_streams():
    torch.manual_seed(0)
    small = {"backbone_config": {"input_size": 16}, "frames": 3}
    streams = [{"arch": "cnn-gru", "config": small}, {"arch": "cnn-gru", "config": {**small, "input": "probs"}},
               {"arch": "lbptop-gru", "config": {"plane": "xt", "maps": 2, "input_size": 16}},
               {"arch": "lbptop-gru", "config": {"plane": "yt", "maps": 2, "input_size": 16}}]
    m, cfg = registry.build("multistream", 3, {"streams": streams})
    assert m.inputs == ("clip", "xt", "yt") == registry.inputs_for("multistream", cfg)
    assert m.feature_dim == 512
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]
    m.train()
    assert all(not s.training for s in m.streams)  # frozen streams stay in eval mode
    xs = tuple(torch.rand_like(x) for x in m.dummy_inputs(2))
    assert m(*xs).shape == (2, 3)
    assert m.features(*xs).shape == (2, 512)


def test_multistream_from_records_loads_stream_weights():
    from fercli.models.fusion import multistream_from_records

    torch.manual_seed(0)
    cfg = {"plane": "xt", "maps": 2, "input_size": 16}
    s, resolved = registry.build("lbptop-gru", 3, cfg)
    rec = artifacts.ModelRecord("lbptop-gru", resolved, registry.state_to_numpy(s), ["a", "b", "c"])
    fused, _ = multistream_from_records([rec])
    for k, v in s.state_dict().items():
        assert torch.equal(fused.streams[0].state_dict()[k], v)
    other = artifacts.ModelRecord("lbptop-gru", resolved, rec.state, ["x", "y", "z"])
    with pytest.raises(FercliError, match="class names"):
        multistream_from_records([rec, other])


@pytest.mark.parametrize("arch,config,fragment", [
    ("cnn-gru", {"input": "pixels"}, "input must be"),
    ("lbptop-gru", {"plane": "zt"}, "plane must be"),
    ("lb-mbnet", {"depth": 40}, "depth"),
    ("lb-mbnet", {"depth": 14, "expansion": [1, 2]}, "prunable blocks"),
    ("mobilenet-v2", {"widht_mult": 2}, "no option"),
    ("multistream", {"streams": []}, "streams"),
    ("cnn-gru", {"backbone": "lbptop-gru"}, "frame model"),
])
def test_bad_configs_are_one_sentence_errors(arch, config, fragment):
    with pytest.raises(FercliError, match=fragment):
        registry.build(arch, 3, config)


def test_se_exposes_gate_and_observers():
    torch.manual_seed(0)
    se = SqueezeExcite(6, 2, gate="hsigmoid")
    seen = []
    se.observers.append(seen.append)
    se.keep_gate = True
    x = torch.rand(3, 6, 5, 5)
    y = se(x)
    g = se.last_gate
    assert g.shape == (3, 6) and len(seen) == 1 and torch.equal(seen[0], g)
    assert torch.allclose(y, x * g[:, :, None, None])
    assert float(g.min()) >= 0 and float(g.max()) <= 1


def test_se_squeeze_follows_block_input_in_lb_mbnet():
    """EfficientNet convention: squeeze = se_ratio x the block's INPUT channels."""
    m, _ = registry.build("lb-mbnet", 10, {"depth": 14, "expansion": 6})
    for _, block in m.prunable_blocks():
        assert isinstance(block, InvertedResidual)
        assert block.mid_chs == 6 * block.in_chs
        assert block.se.squeeze == block.in_chs // 4
        assert block.se.channels == block.mid_chs  # one SE weight per LBC kernel
    strides = [b.stride for _, b in m.prunable_blocks()]
    assert strides == [2, 2, 2]


def test_mobilenet_residuals_and_v3_se():
    m, _ = registry.build("mobilenet-v3-large", 7, {})
    blocks = [b for b in m.body if isinstance(b, InvertedResidual)]
    assert len(blocks) == 15
    assert sum(b.se is not None for b in blocks) == 8
    assert sum(b.use_residual for b in blocks) == 10
    v2, _ = registry.build("mobilenet-v2", 7, {})
    assert sum(isinstance(b, InvertedResidual) for b in v2.body) == 17


def test_multistream_average_is_the_mean_of_the_streams_probabilities():
    """3.1 (4): 'the accuracy of averaged outputs' -- nothing trained, softmax of the output = mean of the streams' softmax."""
    torch.manual_seed(0)
    streams = [{"arch": "lbptop-gru", "config": {"plane": p, "maps": 2, "input_size": 16}} for p in ("xt", "yt")]
    m, cfg = registry.build("multistream", 3, {"streams": streams, "fusion": "average"})
    assert cfg["fusion"] == "average"
    assert not [n for n, p in m.named_parameters() if p.requires_grad]
    m.eval()
    xs = tuple(torch.rand_like(x) for x in m.dummy_inputs(4))
    with torch.no_grad():
        fused = torch.softmax(m(*xs), 1)
        each = [torch.softmax(s(x), 1) for s, x in zip(m.streams, xs)]
    assert torch.allclose(fused, (each[0] + each[1]) / 2, atol=1e-6)
    assert not torch.allclose(each[0], each[1])  # the streams differ, so the average is a real mix
    with pytest.raises(FercliError, match="fusion"):
        registry.build("multistream", 3, {"streams": streams, "fusion": "max"})
