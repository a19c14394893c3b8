"""Parameter counts and FLOPs against the thesis's tables (4.4, 5.2, 5.3, 5.5).

The big LB-MBNets are built on the meta device: no memory for 93 M weights, and
FlopCounterMode still sees every op.
"""

from __future__ import annotations

import pytest
import torch

from fercli.models import registry
from fercli.models.summary import complexity, parameter_counts

torch.set_num_threads(1)


def _trainable(arch, k, cfg, meta=False):
    with torch.device("meta" if meta else "cpu"):
        m, _ = registry.build(arch, k, cfg)
    return m, parameter_counts(m)["trainable_params"]


@pytest.mark.parametrize("arch,cfg,millions", [
    ("mobilenet-v2", {}, 2.40),
    ("mobilenet-v3", {}, 3.12),
    ("cnn-gru", {"backbone": "mobilenet-v3", "input": "probs", "fc": 0, "frames": 5}, 3.17),
])
def test_table_4_4_within_1_percent(arch, cfg, millions):
    _, n = _trainable(arch, 7, cfg)
    assert abs(n / 1e6 / millions - 1) < 0.01, n


def test_mobilenet_v3_is_the_large_variant():
    _, large = _trainable("mobilenet-v3-large", 7, {})
    _, alias = _trainable("mobilenet-v3", 7, {})
    _, small = _trainable("mobilenet-v3-small", 7, {})
    assert alias == large and small < 0.4 * large


# (depth, r, trainable M, FLOPs 1e8) from Tables 5.2 / 5.3 / 5.5 (CIFAR-10: RGB, 10 classes, 32x32)
LB_ROWS = [(59, 6, 7.11, 4.57), (59, 80, 92.99, 59.9), (59, 3, 3.63, 2.33), (59, 10, 11.75, 7.57),
           (32, 6, 3.19, 2.16), (32, 80, 40.84, 27.7), (32, 3, 1.67, 1.12)]


@pytest.mark.parametrize("depth,r,millions,flops", LB_ROWS, ids=[f"{d}-r{r}" for d, r, _, _ in LB_ROWS])
def test_lb_mbnet_tables_5_2_5_3_5_5(depth, r, millions, flops):
    model, n = _trainable("lb-mbnet", 10, {"depth": depth, "expansion": r}, meta=True)
    assert abs(n / 1e6 / millions - 1) < 0.01, n
    c = complexity(model)
    assert abs(c["flops"] / 1e8 / flops - 1) < 0.03, c["flops"]
    assert c["input_shape"] == [[3, 32, 32]]
    # LBC kernels are fixed, counted apart: 9 values per LBC channel (stack 0 included).
    lbc_channels = model.stack0.mid_chs + sum(b.mid_chs for _, b in model.prunable_blocks())
    assert c["fixed_params"] == 9 * lbc_channels


@pytest.mark.parametrize("depth", [59, 32])
def test_learned_depthwise_makes_the_lbc_values_trainable(depth):
    """5.3.2's comparison: the same LB-MBNet with a learned 3x3 depthwise conv where every LBC is."""
    lbc, _ = registry.build("lb-mbnet", 10, {"depth": depth, "expansion": 6})
    conv, _ = registry.build("lb-mbnet", 10, {"depth": depth, "expansion": 6, "depthwise": "learned"})
    a, b = parameter_counts(lbc), parameter_counts(conv)
    assert a["fixed_params"] > 0 and b["fixed_params"] == 0
    assert b["trainable_params"] == a["trainable_params"] + a["fixed_params"]  # 7,242,038 for 59-r6
    assert all(blk.dw.weight.requires_grad for _, blk in conv.prunable_blocks())
    x = torch.rand(1, 3, 32, 32)
    assert complexity(lbc, [x])["flops"] == complexity(conv, [x])["flops"]


def test_fixed_params_exclude_bn_statistics():
    m, _ = registry.build("plain-cnn", 7, {})
    c = parameter_counts(m)
    assert c["fixed_params"] == 0 and c["bn_stats"] == 2 * (64 + 64 + 128 + 128 + 256 + 256)


def test_frozen_streams_are_not_trainable():
    small = {"backbone_config": {"input_size": 16}, "frames": 2}
    m, _ = registry.build("multistream", 3, {"streams": [{"arch": "cnn-gru", "config": small}]})
    c = parameter_counts(m)
    assert c["trainable_params"] == 128 * 3 + 3
    assert c["frozen_params"] > 1_000_000


def test_flops_scale_with_batch_and_input():
    m, _ = registry.build("plain-cnn", 7, {"input_size": 32})
    one = complexity(m)["flops"]
    assert complexity(m, (torch.zeros(4, 1, 32, 32),))["flops"] == one  # per sample
    assert complexity(m, (torch.zeros(1, 1, 64, 64),))["flops"] > 3.9 * one * 0.99


def test_cnn_gru_heads_of_chapters_3_and_4():
    """3.2.3: two FC 128 layers (dropout 0.7 each) after the GRU; 4.2.4.3: the GRU's 128
    states go straight to the softmax, no dropout between."""
    ch3, n3 = _trainable("cnn-gru", 7, {})
    _, n1 = _trainable("cnn-gru", 7, {"fc_layers": 1})
    assert n3 - n1 == 128 * 128 + 128 and n3 == 1_328_462
    assert sum(isinstance(m, torch.nn.Linear) for m in ch3.temporal.fc) == 2
    assert sum(isinstance(m, torch.nn.Dropout) for m in ch3.modules()) >= 3  # FC1 -> dropout -> FC2 -> dropout
    ch4, _ = registry.build("cnn-gru", 7, {"input": "probs", "fc": 0, "frames": 3, "backbone_config": {"input_size": 32}})
    ch4.train()
    f = torch.rand(4, 128)
    assert torch.equal(ch4.classify(f), ch4.classify(f)) and torch.equal(ch4.classify(f), ch4.classifier(f))
