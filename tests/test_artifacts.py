"""The artifact layer: round trips, validation sentences, atomic writes, pipes."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from fercli import artifacts
from fercli.artifacts import ModelRecord
from fercli.errors import FercliError


def test_clips_round_trip(tmp_path, tiny_clips):
    tiny_clips.landmarks = np.random.default_rng(1).random((len(tiny_clips.frames), 68, 2)).astype(np.float32)
    tiny_clips.face_found = np.arange(len(tiny_clips.frames)) % 3 != 0
    tiny_clips.folds = np.array([0, 0, 1, 1])
    tiny_clips.split = np.array(["train", "train", "test", "test"], dtype=object)
    tiny_clips.meta = {"aligned": True, "size": 64}
    path = str(tmp_path / "c.h5")
    entry = artifacts.lineage_entry("test", {"x": 1})
    artifacts.save_clips(path, tiny_clips, [entry])
    back, ident, lineage = artifacts.load_clips(path, "test")
    assert ident["kind"] == "clips" and len(ident["id"]) == 36
    assert lineage[-1]["stage"] == "test" and lineage[-1]["parameters"] == {"x": 1}
    np.testing.assert_array_equal(back.frames, tiny_clips.frames)
    np.testing.assert_array_equal(back.offsets, tiny_clips.offsets)
    np.testing.assert_array_equal(back.labels, tiny_clips.labels)
    np.testing.assert_array_equal(back.landmarks, tiny_clips.landmarks)
    np.testing.assert_array_equal(back.face_found, tiny_clips.face_found)
    np.testing.assert_array_equal(back.folds, tiny_clips.folds)
    assert list(back.split) == ["train", "train", "test", "test"]
    assert list(back.subjects) == ["S1", "S1", "S2", "S2"]
    assert back.class_names == ["a", "b", "c"]
    assert back.meta["size"] == 64


def test_select_reorders_ragged_clips(tiny_clips):
    sub = tiny_clips.select([3, 0])
    assert list(sub.lengths) == [6, 3]
    np.testing.assert_array_equal(sub.clip(0), tiny_clips.clip(3))
    np.testing.assert_array_equal(sub.clip(1), tiny_clips.clip(0))
    assert list(sub.labels) == [1, 0]


def test_planes_round_trip_and_select(tmp_path, tiny_clips):
    po = np.concatenate([[0], np.cumsum(tiny_clips.lengths - 2)])
    tiny_clips.plane_offsets = po
    tiny_clips.planes = {"xt": np.random.default_rng(2).integers(0, 256, (po[-1], 14, 10), dtype=np.uint8)}
    path = str(tmp_path / "p.h5")
    artifacts.save_clips(path, tiny_clips, [])
    back, _, _ = artifacts.load_clips(path, "t")
    np.testing.assert_array_equal(back.planes["xt"], tiny_clips.planes["xt"])
    np.testing.assert_array_equal(back.select([2]).clip_planes("xt", 0), tiny_clips.clip_planes("xt", 2))


def test_model_round_trip_has_no_pickle(tmp_path):
    rec = ModelRecord(arch="plain-cnn", config={"classes": 7}, state={"fc.weight": np.ones((2, 3), np.float32)}, class_names=["a", "b"], history=[{"epoch": 1, "loss": 0.5}])
    path = str(tmp_path / "m.h5")
    artifacts.save_model(path, rec, [])
    back, _, _ = artifacts.load_model(path, "t")
    assert back.arch == "plain-cnn" and back.config == {"classes": 7} and back.history[0]["loss"] == 0.5
    np.testing.assert_array_equal(back.state["fc.weight"], rec.state["fc.weight"])
    with h5py.File(path) as f:
        def no_objects(name, obj):
            if isinstance(obj, h5py.Dataset):
                assert obj.dtype.kind in "fiub", f"{name} has dtype {obj.dtype}"
        f.visititems(no_objects)


@pytest.mark.parametrize("labels", [[0, 1, 5, 1], [0, -3, 1, 1]])
def test_labels_outside_classes_are_refused(labels, tiny_clips):
    tiny_clips.labels = np.array(labels)
    with pytest.raises(FercliError, match="outside the 3 classes"):
        tiny_clips.validate()


def test_float_frames_are_refused(tiny_clips):
    tiny_clips.frames = tiny_clips.frames.astype(np.float32)
    with pytest.raises(FercliError, match="uint8"):
        tiny_clips.validate()


def test_wrong_kind_sentence(tmp_path):
    path = str(tmp_path / "m.h5")
    artifacts.save_model(path, ModelRecord("x", {}, {}, []), [])
    with pytest.raises(FercliError, match=r"is a 'model' artifact; lbptop needs 'clips'"):
        with artifacts.open_artifact(path, "clips", "lbptop"):
            pass


def test_future_schema_sentence(tmp_path, tiny_clips):
    path = str(tmp_path / "c.h5")
    artifacts.save_clips(path, tiny_clips, [])
    with h5py.File(path, "r+") as f:
        f.attrs["fercli_schema"] = 99
    with pytest.raises(FercliError, match="newer than this fercli"):
        artifacts.load_clips(path, "t")


def test_failed_write_leaves_previous_output(tmp_path, tiny_clips):
    path = str(tmp_path / "c.h5")
    artifacts.save_clips(path, tiny_clips, [])
    before = open(path, "rb").read()
    with pytest.raises(RuntimeError):
        with artifacts.create_artifact(path, "clips", []) as f:
            f.create_dataset("partial", data=np.zeros(10))
            raise RuntimeError("stage failed half way")
    assert open(path, "rb").read() == before
    assert [p for p in os.listdir(tmp_path) if p.startswith(".fercli-tmp")] == []


def test_missing_output_folder_is_refused_before_work(tmp_path):
    with pytest.raises(FercliError, match="does not exist"):
        artifacts.check_output_path(str(tmp_path / "nope" / "x.h5"))


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path, tiny_clips):
    """SIGKILL leaves a temporary file; the next write to the folder removes it, and only it."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    host = artifacts._HOST
    stale = tmp_path / f".fercli-tmp-{dead}@{host}-abc.h5"
    recent = tmp_path / f".fercli-tmp-{dead}@{host}-new.h5"
    live = tmp_path / f".fercli-tmp-{os.getpid()}@{host}-live.h5"
    other_host = tmp_path / f".fercli-tmp-{dead}@some-other-node-xyz.h5"
    for p in (stale, recent, live, other_host):
        p.write_bytes(b"partial")
    old = os.stat(stale).st_mtime - 2 * artifacts.STALE_SECONDS
    for p in (stale, live, other_host):
        os.utime(p, (old, old))
    artifacts.save_clips(str(tmp_path / "c.h5"), tiny_clips, [])
    assert not stale.exists()
    assert recent.exists() and live.exists() and other_host.exists()
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith(".fercli-tmp")) == ["c.h5"]
