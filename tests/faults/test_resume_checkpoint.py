"""Issue 20 items 2 and 3: a damaged `train --resume` checkpoint is one sentence, exit 2, and stays as it was.

fercli/train/checkpoint.py checks the progress record and every optimizer
state array and group against the model and optimizer before any is applied;
before it, a progress record that is a string was an AttributeError and a
momentum buffer of another shape a RuntimeError from inside the first step.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from fault_harness import valid_clips

TRAIN = ["train", "plain-cnn", "c.h5", "--config", "width=0.25", "--config", "input_size=32", "--batch-size", "2", "--quiet"]


def _extra(change):
    def fn(f: h5py.File) -> None:
        extra = json.loads(f.attrs["extra"])
        change(extra)
        f.attrs["extra"] = json.dumps(extra)
    return fn


def _array(name: str, make):
    def fn(f: h5py.File) -> None:
        old = f[f"optimizer/{name}"][()]
        del f[f"optimizer/{name}"]
        f.create_dataset(f"optimizer/{name}", data=make(old))
    return fn


def _set(key, value):
    def change(extra):
        extra[key] = value
    return change


def _group(key, value):
    def change(extra):
        extra["optimizer_groups"][0][key] = value
    return change


def _progress(key, value):
    def change(extra):
        extra["progress"][key] = value
    return change


def _nan(a):
    a = np.array(a, dtype=np.float32)
    a.flat[0] = np.nan
    return a


DAMAGES = {
    "progress is a string": (_extra(_set("progress", "abc")), "not an object"),
    "progress is a list": (_extra(_set("progress", [1, 2])), "not an object"),
    "progress epoch is text": (_extra(_progress("epoch", "x")), "'epoch' must be a count"),
    "progress epoch is negative": (_extra(_progress("epoch", -3)), "'epoch' must be a count"),
    "progress complete is a string": (_extra(_progress("complete", "yes")), "'complete' must be true or false"),
    "finished folds are a string": (_extra(_set("folds", "abc")), "finished folds"),
    "optimizer moment of another shape": (_array("0.exp_avg", lambda a: np.zeros(3, np.float32)), "has shape [3]"),
    "optimizer moment of a bigger shape": (_array("1.exp_avg_sq", lambda a: np.zeros((*a.shape, 2), np.float32)), "does not fit"),
    "optimizer step is a vector": (_array("2.step", lambda a: np.zeros(5, np.float32)), "has shape [5]"),
    "optimizer moment is integer": (_array("0.exp_avg", lambda a: np.zeros(a.shape, np.int32)), "not floating point"),
    "optimizer moment is nan": (_array("0.exp_avg_sq", _nan), "nan or infinite"),
    "optimizer state of a parameter that does not exist": (_array("0.exp_avg", lambda a: a), None),
    "optimizer lr is a string": (_extra(_group("lr", "abc")), "setting 'lr'"),
    "optimizer betas are one number": (_extra(_group("betas", 0.9)), "setting 'betas'"),
    "optimizer groups are an object": (_extra(_set("optimizer_groups", {"lr": 1})), "optimizer groups"),
    "optimizer groups list other parameters": (_extra(_group("params", [0, 1])), "other parameters"),
}


def _unknown_parameter(f: h5py.File) -> None:
    f.create_dataset("optimizer/999.exp_avg", data=np.zeros(3, np.float32))


DAMAGES["optimizer state of a parameter that does not exist"] = (_unknown_parameter, "is not one this Adam")


@pytest.fixture(scope="module")
def checkpoint(runner, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    valid_clips(folder / "c.h5", size=(32, 32))
    proc = runner.run(*TRAIN, "--epochs", "2", "-o", "ck.h5", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_refused_and_kept(runner, checkpoint, tmp_path, damage):
    fn, expect = DAMAGES[damage]
    shutil.copy(checkpoint / "c.h5", tmp_path / "c.h5")
    shutil.copy(checkpoint / "ck.h5", tmp_path / "ck.h5")
    with h5py.File(tmp_path / "ck.h5", "r+") as f:
        fn(f)
    before = (tmp_path / "ck.h5").read_bytes()
    proc = runner.run(*TRAIN, "--epochs", "4", "--resume", "-o", "ck.h5", cwd=tmp_path)
    err = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("fercli: "), err
    assert "internal error" not in err and expect in err, err
    assert (tmp_path / "ck.h5").read_bytes() == before


def test_an_intact_checkpoint_still_resumes(runner, checkpoint, tmp_path):
    shutil.copy(checkpoint / "c.h5", tmp_path / "c.h5")
    shutil.copy(checkpoint / "ck.h5", tmp_path / "ck.h5")
    proc = runner.run(*TRAIN, "--epochs", "3", "--resume", "-o", "ck.h5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "ck.h5") as f:
        assert json.loads(f.attrs["extra"])["progress"]["epoch"] == 3
