"""Depthwise LBC (thesis 5.2.1): sparse ternary fixed kernels, seeded, saved as buffers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fercli import artifacts
from fercli.models import registry
from fercli.models.lbc import DepthwiseLBC, lbc_kernels

torch.set_num_threads(1)
TINY = {"depth": 14, "expansion": 2, "channels": [8, 8, 8, 16, 16, 32], "input_size": 16}


@pytest.mark.parametrize("sparsity,nonzero", [(0.5, 4), (0.1, 1), (1.0, 9), (0.34, 3)])
def test_exact_nonzero_count_and_ternary_values(sparsity, nonzero):
    k = lbc_kernels(500, sparsity, seed=1, index=3)
    assert k.shape == (500, 1, 3, 3)
    assert set(np.unique(k)) <= {-1.0, 0.0, 1.0}
    assert np.all((k != 0).reshape(500, -1).sum(1) == nonzero)
    if nonzero < 9:  # positions vary between kernels (drawn, not fixed)
        assert len({tuple(np.flatnonzero(row)) for row in (k != 0).reshape(500, -1)}) >= min(9, 10)
    plus = (k == 1).sum() / (k != 0).sum()
    assert 0.45 < plus < 0.55  # +1 and -1 equally likely


def test_seed_and_index_determine_kernels():
    a = lbc_kernels(64, 0.5, seed=7, index=2)
    assert np.array_equal(a, lbc_kernels(64, 0.5, seed=7, index=2))
    assert not np.array_equal(a, lbc_kernels(64, 0.5, seed=7, index=3))
    assert not np.array_equal(a, lbc_kernels(64, 0.5, seed=8, index=2))


def test_kernels_are_buffers_and_survive_an_optimiser_step():
    torch.manual_seed(0)
    model, _ = registry.build("lb-mbnet", 4, TINY)
    lbcs = [m for m in model.modules() if isinstance(m, DepthwiseLBC)]
    assert len(lbcs) == 4  # stack 0 + 3 prunable blocks
    assert all(not any(True for _ in m.parameters()) for m in lbcs)
    assert all(f"{n}.weight" in model.state_dict() for n, m in model.named_modules() if isinstance(m, DepthwiseLBC))
    before = [m.weight.clone() for m in lbcs]
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    x = torch.rand(4, 3, 16, 16)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
        opt.step()
    assert all(torch.equal(b, m.weight) for b, m in zip(before, lbcs))
    assert not torch.equal(model.stem[0].weight, registry.build("lb-mbnet", 4, TINY)[0].stem[0].weight)


def test_depthwise_lbc_is_a_fixed_depthwise_conv():
    layer = DepthwiseLBC(5, stride=2, seed=3, index=1)
    ref = torch.nn.Conv2d(5, 5, 3, 2, 1, groups=5, bias=False)
    ref.weight.data.copy_(layer.weight)
    x = torch.rand(2, 5, 9, 9)
    assert torch.allclose(layer(x), ref(x))


def test_kernels_identical_after_save_and_load(tmp_path):
    model, cfg = registry.build("lb-mbnet", 4, {**TINY, "lbc_seed": 11})
    # Overwrite one layer's kernels: the artifact must carry the saved values,
    # not just regenerate from the seed (pruned models hold *selected* kernels).
    model.blocks[0].dw.weight.mul_(-1)
    rec = artifacts.ModelRecord("lb-mbnet", cfg, registry.state_to_numpy(model), list("abcd"))
    path = str(tmp_path / "lb.h5")
    artifacts.save_model(path, rec, [])
    loaded, _, _ = artifacts.load_model(path, "test")
    again = registry.from_record(loaded)
    for a, b in zip(model.modules(), again.modules()):
        if isinstance(a, DepthwiseLBC):
            assert torch.equal(a.weight, b.weight)
    fresh, _ = registry.build("lb-mbnet", 4, cfg)  # same seed -> same kernels except the flipped layer
    assert torch.equal(fresh.blocks[1].dw.weight, again.blocks[1].dw.weight)
    assert torch.equal(fresh.blocks[0].dw.weight, -again.blocks[0].dw.weight)
