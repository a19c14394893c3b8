"""What a new user meets first (issue 14): help texts with examples, completion, --debug,
videos given to align, ingest --label/--subject, train --tensorboard, frozen counts."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import assert_user_error, fercli
from train_helpers import fit, tiny_clips, train_to, write

from fercli.cli import COMMAND_MODULES, app

INGEST = ["ckplus", "oulu", "fer2013", "sfew", "afew", "cifar10", "video", "images"]


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_every_stage_help_has_a_worked_example():
    stages = [[m] for m in COMMAND_MODULES if m != "ingest"] + [["ingest", d] for d in INGEST]
    for stage in stages:
        text = _help(*stage)
        assert "Example" in text and f"fercli {' '.join(stage)} " in text, stage


def test_root_help_lists_debug_and_completion_and_completion_answers():
    text = _help()
    assert "--debug" in text and "--install-completion" in text and "--show-completion" in text
    env = {"_FERCLI_COMPLETE": "complete_bash", "COMP_WORDS": "fercli ta", "COMP_CWORD": "1"}
    proc = fercli(env=env)
    assert proc.returncode == 0 and "table" in proc.stdout.decode().split()


def test_split_default_and_train_architectures_come_through():
    from fercli.models import registry

    assert "(default 10)" in _help("split") and "folds ." not in _help("split")
    text = _help("train")
    assert all(name in text for name in registry.available()) and "mobilenet-v3-small" in text


def test_train_help_shows_every_recipes_defaults_once():
    for _ in range(2):  # the help is generated from the registry each time, not appended to
        text = " ".join(_help("train").replace("│", " ").split())  # cells wrapped inside the table's borders
        assert "Epochs (0 writes the initialised model). Default: 30; lb-mbnet 200 (5.3.1)." in text
        assert "Learning rate. Default: 0.001; lb-mbnet 0.1 (5.3.1)." in text and text.count("Default: 30;") == 1
        assert "x0.1 at 40/70/90 % of the epochs" in text and "Random horizontal flips. Default: on." in text


def test_align_on_a_video_says_ingest_first(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    assert_user_error(fercli("align", video, "-o", tmp_path / "a.h5"), f"fercli ingest video {video}")
    assert not (tmp_path / "a.h5").exists()


def test_ingest_video_label_and_subject(tmp_path):
    from fercli import artifacts
    from fercli.synth import render_video, synthesize

    clips = synthesize(subjects=1, classes=["happy"], frames=(3, 3), size=(64, 48))
    folder = tmp_path / "an"  # 'an' is also CK+'s spelling of anger: the folder name must not win
    folder.mkdir()
    render_video(clips, str(folder / "talk.mp4"), fps=12.0)
    fercli("ingest", "video", folder / "talk.mp4", "--label", "Happiness", "--subject", "s07", "-o", tmp_path / "t.h5", check=True)
    out, _, _ = artifacts.load_clips(str(tmp_path / "t.h5"), "test")
    assert out.class_names == ["happy"] and out.labels.tolist() == [0] and out.subjects.tolist() == ["s07"]
    assert out.fps.tolist() == [12.0] and out.source_frame.tolist() == [0, 1, 2]
    fercli("ingest", "video", folder / "talk.mp4", "-o", tmp_path / "u.h5", check=True)
    assert artifacts.load_clips(str(tmp_path / "u.h5"), "test")[0].class_names == ["anger"]
    (tmp_path / "m.csv").write_text("path,label\nan/talk.mp4,happy\n")
    assert_user_error(fercli("ingest", "video", folder, "--manifest", tmp_path / "m.csv", "--label", "happy", "-o", tmp_path / "x.h5"), "--label")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from fercli import artifacts

    d = tmp_path_factory.mktemp("help")
    path = write(d / "ck.h5", tiny_clips())
    clips, ident, _ = artifacts.load_clips(path, "test")
    return d, path, [(clips, ident)]


def test_train_tensorboard_writes_events_or_says_how_to_get_them(data):
    d, path, _ = data
    args = ["train", "plain-cnn", path, "--fold", "0", "--epochs", "2", "--size", "8", "--config", "width=0.125",
            "--batch-size", "8", "--tensorboard", d / "runs", "-o", d / "tb.h5"]
    proc = fercli(*args)
    if importlib.util.find_spec("tensorboard") is None:
        assert_user_error(proc, "pip install tensorboard")
        assert not (d / "tb.h5").exists()
        return
    assert proc.returncode == 0, proc.stderr.decode()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = os.listdir(d / "runs")
    assert runs == ["fold-0"]
    events = EventAccumulator(str(d / "runs" / runs[0]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "accuracy/train", "accuracy/test", "loss/test", "lr"} <= tags
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2]


def test_frozen_init_part_is_counted_as_frozen(data):
    from fercli.models.summary import model_summary
    from fercli.train import RunOptions, load_model_file

    d, _, datasets = data
    train_to(d / "cnn.h5", RunOptions("plain-cnn", config={"dropout": 0, "width": 0.125}, size=(8, 8), fold=1, fit=fit(0)), datasets)
    cnn = load_model_file(str(d / "cnn.h5"), "test")
    gru = train_to(d / "gru.h5", RunOptions("cnn-gru", config={"input": "probs", "dropout": 0}, size=(8, 8), fold=1, freeze=True,
                                            fit=fit(0)), datasets, init=cnn)
    backbone = model_summary(cnn.record)
    counts = model_summary(gru)
    assert counts["frozen_params"] == backbone["trainable_params"] > 0
    assert counts["trainable_params"] > 0  # the GRU head trains
    unfrozen = model_summary(type(gru)(gru.arch, gru.config, gru.state, gru.class_names, gru.history,
                                       {**gru.extra, "init": {**gru.extra["init"], "frozen": False}}))
    assert unfrozen["frozen_params"] == 0
    assert unfrozen["trainable_params"] == counts["trainable_params"] + counts["frozen_params"]
    assert np.isfinite(counts["flops"])


def test_models_doc_lists_every_config_key():
    """docs/models.md's table names every default config key of every architecture."""
    from conftest import ROOT
    from fercli.models import registry

    rows = {}
    last = ""
    for line in (ROOT / "docs" / "models.md").read_text().splitlines():
        if line.startswith("| `"):
            cells = line.split(" | ")
            text = last if "as above" in cells[-1] else line
            for name in cells[0].replace("|", "").replace("(= `-large`)", "").split(","):
                rows[name.strip().strip("`")] = text
            last = text
    for name in registry.available():
        missing = [k for k in registry.get_spec(name).defaults if f"`{k}`" not in rows.get(name, "")]
        assert not missing, f"docs/models.md: {name} lacks {missing}"
