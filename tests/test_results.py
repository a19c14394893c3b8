"""Chapter tables name their rows from what the reports record (fercli.results, issue 11 item 5):
architecture, config and the model's history -- pruning steps, identity pre-training, the data it
trained and was tested on -- never from the caller's labels."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from fercli import results
from fercli.cli import app
from fercli.protocol.provenance import data_summary, model_summary

TINY = ["--depth", "14", "--config", "channels=[8,4,8,8,16,16]", "--size", "16", "--fold", "0", "--epochs", "1", "--batch-size", "8", "-q"]


@pytest.fixture
def cli():
    """The CLI in-process (one torch import for the whole chain); torch's global settings restored after."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()

    def run(*args: str) -> None:
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    yield run
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_pruned_chain_is_named_by_its_history(tmp_path, cli):
    data, big, pruning, rebuilt, re, small = (tmp_path / f"{n}.h5" for n in ("data", "big", "prune", "rebuilt", "re", "small"))
    cli("synth", "--subjects", "4", "--clips-per-class", "1", "--classes", "happy,sadness", "--size", "64x48", "--frames", "3:3",
        "--color", "--seed", "3", "-o", tmp_path / "raw.h5")
    cli("split", tmp_path / "raw.h5", "--folds", "2", "--by", "subject", "-o", data)
    cli("train", "lb-mbnet", data, "--expansion", "2", *TINY, "-o", big)
    cli("prune", big, data, "--expansion", "1", "-o", pruning)
    cli("rebuild", pruning, "-o", rebuilt)
    cli("train", "lb-mbnet", data, "--init-from", rebuilt, "--expansion", "1", *TINY, "-o", re)
    cli("train", "lb-mbnet", data, "--expansion", "1", "--config", "depthwise=learned", *TINY, "-o", small)
    for model in (big, re, small):
        cli("evaluate", model, data, "--no-latency", "-o", tmp_path / f"report-{model.stem}.h5")

    rows = {m: results.read_result(str(tmp_path / f"report-{m}.h5")) for m in ("big", "re", "small")}
    assert rows["big"].name == "LB-MBNet-14-r2 (channels 8-4-8-8-16-16)"
    assert rows["re"].name == "Re-LB-MBNet-14-r1, pruned r2 → r1 (channels 8-4-8-8-16-16)"
    assert rows["small"].name == "LB-MBNet-14-r1 (channels 8-4-8-8-16-16), learned depthwise conv in place of LBC"
    assert rows["re"].data == "synth"
    # A caption goes in front of the derived name; it never replaces it.
    assert results.read_result(f"(x)={tmp_path / 'report-re.h5'}").name.startswith("(x) Re-LB-MBNet-14-r1, pruned r2 → r1")
    table = results.table([str(tmp_path / f"report-{m}.h5") for m in ("big", "re")], "Table 5.3", epochs=True)
    assert "### Table 5.3 — synth" in table
    assert "| Re-LB-MBNet-14-r1, pruned r2 → r1 (channels 8-4-8-8-16-16) |" in table and "| 1 + 1 |" in table
    # Relabelling by invocation is what the old table did; a row name now survives any caption or file name.
    report = json.loads(json.dumps(rows["re"].report))
    assert report["provenance"]["model"]["expansions"] == [2, 1]


def _lineage(stage, params, inputs=()):
    return {"stage": stage, "parameters": params, "inputs": list(inputs)}


def test_data_and_model_summaries_read_the_lineage():
    ck = [_lineage("ingest", {"dataset": "ckplus"}), _lineage("split", {"folds": 10}, [{"id": "a"}])]
    aligned = ck + [_lineage("align", {"align": True, "size": 96}, [{"id": "b"}])]
    unaligned = ck + [_lineage("align", {"align": False, "size": 96}, [{"id": "b"}])]
    seq = unaligned + [_lineage("resample", {"n": 5, "ckplus_split": True}, [{"id": "c"}])]
    assert data_summary(aligned)["faces"] == "aligned" and data_summary(unaligned)["faces"] == "unaligned"
    assert data_summary(seq) == {"datasets": ["ckplus"], "faces": "unaligned", "ckplus_split": True, "frames": 5, "planes": None, "folds": 10}

    identity = _lineage("train", {"arch": "mobilenet-v3", "options": {"task": "identity", "config": {}}, "epochs": 3},
                        [{"kind": "clips", "made_by": {"datasets": ["synth"], "faces": "aligned"}}])
    both = _lineage("train", {"arch": "mobilenet-v3", "options": {"task": "expression", "config": {}}, "epochs": 30},
                    [{"kind": "clips", "made_by": data_summary(aligned)}, {"kind": "clips", "made_by": data_summary(unaligned)},
                     {"kind": "model", "id": "identity"}])
    summary = model_summary([*aligned, identity, both])
    assert summary["identity_pretrained"] and summary["epochs"] == [3, 30]
    assert [t["faces"] for t in summary["trained_on"]] == ["aligned", "unaligned"]
    report = {"arch": "mobilenet-v3", "config": {"variant": "v3-large"},
              "provenance": {"model": summary, "data": data_summary(unaligned)}}
    assert results.model_name(report) == ("MobileNetV3-Large, identity pre-trained, trained on aligned + unaligned faces, "
                                          "tested on unaligned faces")
    # Cross-database training (4.3.2), from a model written before train recorded made_by: the origins say it.
    cross = _lineage("train", {"arch": "mobilenet-v2", "options": {"config": {}}, "epochs": 30},
                     [{"kind": "clips", "origins": ["ingest:ckplus"]}, {"kind": "clips", "origins": ["ingest:fer2013"]}])
    report = {"arch": "mobilenet-v2", "config": {"variant": "v2"}, "provenance": {"model": model_summary([cross]), "data": {"datasets": ["fer2013"]}}}
    assert results.model_name(report) == "MobileNetV2, cross databases (CK+ + FER2013)"
    assert results.Result(report, "r.h5").data == "FER2013"


def test_by_data_table_puts_data_sets_side_by_side():
    def report(data, acc, folds=1, faces=None):
        return {"arch": "cnn-gru", "config": {"backbone": "mobilenet-v3-small", "backbone_config": {"variant": "v3-small"},
                                              "input": "probs", "rnn": "gru", "frames": 5},
                "accuracy_mean": acc, "accuracy_std": 0.01, "folds": [{}] * folds,
                "provenance": {"model": {"trained_on": [{"datasets": [data], "faces": "aligned"}]},
                               "data": {"datasets": [data], "faces": faces or "aligned"}}}

    rows = [results.Result(report("ckplus", 0.98, 10), "a"), results.Result(report("afew", 0.487), "b"),
            results.Result(report("ckplus", 0.9, 10, "unaligned"), "c")]
    table = results.by_data_table(rows, "Table 4.3")
    lines = table.splitlines()
    assert lines[2] == "| Accuracy (%) | CK+ | AFEW |"
    assert "| MobileNetV3-Small + GRU with PD sequence (5 frames) | 98.0 ± 1.0 | 48.7 |" in lines
    assert "| MobileNetV3-Small + GRU with PD sequence (5 frames), tested on unaligned faces | 90.0 ± 1.0 |  |" in lines
    assert lines[-1] == "Folds per column: CK+ 10; AFEW 1."
    with pytest.raises(Exception, match="two reports"):
        results.by_data_table(rows + [rows[0]], "t")
