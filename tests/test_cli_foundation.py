"""The foundation through the real CLI: help, pipes, info, one-line errors, atomic writes."""

from __future__ import annotations

import glob
import json
import os
import pty
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import ROOT, assert_user_error, fercli

SMALL = ["--subjects", "2", "--classes", "happy,fear", "--frames", "3:4", "--size", "96x72"]


def popen(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "fercli", *args], env=env, **kw)


@pytest.fixture(scope="module")
def small_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "small.h5"
    fercli("synth", *SMALL, "-o", str(path), check=True)
    return path


def test_help_lists_every_stage_with_a_line():
    import typer

    from fercli.cli import app

    proc = fercli("--help", check=True)
    out = proc.stdout.decode()
    commands = typer.main.get_command(app).commands
    assert {"synth", "info"} <= set(commands)
    for name, command in commands.items():
        line = next((ln for ln in out.splitlines() if f" {name} " in ln), None)
        assert line is not None, f"{name} missing from --help"
        assert len(line.split(name, 1)[1].strip(" │")) > 5, f"{name} has no description: {line!r}"


def test_synth_pipe_into_info_through_a_real_os_pipe():
    writer = popen("synth", *SMALL, "-o", "-", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader = popen("info", "-", "--json", stdin=writer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer.stdout.close()  # the reader owns the pipe now
    out, err = reader.communicate(timeout=300)
    assert writer.wait(timeout=300) == 0, writer.stderr.read().decode()
    writer.stderr.close()
    assert reader.returncode == 0, err.decode()
    info = json.loads(out)
    assert info["kind"] == "clips" and info["clips"] == 4 and info["subjects"] == 2
    assert info["class_counts"] == {"happy": 2, "fear": 2}


def test_info_json_fields(small_h5):
    info = json.loads(fercli("info", str(small_h5), "--json", check=True).stdout)
    assert info["kind"] == "clips" and info["schema"] >= 1
    assert info["clips"] == 4 and info["subjects"] == 2
    assert info["class_names"] == ["happy", "fear"]
    assert info["class_counts"] == {"happy": 2, "fear": 2}
    assert info["frame_shape"] == [72, 96]
    assert 3 <= info["clip_length"]["min"] <= info["clip_length"]["max"] <= 4
    assert info["datasets"]["landmarks"]["shape"][1:] == [68, 2]
    (entry,) = info["lineage"]
    assert entry["stage"] == "synth" and entry["command"].startswith("fercli synth")
    assert entry["parameters"]["classes"] == ["happy", "fear"] and entry["parameters"]["seed"] == 0
    # the table form works too and goes to stdout
    table = fercli("info", str(small_h5), check=True).stdout.decode()
    assert "lineage" in table and "happy" in table


def test_truncated_file(small_h5, tmp_path):
    data = small_h5.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 2])
    assert_user_error(fercli("info", str(bad)), "truncated.h5")
    assert_user_error(fercli("lbptop", str(bad), "-o", str(tmp_path / "x.h5")), "truncated.h5")
    assert not (tmp_path / "x.h5").exists()


def test_foreign_hdf5(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(10)
    assert_user_error(fercli("info", str(path)), "not a fercli artifact")


def test_not_hdf5_at_all(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("hello\n")
    assert_user_error(fercli("info", str(path)), "not a readable HDF5 file")


def test_wrong_kind(tmp_path):
    from fercli import artifacts

    model = tmp_path / "model.h5"
    record = artifacts.ModelRecord(arch="plain-cnn", config={}, state={"w": np.zeros(3, np.float32)}, class_names=["a", "b"])
    artifacts.save_model(str(model), record, [artifacts.lineage_entry("test", {}, [])])
    err = assert_user_error(fercli("lbptop", str(model), "-o", str(tmp_path / "out.h5")), "'model' artifact", "'clips'")
    assert "lbptop" in err
    assert not (tmp_path / "out.h5").exists()


def test_future_schema_version(small_h5, tmp_path):
    path = tmp_path / "future.h5"
    path.write_bytes(small_h5.read_bytes())
    with h5py.File(path, "r+") as f:
        f.attrs["fercli_schema"] = 99
    assert_user_error(fercli("info", str(path)), "schema version 99", "upgrade")


def test_missing_file(tmp_path):
    assert_user_error(fercli("info", str(tmp_path / "nope.h5")), "does not exist")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--size", "0x0"], "--size"),
        (["--size", "big"], "--size"),
        (["--frames", "9:3"], "--frames"),
        (["--classes", "happy,joy"], "joy"),
        (["--subjects", "0"], "--subjects"),
        (["--subjects", "many"], "subjects"),
    ],
)
def test_bad_option_values(tmp_path, args, fragment):
    out = tmp_path / "out.h5"
    assert_user_error(fercli("synth", *args, "-o", str(out)), fragment)
    assert not out.exists()


def test_output_folder_missing(tmp_path):
    assert_user_error(fercli("synth", *SMALL, "-o", str(tmp_path / "no" / "out.h5")), "does not exist")


def test_binary_to_a_terminal_is_refused():
    master, slave = pty.openpty()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "fercli", "synth", *SMALL, "-o", "-"], stdout=slave, stderr=subprocess.PIPE, env=env, timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    assert_user_error(proc, "terminal")


def _tmp_files(folder) -> list[str]:
    return glob.glob(os.path.join(folder, ".fercli-tmp-*"))


def test_sigkill_mid_write_leaves_nothing(tmp_path):
    """Kill -9 at several moments, including while the temporary file is being written."""
    out = tmp_path / "out.h5"
    # big enough that writing takes a while (hundreds of 640x490 frames to compress)
    args = ["synth", "--subjects", "2", "--classes", "happy,fear,surprise", "--frames", "12:16", "-o", str(out)]
    killed_while_writing = 0
    for moment in ("compute", "write-begin", "write-later"):
        proc = popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        if moment == "compute":
            time.sleep(1.0)
        elif moment.startswith("write"):
            while not _tmp_files(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            if moment == "write-later":
                time.sleep(0.1)
            killed_while_writing += bool(_tmp_files(tmp_path)) and proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"{moment}: the writer finished before it was killed"
        assert not out.exists(), f"killed at {moment}, yet {out} exists"
    assert killed_while_writing >= 1
    # a pre-existing good artifact is left byte-identical
    fercli("synth", *SMALL, "-o", str(out), check=True)
    before = out.read_bytes()
    proc = popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not _tmp_files(tmp_path) and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == before
    # SIGKILL cannot clean up its temporary file, but it never has the destination's name
    assert all(os.path.basename(p).startswith(".fercli-tmp-") for p in _tmp_files(tmp_path))


def test_sigterm_mid_write_removes_the_temporary(tmp_path):
    out = tmp_path / "out.h5"
    args = ["synth", "--subjects", "2", "--classes", "happy,fear,surprise", "--frames", "12:16", "-o", str(out)]
    proc = popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not _tmp_files(tmp_path) and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert not out.exists() and not _tmp_files(tmp_path)
