"""Issue 20 item 1: every path any command writes passes one guard (fercli/cli/paths.py).

Two halves.  The typer app is walked: every command is wrapped by the guard,
every option that takes a path is declared as an output or an input, and the
table below has a case for every output option -- a new option that writes
fails here until it is declared and tested.  Then the table: each writing
option naming an input (or a FIFO, a folder, a file where a folder is
expected) exits 2 with one sentence and leaves every file byte for byte.
"""

from __future__ import annotations

import inspect
import os
import typing
from pathlib import Path

import pytest
import typer

import fercli.cli  # noqa: F401  (registers every command)
from fercli.cli import paths
from fercli.cli.app import app

#: Options that take text but never a path; a new str option must be added here or declared.
NOT_PATHS = {
    "--classes", "--frames", "--size", "--motion", "--transform", "--detector", "--faces", "--missing", "--shard",
    "--method", "--planes", "--grid", "--by", "--folds", "--task", "--frame", "--optimizer", "--schedule", "--device",
    "--input", "--plane", "--pool", "--rnn", "--config", "--device-memory", "--split", "--expansion", "--engine",
    "--format", "--clip", "--resize", "--lighting", "--illumination", "--partition", "--label", "--subject",
}
#: Options that name files the command reads (compared with the outputs by the guard).
INPUT_OPTIONS = {"--source", "--detector-model", "--detector-config", "--predictor", "--init-from", "--streams",
                 "--manifest", "synth --faces"}


def _commands(t: typer.Typer, prefix: str = ""):
    for c in t.registered_commands:
        yield prefix + (c.name or c.callback.__name__.replace("_", "-")), c.callback
    for g in t.registered_groups:
        yield from _commands(g.typer_instance, prefix + g.name + " ")


def _options(func):
    hints = typing.get_type_hints(func)
    for name, param in inspect.signature(func).parameters.items():
        if isinstance(param.default, typer.models.OptionInfo):
            yield name, param.default, hints[name]


def _flag(info) -> str:
    return next((f for f in info.param_decls if f.startswith("--")), info.param_decls[0])


def _writing_options() -> set[str]:
    found = set()
    for command, callback in _commands(app):
        for _, info, _ in _options(callback.__wrapped__):
            if hasattr(info, paths.WRITES):
                found.add(f"{command} {_flag(info)}")
    return found


def test_every_command_runs_the_guard_first():
    for command, callback in _commands(app):
        assert getattr(callback, "__wrapped__", None) is not None, f"{command} is not wrapped by fercli.cli.paths.guarded"


def test_every_path_option_is_declared_an_output_or_an_input():
    textual = (str, typing.Optional[str], typing.List[str])
    for command, callback in _commands(app):
        for _, info, hint in _options(callback.__wrapped__):
            if hint not in textual or hasattr(info, paths.WRITES):
                continue
            flag = _flag(info)
            if hasattr(info, paths.READS):
                assert flag in INPUT_OPTIONS or f"{command} {flag}" in INPUT_OPTIONS, f"{command} {flag}: a new input option, list it"
                continue
            assert flag in NOT_PATHS, (f"{command} {flag} takes text: if it names a file the command writes, declare it with "
                                       "output_option; if a file it reads, input_option; otherwise list it in NOT_PATHS")
            assert "write" not in (info.help or "").lower(), f"{command} {flag} says it writes but is not an output_option"


# --------------------------------------------------------------------------- the table

def _files(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"an input the user cares about: " + name.encode() + b"\n")


