"""SE-weight pruning and rebuild (thesis 5.2.3, 5.3.2): statistics, kept kernels, exact rebuild equivalence, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_user_error, fercli
from fercli import artifacts
from fercli.errors import FercliError
from fercli.models import registry
from fercli import prune as P
from fercli import rebuild as R

torch.set_num_threads(1)
TINY = {"depth": 14, "expansion": 4, "channels": [8, 4, 8, 8, 16, 16], "input_size": 16, "in_channels": 1}


def _randomise_bn(model, seed=0):
    """Untrained BN is nearly the identity; give it real statistics so equivalence means something."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)


def _record(seed=0, **over):
    torch.manual_seed(seed)
    model, cfg = registry.build("lb-mbnet", 3, {**TINY, **over})
    _randomise_bn(model, seed)
    return artifacts.ModelRecord("lb-mbnet", cfg, registry.state_to_numpy(model), ["a", "b", "c"]), model


def test_se_statistics_match_the_gates():
    rec, model = _record()
    x = torch.rand(10, 1, 16, 16)
    stats, seen = P.se_statistics(model, [[x[:6]], [x[6:]]], total=10, bins=10)
    assert seen == 10 and len(stats) == 3
    for (_, b), s in zip(model.prunable_blocks(), stats):
        b.se.keep_gate = True
    model.eval()
    with torch.no_grad():
        model(x)
    for (_, b), s in zip(model.prunable_blocks(), stats):
        g = b.se.last_gate.double().numpy()
        assert s.mean.shape == (b.mid_chs,) == (4 * b.in_chs,)
        np.testing.assert_allclose(s.mean, g.mean(0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(s.std, g.std(0), rtol=1e-4, atol=1e-7)
        assert s.hist.sum() == g.size
    assert all(not b.se.observers for _, b in model.prunable_blocks())  # hooks removed


def test_select_kept_takes_the_largest_means():
    s = P.BlockStats("blocks.0", 2, 8, np.array([.1, .9, .3, .8, .2, .7, .0, .5]), np.zeros(8), np.zeros(5))
    assert P.select_kept([s], 2).__getitem__(0).tolist() == [1, 3, 5, 7]
    assert P.select_kept([s], 1.5)[0].tolist() == [1, 3, 5]
    with pytest.raises(FercliError, match="only 8"):
        P.select_kept([s], 5)


def test_schedule_parsing():
    assert P.parse_schedule("40,20,10,6") == [40, 20, 10, 6]
    assert P.parse_schedule("2.5") == [2.5]
    for bad in ("6,10", "0", "x", ""):
        with pytest.raises(FercliError):
            P.parse_schedule(bad)


@pytest.mark.parametrize("ratio,depthwise", [(1, "lbc"), (2.5, "lbc"), (2.5, "learned")])
def test_rebuild_equals_source_with_dropped_gates_zeroed(ratio, depthwise):
    rec, model = _record(seed=3, depthwise=depthwise)
    stats, seen = P.se_statistics(model, [[torch.rand(8, 1, 16, 16)]], total=8)
    pr = P.Pruning(rec, [ratio], stats, [P.select_kept(stats, ratio)], seen)
    small_rec = R.rebuild(pr, 0)
    small = registry.from_record(small_rec).eval()
    # A freshly built LB-MBNet-r' has exactly the rebuilt shapes.
    fresh, _ = registry.build("lb-mbnet", 3, {**TINY, "expansion": ratio, "depthwise": depthwise})
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in small.state_dict().items()}
    assert [b.mid_chs for _, b in small.prunable_blocks()] == [len(k) for k in pr.kept[0]]

    big = registry.from_record(rec).eval()
    x = torch.rand(5, 1, 16, 16)
    with torch.no_grad():
        unmasked = big(x)
        R.mask_dropped(big, pr.kept[0])
        masked = big(x)
        assert torch.allclose(small(x), masked, atol=1e-5), float((small(x) - masked).abs().max())
        assert float((unmasked - masked).abs().max()) > 1e-3  # pruning did change the function
    # The kept LBC kernels are the selected source kernels, not freshly drawn ones.
    for (_, b_small), (_, b_big), idx in zip(small.prunable_blocks(), big.prunable_blocks(), pr.kept[0]):
        assert torch.equal(b_small.dw.weight, b_big.dw.weight[torch.as_tensor(idx)])
    assert R.check_equivalence(pr, small_rec) < 1e-5


def test_pruning_artifact_round_trip(tmp_path):
    rec, model = _record()
    stats, seen = P.se_statistics(model, [[torch.rand(4, 1, 16, 16)]], total=4)
    pr = P.Pruning(rec, [3, 1], stats, [P.select_kept(stats, 3), P.select_kept(stats, 1)], seen, {"split": "train"})
    path = str(tmp_path / "p.h5")
    P.save_pruning(path, pr, [])
    back, _, _ = P.load_pruning(path, "test")
    assert back.schedule == [3, 1] and back.samples == 4 and back.data == {"split": "train"}
    for a, b in zip(pr.kept, back.kept):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(np.array_equal(s.mean, t.mean) for s, t in zip(pr.blocks, back.blocks))
    assert set(back.source.state) == set(rec.state)
    assert R.rebuild(back, 1).config["expansion"] == 1


def test_cli_prune_plot_rebuild_info(tmp_path, tiny_clips):
    rec, _ = _record()
    model_h5, data_h5, pr_h5, out_h5, png = (str(tmp_path / n) for n in ("m.h5", "d.h5", "p.h5", "r.h5", "se.png"))
    artifacts.save_model(model_h5, rec, [artifacts.lineage_entry("test", {}, [])])
    artifacts.save_clips(data_h5, tiny_clips, [])
    fercli("prune", model_h5, data_h5, "--expansion", "2,1", "--split", "all", "-o", pr_h5, "--plot", png, "--device", "cpu", check=True)
    import cv2

    img = cv2.imread(png)
    assert img is not None and img.shape[0] > 100 and img.std() > 5
    pr, _, lineage = P.load_pruning(pr_h5, "test")
    assert pr.samples == len(tiny_clips) and pr.schedule == [2, 1]
    assert [len(k) for k in pr.kept[1]] == [4, 8, 8]  # round(1 x c_in) per block
    assert lineage[-1]["stage"] == "prune"

    proc = fercli("rebuild", pr_h5, "-o", out_h5, "--step", "1", check=True)
    assert b"masked source" in proc.stderr
    info = json.loads(fercli("info", out_h5, "--json", check=True).stdout)
    fresh, _ = registry.build("lb-mbnet", 3, {**TINY, "expansion": 1})
    assert info["trainable_params"] == sum(p.numel() for p in fresh.parameters())
    assert info["config"]["expansion"] == 1
    assert info["fixed_params"] == 9 * (8 + 4 + 8 + 8)  # stack 0 (stem width) + kept
    loaded, _, _ = artifacts.load_model(out_h5, "test")
    assert loaded.extra["rebuilt"]["max_abs_logit_diff"] < 1e-5

    # Retraining the rebuilt model needs no repeated shape options: its config carries over.
    re_h5 = str(tmp_path / "re.h5")
    fercli("train", "lb-mbnet", data_h5, "--init-from", out_h5, "--epochs", "0", "-o", re_h5, check=True)
    retrained, _, _ = artifacts.load_model(re_h5, "test")
    assert retrained.config["expansion"] == loaded.config["expansion"]
    assert retrained.config["channels"] == loaded.config["channels"]
    for key, value in loaded.state.items():
        np.testing.assert_array_equal(retrained.state[key], value)

    assert_user_error(fercli("rebuild", data_h5, "-o", str(tmp_path / "x.h5")), "pruning")
    with pytest.raises(FercliError, match="--step"):
        R.rebuild(pr, 2)


def test_refuses_models_without_lbc_and_bad_ratios(tmp_path, tiny_clips):
    plain, cfg = registry.build("plain-cnn", 3, {"input_size": 16})
    plain_h5, lb_h5, data_h5 = (str(tmp_path / n) for n in ("plain.h5", "lb.h5", "d.h5"))
    artifacts.save_model(plain_h5, artifacts.ModelRecord("plain-cnn", cfg, registry.state_to_numpy(plain), ["a", "b", "c"]), [])
    artifacts.save_clips(data_h5, tiny_clips, [])
    out = str(tmp_path / "p.h5")
    assert_user_error(fercli("prune", plain_h5, data_h5, "--expansion", "1", "-o", out), "no LBC blocks")
    assert not (tmp_path / "p.h5").exists()
    # An impossible ratio is refused before the data pass.
    rec, model = _record()
    with pytest.raises(FercliError, match="cannot prune"):
        P.prune(rec, model, [], 0, [8])
