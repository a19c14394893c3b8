"""Each architecture declares its config rules, its derived keys and its training recipe
itself (issue 24): next to ``__init__`` and on its registry entry, not in tables keyed by
key names or architecture strings elsewhere."""

from __future__ import annotations

import ast
from typing import Annotated

import pytest

from conftest import ROOT
from fercli.errors import FercliError
from fercli.models import registry
from fercli.models.base import DataLayout
from fercli.models.checks import Int, Rule


def test_checks_is_a_leaf_module():
    tree = ast.parse((ROOT / "fercli" / "models" / "checks.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + \
               [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.startswith("fercli.") and m != "fercli.errors"], imported


def test_every_config_key_has_its_architectures_rule():
    for name in registry.available():
        spec = registry.get_spec(name)
        assert set(spec.rules) == set(spec.defaults), name
        assert all(isinstance(r, Rule) for r in spec.rules.values())


def test_a_key_without_a_rule_cannot_be_registered():
    from fercli.models.blocks import FrameClassifier

    class Loose(FrameClassifier):
        def __init__(self, num_classes: int, in_channels: Annotated[int, Int(1, 4)] = 1, size=8):
            super().__init__()

    with pytest.raises(TypeError, match="'size' needs an Annotated checks.Rule"):
        registry.register("loose-test-model", Loose)
    assert "loose-test-model" not in registry.available()


def test_rules_are_per_architecture():
    # The global table let lbptop-gru's rnn take 'lstm' until its constructor refused it.
    with pytest.raises(FercliError, match=r"^model 'lbptop-gru': rnn must be one of gru, max \(got 'lstm'\)$"):
        registry.build("lbptop-gru", 3, {"rnn": "lstm", "maps": 3, "input_size": 24})
    with pytest.raises(FercliError, match=r"^model 'multistream': fusion must be one of concat, average \(got 'sum'\)$"):
        registry.check_config("multistream", {"fusion": "sum"})
    with pytest.raises(FercliError, match="no option"):  # 'pool' was a rule of no architecture
        registry.build("cnn-gru", 3, {"pool": "max"})
    with pytest.raises(FercliError, match=r"^model 'plain-cnn': width must be at most 8 \(got 1000\)$"):  # nested: a backbone's own rule
        registry.check_config("cnn-gru", {"backbone_config": {"width": 1000}})
    with pytest.raises(FercliError, match=r"^model 'multistream' stream 2 must be"):
        registry.check_config("multistream", {"streams": [{"arch": "plain-cnn"}, {"config": {}}]})


def test_each_model_derives_its_data_keys():
    gray16 = DataLayout(channels=1, frame_size=16, clip_length=5, planes={"xt": (4, 46), "yt": (4, 62)})
    derive = lambda arch, cfg, **kw: registry.get_spec(arch).config_for_training(cfg, gray16, **kw)  # noqa: E731
    assert {k: derive("plain-cnn", {})[k] for k in ("in_channels", "input_size")} == {"in_channels": 1, "input_size": 16}
    assert derive("mobilenet-v3", {"input_size": 32})["input_size"] == 32  # given keys win
    gru = derive("cnn-gru", {"backbone": "lb-mbnet", "backbone_config": {"in_channels": 3}})
    assert gru["frames"] == 5 and gru["backbone_config"] == {"in_channels": 3, "input_size": 16}
    assert {k: derive("lbptop-gru", {"plane": "yt"})[k] for k in ("maps", "input_size")} == {"maps": 4, "input_size": 62}
    assert derive("lbptop-gru", {"plane": "xy"})["maps"] == 8  # no such maps in the data: the default
    # sources: a frame CNN given to --init-from is the backbone; stream models are the streams
    gru = derive("cnn-gru", {}, init=("mobilenet-v3-small", {"width_mult": 0.5}))
    assert gru["backbone"] == "mobilenet-v3-small" and gru["backbone_config"] == {"width_mult": 0.5, "in_channels": 1, "input_size": 16}
    fused = derive("multistream", {}, streams=[("plain-cnn", {"width": 0.5})])
    assert fused["streams"] == [{"arch": "plain-cnn", "config": {"width": 0.5}}]
    with pytest.raises(FercliError, match="^--streams is for the fusion architecture; 'plain-cnn' takes no streams$"):
        derive("plain-cnn", {}, streams=[("plain-cnn", {})])
    lb = derive("lb-mbnet", {}, init=("lb-mbnet", {"depth": 14, "expansion": [1, 2, 3], "input_size": 32}))
    assert lb["depth"] == 14 and lb["expansion"] == [1, 2, 3] and lb["input_size"] == 16  # same arch: shape carries over, size from data


def test_recipes_ride_on_the_registry_entries():
    chapter5 = registry.get_spec("lb-mbnet").recipe
    assert (chapter5.optimizer, chapter5.lr, chapter5.epochs, chapter5.batch_size, chapter5.rotation, chapter5.shift) == ("sgd", 0.1, 200, 128, 0.0, 4)
    assert chapter5.schedule_for(200) == "step:80,140,180" and chapter5.schedule_for(10) == "step:4,7,9"
    for name in set(registry.available()) - {"lb-mbnet"}:
        recipe = registry.get_spec(name).recipe
        assert (recipe.optimizer, recipe.lr, recipe.epochs, recipe.batch_size, recipe.rotation, recipe.flip, recipe.shift) == \
               ("adam", 1e-3, 30, 32, 10.0, True, 0), name
