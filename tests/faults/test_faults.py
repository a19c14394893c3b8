"""The bad-input corpus (issue 7): every malformed input is one sentence, exit 2, nothing written.

Each case builds its malformed input in a fresh folder, runs one `fercli`
command on it (a real process, forked from a warm interpreter: see
fork_server.py) and checks:

- exit code 2, exactly one line on stderr, no traceback;
- the output path untouched: absent if it was absent, byte-identical if a
  previous good output was there (half the cases have one), and no temporary
  file left beside it; every input byte-identical;
- peak memory and time bounded;
- whatever the case adds (the malicious pickle's marker file never exists).

(:func:`fault_harness.check_refusal` checks all of it.)
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from fault_harness import ROOT, check_refusal, clips, mutate, replace_dataset, save, valid_clips  # noqa: F401

CASES: dict[str, Callable[[Path], dict]] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def model_artifact(path: Path, arch: str = "no-such-net", weights: bool = True) -> Path:
    from fercli.artifacts import ModelRecord, create_artifact, save_model, write_json_attr

    if weights:
        save_model(str(path), ModelRecord(arch=arch, config={"width": 8}, state={"w": np.zeros(3, np.float32)}, class_names=["anger", "happy", "sad"]), [])
    else:
        with create_artifact(str(path), "model", []) as f:
            f.attrs["arch"] = arch
            write_json_attr(f, "config", {})
            write_json_attr(f, "class_names", ["a", "b"])
    return path


def write_image(path: Path, h: int = 12, w: int = 16) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (h, w), dtype=np.uint8))


def write_video(path: Path, n: int = 30, h: int = 24, w: int = 32) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for i in range(n):
        vw.write(np.full((h, w, 3), (20 * i) % 256, np.uint8))
    vw.release()


def cifar_python(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    x = np.zeros((2, 3072), np.uint8)
    for name in ("data_batch_1", "test_batch"):
        (folder / name).write_bytes(pickle.dumps({b"labels": [0, 1], b"data": x}, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane", b"automobile"]}, protocol=2))


class _Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --------------------------------------------------------------------------- HDF5 / artifact level


@case
def truncated_hdf5(d):
    data = valid_clips(d / "ok.h5").read_bytes()
    (d / "cut.h5").write_bytes(data[: len(data) // 2])
    return {"args": ["lbptop", "cut.h5", "-o", "out.h5"], "expect": ["cut.h5", "truncated or corrupt"]}


@case
def truncated_hdf5_on_stdin(d):
    data = valid_clips(d / "ok.h5").read_bytes()
    return {"args": ["resample", "-", "-n", "4", "-o", "out.h5"], "stdin": data[: len(data) // 3], "expect": ["standard input", "truncated or corrupt"]}


@case
def empty_file(d):
    (d / "empty.h5").write_bytes(b"")
    return {"args": ["split", "empty.h5", "-o", "out.h5"], "expect": ["empty.h5", "not a readable hdf5"]}


@case
def empty_stdin(d):
    return {"args": ["lbptop", "-", "-o", "out.h5"], "stdin": b"", "expect": ["standard input is empty"]}


@case
def random_bytes(d):
    valid_clips(d / "ok.h5")
    (d / "junk.h5").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return {"args": ["merge", "ok.h5", "junk.h5", "-o", "out.h5"], "expect": ["junk.h5", "not a readable hdf5"]}


@case
def hdf5_not_an_artifact(d):
    with h5py.File(d / "plain.h5", "w") as f:
        f["frames"] = np.zeros((3, 4, 4), np.uint8)
    return {"args": ["lbptop", "plain.h5", "-o", "out.h5"], "expect": ["not a fercli artifact"]}


@case
def wrong_kind_model_for_clips(d):
    model_artifact(d / "m.h5")
    return {"args": ["lbptop", "m.h5", "-o", "out.h5"], "expect": ["'model' artifact", "needs 'clips'"]}


@case
def wrong_kind_clips_for_model(d):
    valid_clips(d / "c.h5")
    return {"args": ["evaluate", "c.h5", "c.h5", "-o", "out.h5", "--no-latency"], "expect": ["'clips' artifact", "'model'"]}


@case
def wrong_kind_clips_for_pruning(d):
    valid_clips(d / "c.h5")
    return {"args": ["rebuild", "c.h5", "-o", "out.h5"], "expect": ["'clips' artifact", "'pruning'"]}


@case
def unknown_kind(d):
    mutate(valid_clips(d / "c.h5"), lambda f: f.attrs.__setitem__("fercli_kind", "banana"))
    return {"args": ["split", "c.h5", "-o", "out.h5"], "expect": ["unknown kind 'banana'"]}


@case
def future_schema(d):
    mutate(valid_clips(d / "c.h5"), lambda f: f.attrs.__setitem__("fercli_schema", 99))
    return {"args": ["lbptop", "c.h5", "-o", "out.h5"], "expect": ["schema version 99", "upgrade fercli"]}


@case
def missing_schema(d):
    mutate(valid_clips(d / "c.h5"), lambda f: f.attrs.__delitem__("fercli_schema"))
    return {"args": ["merge", "c.h5", "-o", "out.h5"], "expect": ["no valid schema version"]}


@case
def missing_offsets_dataset(d):
    mutate(valid_clips(d / "c.h5"), lambda f: f.__delitem__("offsets"))
    return {"args": ["lbptop", "c.h5", "-o", "out.h5"], "expect": ["damaged 'clips' artifact"]}


@case
def missing_labels_dataset(d):
    mutate(valid_clips(d / "c.h5"), lambda f: f.__delitem__("label"))
    return {"args": ["split", "c.h5", "-o", "out.h5"], "expect": ["damaged 'clips' artifact"]}


@case
def offsets_not_partitioning_frames(d):
    mutate(valid_clips(d / "c.h5"), replace_dataset("offsets", np.array([0, 5, 10, 15, 99], np.int64)))
    return {"args": ["resample", "c.h5", "-n", "4", "-o", "out.h5"], "expect": ["offsets"]}


@case
def nan_frames(d):
    frames = np.full((20, 12, 10), np.nan)
    mutate(valid_clips(d / "c.h5"), replace_dataset("frames", frames))
    return {"args": ["lbptop", "c.h5", "-o", "out.h5"], "expect": ["uint8", "float64"]}


@case
def infinite_frames(d):
    frames = np.full((20, 12, 10), np.inf, np.float32)
    mutate(valid_clips(d / "c.h5"), replace_dataset("frames", frames))
    return {"args": ["align", "c.h5", "-o", "out.h5"], "expect": ["uint8", "float32"]}


@case
def frames_with_two_channels(d):
    mutate(valid_clips(d / "c.h5"), replace_dataset("frames", np.zeros((20, 12, 10, 2), np.uint8)))
    return {"args": ["lbptop", "c.h5", "-o", "out.h5"], "expect": ["frames must be"]}


@case
def empty_clip_in_artifact(d):
    c = clips(n=3)
    c.offsets = np.array([0, 5, 5, 15], np.int64)  # clip 1 has no frames
    c.frames = c.frames[:15]
    save(d / "c.h5", c)
    return {"args": ["lbptop", "c.h5", "-o", "out.h5"], "expect": ["fewer than the 3 frames", "0 frames"]}


@case
def empty_clip_for_resample(d):
    c = clips(n=3)
    c.offsets = np.array([0, 5, 5, 15], np.int64)
    c.frames = c.frames[:15]
    save(d / "c.h5", c)
    return {"args": ["resample", "c.h5", "-n", "4", "-o", "out.h5"], "expect": ["frame"]}


@case
def artifact_without_clips(d):
    save(d / "c.h5", clips(n=4).select(np.zeros(0, np.int64)))
    return {"args": ["split", "c.h5", "-o", "out.h5"], "expect": ["holds no clips"]}


@case
def clips_shorter_than_lbptop_needs(d):
    valid_clips(d / "c.h5", frames=2)
    return {"args": ["lbptop", "c.h5", "-o", "out.h5"], "expect": ["fewer than the 3 frames", "resample"]}


@case
def clips_shorter_than_radius_2_needs(d):
    valid_clips(d / "c.h5", frames=4)
    return {"args": ["lbptop", "c.h5", "--radius", "2", "-o", "out.h5"], "expect": ["fewer than the 5 frames"]}


@case
def labels_outside_class_list(d):
    mutate(valid_clips(d / "c.h5"), replace_dataset("label", np.array([0, 1, 7, 2], np.int64)))
    return {"args": ["split", "c.h5", "-o", "out.h5"], "expect": ["outside the 3 classes", "7"]}


@case
def labels_outside_class_list_for_train(d):
    mutate(valid_clips(d / "c.h5", size=(32, 32)), replace_dataset("label", np.array([0, 1, 2, 5], np.int64)))
    return {"args": ["train", "plain-cnn", "c.h5", "--epochs", "1", "-o", "out.h5"], "expect": ["outside the 3 classes"]}


@case
def lineage_not_json(d):
    mutate(valid_clips(d / "c.h5"), lambda f: f.attrs.__setitem__("fercli_lineage", "{not json"))
    return {"args": ["lbptop", "c.h5", "-o", "out.h5"], "expect": ["fercli_lineage", "not valid json"]}


@case
def class_names_not_json(d):
    mutate(valid_clips(d / "c.h5"), lambda f: f.attrs.__setitem__("class_names", "[anger"))
    return {"args": ["merge", "c.h5", "-o", "out.h5"], "expect": ["class_names", "not valid json"]}


@case
def mixed_frame_sizes_merged(d):
    valid_clips(d / "a.h5", size=(12, 10), seed=1)
    valid_clips(d / "b.h5", size=(16, 16), seed=2)
    return {"args": ["merge", "a.h5", "b.h5", "-o", "out.h5"], "expect": ["cannot merge", "12x10", "16x16"]}


@case
def incompatible_parameters_merged(d):
    from fercli.lbptop import lbp_top

    save(d / "a.h5", lbp_top(clips(seed=1), points=4))
    save(d / "b.h5", lbp_top(clips(seed=2), points=8))
    return {"args": ["merge", "a.h5", "b.h5", "-o", "out.h5"], "expect": ["different 'lbp' parameters", "points"]}


@case
def duplicate_clip_ids_merged(d):
    valid_clips(d / "a.h5", seed=1)
    save(d / "b.h5", clips(seed=1))
    return {"args": ["merge", "a.h5", "b.h5", "-o", "out.h5"], "expect": ["clip id", "--prefix-ids"]}


# --------------------------------------------------------------------------- datasets on disk


@case
def mixed_frame_sizes_in_dataset_folder(d):
    write_image(d / "imgs" / "happy" / "a.png", 12, 16)
    write_image(d / "imgs" / "happy" / "b.png", 20, 16)
    return {"args": ["ingest", "images", "imgs", "-o", "out.h5"], "expect": ["size"]}


@case
def non_image_file_in_dataset_folder(d):
    write_image(d / "imgs" / "happy" / "a.png")
    (d / "imgs" / "happy" / "notes.png").write_text("this is not an image\n")
    return {"args": ["ingest", "images", "imgs", "--strict", "-o", "out.h5"], "expect": ["notes.png"]}


@case
def only_non_image_files_in_dataset_folder(d):
    (d / "imgs" / "sad").mkdir(parents=True)
    (d / "imgs" / "sad" / "x.jpg").write_bytes(b"GIF89a but not really")
    return {"args": ["ingest", "images", "imgs", "-o", "out.h5"], "expect": ["no usable data"]}


@case
def truncated_video(d):
    write_video(d / "full.avi")
    data = (d / "full.avi").read_bytes()
    (d / "happy").mkdir()
    (d / "happy" / "cut.avi").write_bytes(data[: len(data) // 3])
    return {"args": ["ingest", "video", "happy/cut.avi", "-o", "out.h5"], "expect": ["no usable data", "cut.avi"]}


@case
def corrupt_cifar_binary_batch(d):
    folder = d / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "data_batch_1.bin").write_bytes(b"\x01" * (3073 * 2 + 17))
    (folder / "batches.meta.txt").write_text("airplane\nautomobile\n")
    return {"args": ["ingest", "cifar10", folder.name, "-o", "out.h5"], "expect": ["data_batch_1.bin", "3073-byte"]}


@case
def truncated_cifar_python_batch(d):
    cifar_python(d / "py")
    data = (d / "py" / "data_batch_1").read_bytes()
    (d / "py" / "data_batch_1").write_bytes(data[: len(data) // 2])
    return {"args": ["ingest", "cifar10", "py", "-o", "out.h5"], "expect": ["data_batch_1"]}


@case
def malicious_pickle_in_cifar_folder(d):
    marker = d / "PWNED"
    cifar_python(d / "py")
    (d / "py" / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [1]}, protocol=2))
    return {"args": ["ingest", "cifar10", "py", "-o", "out.h5"], "expect": ["data_batch_1", "refused"], "absent": [marker]}


@case
def ckplus_without_layout(d):
    (d / "CK+" / "Emotion").mkdir(parents=True)
    return {"args": ["ingest", "ckplus", "CK+", "-o", "out.h5"], "expect": ["cohn-kanade-images"]}


@case
def fer2013_csv_without_columns(d):
    (d / "fer.csv").write_text("a,b,c\n1,2,3\n")
    return {"args": ["ingest", "fer2013", "fer.csv", "-o", "out.h5"], "expect": ["emotion", "pixels"]}


# --------------------------------------------------------------------------- models


@case
def model_with_unknown_architecture_evaluate(d):
    model_artifact(d / "m.h5")
    valid_clips(d / "c.h5")
    return {"args": ["evaluate", "m.h5", "c.h5", "--split", "all", "--no-latency", "-o", "out.h5"], "expect": ["no-such-net"]}


@case
def model_with_unknown_architecture_export(d):
    model_artifact(d / "m.h5")
    return {"args": ["export", "m.h5", "--onnx", "out.onnx"], "output": "out.onnx", "expect": ["no-such-net"]}


@case
def model_with_unknown_architecture_info(d):
    model_artifact(d / "m.h5")
    return {"args": ["info", "m.h5"], "output": None, "expect": ["no-such-net"]}


@case
def model_without_weights(d):
    model_artifact(d / "m.h5", arch="plain-cnn", weights=False)
    valid_clips(d / "c.h5")
    return {"args": ["evaluate", "m.h5", "c.h5", "--no-latency", "-o", "out.h5"], "expect": ["damaged 'model' artifact"]}


@case
def train_unknown_architecture_name(d):
    valid_clips(d / "c.h5")
    return {"args": ["train", "resnet-9000", "c.h5", "-o", "out.h5"], "expect": ["resnet-9000"]}


# --------------------------------------------------------------------------- paths and options


@case
def input_does_not_exist(d):
    return {"args": ["merge", "nothing.h5", "-o", "out.h5"], "expect": ["nothing.h5 does not exist"]}


@case
def input_is_a_folder(d):
    (d / "folder.h5").mkdir()
    return {"args": ["lbptop", "folder.h5", "-o", "out.h5"], "expect": ["is a folder"]}


@case
def output_folder_missing(d):
    valid_clips(d / "c.h5")
    return {"args": ["lbptop", "c.h5", "-o", "no/such/dir/out.h5"], "output": "no/such/dir/out.h5", "expect": ["does not exist"]}


@case
def output_is_a_folder(d):
    valid_clips(d / "c.h5")
    (d / "outdir").mkdir()
    return {"args": ["split", "c.h5", "-o", "outdir"], "output": None, "expect": ["is a folder"]}


@case
def binary_output_to_terminal_refused_before_work(d):
    valid_clips(d / "c.h5")
    return {"args": ["lbptop", "c.h5", "--points", "0", "-o", "out.h5"], "expect": ["--points must be at least 1"]}


@case
def bad_option_radius(d):
    valid_clips(d / "c.h5")
    return {"args": ["lbptop", "c.h5", "--radius", "-1", "-o", "out.h5"], "expect": ["--radius must be a positive"]}


@case
def bad_option_grid(d):
    valid_clips(d / "c.h5")
    return {"args": ["lbptop", "c.h5", "--grid", "0x4", "-o", "out.h5"], "expect": ["--grid"]}


@case
def bad_option_shard(d):
    valid_clips(d / "c.h5")
    return {"args": ["align", "c.h5", "--shard", "3/2", "-o", "out.h5"], "expect": ["--shard"]}


@case
def bad_option_shard_text(d):
    valid_clips(d / "c.h5")
    return {"args": ["lbptop", "c.h5", "--shard", "half", "-o", "out.h5"], "expect": ["--shard must look like"]}


@case
def bad_option_folds(d):
    valid_clips(d / "c.h5")
    return {"args": ["split", "c.h5", "--folds", "1", "-o", "out.h5"], "expect": ["--folds must be at least 2"]}


@case
def fewer_subjects_than_folds(d):
    valid_clips(d / "c.h5")
    return {"args": ["split", "c.h5", "--folds", "10", "-o", "out.h5"], "expect": ["only 4 subjects for 10 folds"]}


@case
def bad_option_frames(d):
    valid_clips(d / "c.h5")
    return {"args": ["resample", "c.h5", "-n", "0", "-o", "out.h5"], "expect": ["--frames must be at least 2"]}


@case
def bad_option_not_a_number(d):
    valid_clips(d / "c.h5")
    return {"args": ["lbptop", "c.h5", "--points", "eight", "-o", "out.h5"], "expect": ["--points", "valid integer"]}


@case
def unknown_option(d):
    valid_clips(d / "c.h5")
    return {"args": ["split", "c.h5", "--fodls", "3", "-o", "out.h5"], "expect": ["--fodls"]}


@case
def bad_option_focal(d):
    valid_clips(d / "c.h5")
    return {"args": ["align", "c.h5", "--focal", "0", "-o", "out.h5"], "expect": ["--focal"]}


@case
def split_by_identity_without_landmarks(d):
    valid_clips(d / "c.h5")
    return {"args": ["split", "c.h5", "--by", "identity", "--folds", "2", "-o", "out.h5"], "expect": ["no landmarks", "fercli align"]}


@case
def show_csv_that_is_not_a_live_log(d):
    (d / "rows.csv").write_text("a,b\n1,2\n")
    return {"args": ["show", "rows.csv", "-o", "out.png"], "output": "out.png", "expect": ["live --csv"]}


@case
def show_jsonl_that_is_not_json(d):
    (d / "labels.jsonl").write_bytes(b"{\"frames\": [0, \xff\n")
    return {"args": ["show", "labels.jsonl", "-o", "out.svg"], "output": "out.svg", "expect": ["not a fercli live log"]}


@case
def stdin_twice(d):
    return {"args": ["merge", "-", "-", "-o", "out.h5"], "stdin": b"", "expect": ["only once"]}


# --------------------------------------------------------------------------- the checks


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_one_sentence_and_writes_nothing(name, tmp_path, runner):
    spec = CASES[name](tmp_path)
    # Half the cases have a previous good output that must survive byte for byte.
    check_refusal(runner, tmp_path, spec, keep_old=sorted(CASES).index(name) % 2 == 0)


def test_fork_harness_matches_a_real_process(tmp_path, runner):
    """The warm fork server is only a faster way to run the same command."""
    spec = CASES["future_schema"](tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    real = subprocess.run([sys.executable, "-m", "fercli", *spec["args"]], cwd=tmp_path, capture_output=True, env=env, timeout=300)
    forked = runner.run(*spec["args"], cwd=tmp_path)
    assert (real.returncode, real.stderr, real.stdout) == (forked.returncode, forked.stderr, forked.stdout)