#: (id, files to create, args, a fragment of the one sentence).  Outputs are inputs here, so
#: ``check_refusal`` sees every file as an input that must stay byte for byte.
INPUT = "also an input"
CASES = [
    ("table -o", ["a.h5"], ["table", "a.h5", "-o", "a.h5"], INPUT),
    ("show -o", ["a.png"], ["show", "a.png", "-o", "a.png"], INPUT),
    ("synth -o", ["s.h5"], ["synth", "-o", "s.h5", "--video", "s.h5"], "same output file"),
    ("synth --video", ["faces.h5"], ["synth", "-o", "s.h5", "--video", "/dev/null"], "not a regular file"),
    ("align -o", ["a.h5"], ["align", "a.h5", "-o", "a.h5"], INPUT),
    ("resample -o", ["a.h5"], ["resample", "a.h5", "--frames", "4", "-o", "a.h5"], INPUT),
    ("lbptop -o", ["a.h5"], ["lbptop", "a.h5", "-o", "a.h5"], INPUT),
    ("split -o", ["a.h5"], ["split", "a.h5", "-o", "a.h5"], INPUT),
    ("merge -o", ["a.h5", "b.h5"], ["merge", "a.h5", "b.h5", "-o", "b.h5"], INPUT),
    ("train -o", ["d.h5", "i.h5"], ["train", "plain-cnn", "d.h5", "--init-from", "i.h5", "-o", "i.h5"], INPUT),
    ("train -o streams", ["d.h5", "s1.h5", "s2.h5"], ["train", "multistream", "d.h5", "--streams", "s1.h5,s2.h5", "-o", "s2.h5"], INPUT),
    ("train --tensorboard", ["d.h5", "runs"], ["train", "plain-cnn", "d.h5", "--tensorboard", "runs", "-o", "m.h5"], "not a folder"),
    ("evaluate -o", ["m.h5", "d.h5"], ["evaluate", "m.h5", "d.h5", "-o", "d.h5"], INPUT),
    ("evaluate --figure", ["m.h5", "d.pdf"], ["evaluate", "m.h5", "d.pdf", "--figure", "d.pdf"], INPUT),
    ("evaluate --figure fifo", ["m.h5", "d.h5"], ["evaluate", "m.h5", "d.h5", "--figure", "fifo.png"], "fifo"),
    ("prune -o", ["m.h5", "d.h5"], ["prune", "m.h5", "d.h5", "--expansion", "6", "-o", "m.h5"], INPUT),
    ("prune --plot", ["m.h5", "d.svg"], ["prune", "m.h5", "d.svg", "--expansion", "6", "--plot", "d.svg", "-o", "p.h5"], INPUT),
    ("rebuild -o", ["p.h5"], ["rebuild", "p.h5", "-o", "p.h5"], INPUT),
    ("live --record", ["m.h5", "v.mp4"], ["live", "m.h5", "--source", "v.mp4", "--headless", "--record", "v.mp4"], INPUT),
    ("live --csv", ["m.h5", "v.mp4"], ["live", "m.h5", "--source", "v.mp4", "--headless", "--csv", "m.h5"], INPUT),
    ("export --onnx", ["m.onnx"], ["export", "m.onnx", "--onnx", "m.onnx"], INPUT),
    ("export --onnx --split", ["g-gru.onnx"], ["export", "g-gru.onnx", "--onnx", "g.onnx", "--split"], INPUT),
    ("ingest video -o", ["v.mp4"], ["ingest", "video", "v.mp4", "-o", "v.mp4"], INPUT),
    ("ingest images -o", ["m.csv"], ["ingest", "images", ".", "--manifest", "m.csv", "-o", "m.csv"], INPUT),
    ("ingest fer2013 -o", ["f.csv"], ["ingest", "fer2013", "f.csv", "-o", "f.csv"], INPUT),
    ("table -o folder", ["a.h5"], ["table", "a.h5", "-o", "sub"], "folder"),
    ("show -o fifo", ["a.h5"], ["show", "a.h5", "-o", "fifo.png"], "fifo"),
]
#: The writing options the table covers (its first column, with the variants folded).
COVERED = {"table --output", "show --output", "synth --output", "synth --video", "align --output", "resample --output",
           "lbptop --output", "split --output", "merge --output", "train --output", "train --tensorboard", "evaluate --output",
           "evaluate --figure", "prune --output", "prune --plot", "rebuild --output", "live --record", "live --csv",
           "export --onnx", "ingest video --output", "ingest images --output", "ingest fer2013 --output"}


def test_the_table_covers_every_writing_option():
    # ingest's importers of real datasets (ckplus, oulu, sfew, afew, cifar10) share -o with video and images (OutputOpt).
    missing = {o for o in _writing_options() - COVERED if not o.startswith(("ingest ckplus", "ingest oulu", "ingest sfew", "ingest afew", "ingest cifar10"))}
    assert not missing, f"writing options without a case in the table: {sorted(missing)}"


@pytest.mark.parametrize("name,files,args,expect", CASES, ids=[c[0] for c in CASES])
def test_an_output_that_may_not_be_written_is_refused_before_any_work(runner, tmp_path, name, files, args, expect):
    from fault_harness import check_refusal

    _files(tmp_path, *files)
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "fifo.png")
    check_refusal(runner, tmp_path, {"args": args, "output": None, "expect": [expect]}, keep_old=False)
