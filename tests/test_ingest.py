"""`fercli ingest`: tiny fixtures in each published layout, built here in tmp_path."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from conftest import assert_user_error, fercli
from fercli.artifacts import load_clips
from fercli.errors import FercliError
from fercli.ingest import (
    FrameOptions, ingest_cifar10, ingest_ckplus, ingest_emotiw, ingest_fer2013, ingest_images, ingest_oulu, ingest_video,
)
from fercli.ingest.safe_pickle import load_pickle

RNG = np.random.default_rng(7)


# --------------------------------------------------------------------------- builders


def write_image(path: Path, h: int = 12, w: int = 16, color: bool = False, value: int | None = None) -> np.ndarray:
    """Write a PNG/JPEG; returns what fercli should read back (gray or RGB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (h, w, 3) if color else (h, w)
    img = np.full(shape, value, np.uint8) if value is not None else RNG.integers(0, 256, shape, dtype=np.uint8)
    ok = cv2.imwrite(str(path), img[..., ::-1] if color else img)  # cv2 writes BGR
    assert ok
    return img


def write_video(path: Path, n: int, h: int = 24, w: int = 32, start: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((h, w, 3), (start + 20 * i) % 256, np.uint8))
    vw.release()


def make_ckplus(root: Path) -> None:
    imgs = root / "cohn-kanade-images"
    emo = root / "Emotion"
    for i in range(1, 4):  # S005/001: labelled 3 (disgust), 3 frames 12x16
        write_image(imgs / "S005" / "001" / f"S005_001_0000000{i}.png")
    (emo / "S005" / "001").mkdir(parents=True)
    (emo / "S005" / "001" / "S005_001_00000003_emotion.txt").write_text("   3.0000000e+00\n")
    for i in range(1, 3):  # S005/002: unlabelled (its Emotion folder is empty, as in CK+)
        write_image(imgs / "S005" / "002" / f"S005_002_0000000{i}.png")
    (emo / "S005" / "002").mkdir(parents=True)
    for i in range(1, 5):  # S010/004: labelled 7 (surprise), a colour frame, a bigger frame, a broken file
        write_image(imgs / "S010" / "004" / f"S010_004_0000000{i}.png", h=14 if i == 4 else 12, color=i == 2)
    (imgs / "S010" / "004" / "S010_004_00000005.png").write_bytes(b"not a png at all")
    (imgs / "S010" / "004" / ".DS_Store").write_bytes(b"\0\0")  # CK+ ships these: not reported
    (emo / "S010" / "004").mkdir(parents=True)
    (emo / "S010" / "004" / "S010_004_00000004_emotion.txt").write_text("7.0000000e+00")
    (emo / "S011" / "001").mkdir(parents=True)  # a label without images: an empty sequence
    (emo / "S011" / "001" / "S011_001_00000009_emotion.txt").write_text("1.0")


# --------------------------------------------------------------------------- CK+


def test_ckplus_labels_subjects_and_report(tmp_path):
    make_ckplus(tmp_path / "CK+")
    clips, report = ingest_ckplus(str(tmp_path / "CK+"))
    assert clips.class_names == ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    assert list(clips.clip_ids) == ["S005_001", "S010_004"]
    assert list(clips.subjects) == ["S005", "S010"]
    assert list(clips.labels) == [2, 6]  # 3 disgust, 7 surprise
    assert list(clips.lengths) == [3, 4]  # the broken PNG is not a frame
    assert list(clips.sources) == [os.path.join("cohn-kanade-images", "S005", "001"), os.path.join("cohn-kanade-images", "S010", "004")]
    # gray by default; the 14-row frame padded (bottom) onto a 14x16 canvas
    assert clips.frames.shape == (7, 14, 16) and clips.frames.dtype == np.uint8
    first = cv2.imread(str(tmp_path / "CK+/cohn-kanade-images/S005/001/S005_001_00000001.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(clips.frames[0, :12], first) and not clips.frames[0, 12:].any()
    assert report.count("unreadable") == 1 and "S010_004_00000005.png" in report.examples["unreadable"][0]
    assert report.count("empty") == 1 and "S011" in report.examples["empty"][0]
    assert report.count("not_media") == 0  # .DS_Store is OS litter, not data
    assert any("left out 1 unlabelled sequence (" in n for n in report.notes)
    assert any("padded" in n for n in report.notes)


def test_ckplus_all_keeps_unlabelled_and_resize(tmp_path):
    make_ckplus(tmp_path)
    clips, _ = ingest_ckplus(str(tmp_path), include_unlabelled=True, frames=FrameOptions(resize=(8, 6), color=True))
    assert list(clips.clip_ids) == ["S005_001", "S005_002", "S010_004"]
    assert list(clips.labels) == [2, -1, 6]
    assert clips.frames.shape == (9, 6, 8, 3)


def test_ckplus_neutral_code_adds_class_and_bad_label_reported(tmp_path):
    make_ckplus(tmp_path)
    (tmp_path / "Emotion/S005/001/S005_001_00000003_emotion.txt").write_text("0.0")
    (tmp_path / "Emotion/S010/004/S010_004_00000004_emotion.txt").write_text("9.5")
    clips, report = ingest_ckplus(str(tmp_path))
    assert clips.class_names[-1] == "neutral" and list(clips.labels) == [7]
    assert report.count("unknown_label") == 1


def test_ckplus_cli_writes_artifact_with_lineage_and_reports(tmp_path):
    make_ckplus(tmp_path / "ck")
    out = tmp_path / "ck.h5"
    proc = fercli("ingest", "ckplus", tmp_path / "ck", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "skipped 1 unreadable file" in err and "skipped 1 empty sequence" in err and "2 clips" in err
    clips, _, lineage = load_clips(str(out), "test")
    assert clips.n_clips == 2 and lineage[-1]["stage"] == "ingest"
    assert lineage[-1]["parameters"]["dataset"] == "ckplus" and lineage[-1]["parameters"]["color"] is False


def test_ckplus_missing_layout_is_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = fercli("ingest", "ckplus", tmp_path / "empty", "-o", tmp_path / "x.h5")
    assert_user_error(proc, "cohn-kanade-images")
    assert not (tmp_path / "x.h5").exists()


# --------------------------------------------------------------------------- Oulu-CASIA


def test_oulu_default_subset_and_options(tmp_path):
    for light in ("VL", "NI"):
        for subj in ("P001", "P002"):
            for expr in ("Anger", "Happiness"):
                for i in range(3):
                    write_image(tmp_path / "OriginalImg" / light / "Strong" / subj / expr / f"{i:03d}.jpeg", color=light == "VL")
    write_image(tmp_path / "OriginalImg/VL/Dark/P001/Fear/000.jpeg", color=True)
    write_image(tmp_path / "OriginalImg/VL/Strong/P002/Smile/000.jpeg", color=True)  # not an Oulu class
    clips, report = ingest_oulu(str(tmp_path))
    assert clips.class_names == ["anger", "disgust", "fear", "happy", "sadness", "surprise"]
    assert list(clips.clip_ids) == ["P001_Anger", "P001_Happiness", "P002_Anger", "P002_Happiness"]
    assert list(clips.subjects) == ["P001", "P001", "P002", "P002"]
    assert list(clips.labels) == [0, 3, 0, 3]
    assert clips.frames.shape == (12, 12, 16, 3)  # VL keeps colour
    assert report.count("unknown_label") == 1
    ni, _ = ingest_oulu(str(tmp_path), lighting="NI")
    assert ni.frames.ndim == 3 and ni.n_clips == 4  # NI gray
    dark, _ = ingest_oulu(str(tmp_path), illumination="dark")
    assert list(dark.clip_ids) == ["P001_Fear"] and list(dark.labels) == [2]
    with pytest.raises(FercliError, match="--lighting"):
        ingest_oulu(str(tmp_path), lighting="IR")


# --------------------------------------------------------------------------- FER2013


def test_fer2013_rows_split_and_bad_rows(tmp_path):
    path = tmp_path / "fer2013.csv"
    pixels = [RNG.integers(0, 256, 48 * 48) for _ in range(4)]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerow([0, " ".join(map(str, pixels[0])), "Training"])
        w.writerow([6, " ".join(map(str, pixels[1])), "PublicTest"])
        w.writerow([3, " ".join(map(str, pixels[2][:100])), "Training"])  # too few pixels
        w.writerow([9, " ".join(map(str, pixels[3])), "PrivateTest"])  # no class 9
        w.writerow([5, " ".join(map(str, pixels[3])), "PrivateTest"])
    clips, report = ingest_fer2013(str(path))
    assert clips.class_names == ["anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral"]
    assert list(clips.labels) == [0, 6, 5]
    assert list(clips.split) == ["Training", "PublicTest", "PrivateTest"]
    assert list(clips.subjects) == ["fer2013-000000", "fer2013-000001", "fer2013-000004"]
    assert clips.frames.shape == (3, 48, 48) and list(clips.lengths) == [1, 1, 1]
    assert np.array_equal(clips.frames[1].ravel(), pixels[1])
    assert report.count("bad_row") == 1 and "row 4" in report.examples["bad_row"][0]
    assert report.count("unknown_label") == 1 and "row 5" in report.examples["unknown_label"][0]
    color, _ = ingest_fer2013(str(path), frames=FrameOptions(color=True))
    assert color.frames.shape == (3, 48, 48, 3)
    with pytest.raises(FercliError, match="--strict"):
        ingest_fer2013(str(path), strict=True)


def test_fer2013_wrong_csv_is_one_sentence(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    proc = fercli("ingest", "fer2013", path, "-o", tmp_path / "x.h5")
    assert_user_error(proc, "emotion", "pixels")
    assert not (tmp_path / "x.h5").exists()


# --------------------------------------------------------------------------- SFEW / AFEW


def test_sfew_partitions_classes_and_unreadable(tmp_path):
    write_image(tmp_path / "Train/Angry/a1.png", color=True)
    write_image(tmp_path / "Train/Sad/s1.png", color=True)
    write_image(tmp_path / "Val/Neutral/n1.jpg", color=True)
    (tmp_path / "Val/Neutral/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n trunc")
    (tmp_path / "Val/Neutral/notes.txt").write_text("not an image")
    write_image(tmp_path / "Val/Contempt/c1.png", color=True)  # no such SFEW class
    clips, report = ingest_emotiw(str(tmp_path), dataset="sfew")
    assert clips.class_names == ["anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral"]
    assert list(clips.labels) == [0, 4, 6]
    assert list(clips.split) == ["Train", "Train", "Val"]
    assert list(clips.clip_ids) == ["Train/Angry/a1", "Train/Sad/s1", "Val/Neutral/n1"]
    assert clips.frames.shape == (3, 12, 16, 3)
    assert report.count("unreadable") == 1 and report.count("not_media") == 1 and report.count("unknown_label") == 1
    train, _ = ingest_emotiw(str(tmp_path), dataset="sfew", partitions="train")
    assert list(train.split) == ["Train", "Train"]


def test_sfew_mixed_sizes_need_resize_or_pad(tmp_path):
    write_image(tmp_path / "Train/Happy/a.png", h=12, w=16)
    write_image(tmp_path / "Train/Happy/b.png", h=20, w=10)
    with pytest.raises(FercliError, match="--resize"):
        ingest_emotiw(str(tmp_path), dataset="sfew", partitions="Train")
    resized, _ = ingest_emotiw(str(tmp_path), dataset="sfew", partitions="Train", frames=FrameOptions(resize=(8, 8)))
    assert resized.frames.shape == (2, 8, 8)
    padded, _ = ingest_emotiw(str(tmp_path), dataset="sfew", partitions="Train", frames=FrameOptions(pad=True))
    assert padded.frames.shape == (2, 20, 16)
    proc = fercli("ingest", "sfew", tmp_path, "--partition", "Train", "-o", tmp_path / "x.h5")
    assert_user_error(proc, "different sizes", "--resize")
    assert not (tmp_path / "x.h5").exists()


def test_afew_videos_truncated_and_max_side(tmp_path):
    write_video(tmp_path / "Train/Happy/001.avi", 6)
    write_video(tmp_path / "Val/Fear/002.avi", 4, start=100)
    write_video(tmp_path / "Val/Fear/full.avi", 20)
    data = (tmp_path / "Val/Fear/full.avi").read_bytes()
    (tmp_path / "Val/Fear/003.avi").write_bytes(data[: len(data) * 6 // 10])  # truncated copy
    (tmp_path / "Val/Fear/full.avi").unlink()
    (tmp_path / "Val/Fear/004.avi").write_bytes(b"garbage")
    clips, report = ingest_emotiw(str(tmp_path), dataset="afew")
    assert list(clips.lengths) == [6, 4]
    assert list(clips.labels) == [3, 2] and list(clips.split) == ["Train", "Val"]
    assert clips.frames.shape == (10, 24, 32, 3)
    assert abs(int(clips.frames[6].mean()) - 100) <= 3  # frame content survives MJPEG
    assert report.count("truncated") == 1 and "003.avi" in report.examples["truncated"][0]
    assert report.count("unreadable") == 1
    small, _ = ingest_emotiw(str(tmp_path), dataset="afew", frames=FrameOptions(max_side=16, color=False))
    assert small.frames.shape == (10, 12, 16)


# --------------------------------------------------------------------------- CIFAR-10


NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 10, n).astype(np.uint8), rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def make_cifar_binary(folder: Path, n: int = 3) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, name in enumerate(["data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"]):
        y, x = cifar_arrays(n, i)
        (folder / name).write_bytes(np.concatenate([y[:, None], x], axis=1).tobytes())
        truth[name] = (y, x)
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n\n")
    return truth


def make_cifar_python(folder: Path, n: int = 3) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, name in enumerate(["data_batch_1", "test_batch"]):
        y, x = cifar_arrays(n, 10 + i)
        batch = {b"batch_label": b"batch", b"labels": [int(v) for v in y], b"data": x, b"filenames": [b"f.png"] * n}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        truth[name] = (y, x)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in NAMES], b"num_vis": 3072}, protocol=2))
    return truth


def test_cifar_binary_layout(tmp_path):
    truth = make_cifar_binary(tmp_path / "cifar-10-batches-bin")
    clips, report = ingest_cifar10(str(tmp_path))  # the folder above the batches works too
    assert clips.class_names == NAMES
    assert clips.frames.shape == (9, 32, 32, 3)
    y, x = truth["data_batch_2.bin"]
    assert list(clips.labels[3:6]) == list(y)
    assert np.array_equal(clips.frames[3, :, :, 0].ravel(), x[0, :1024])  # red plane
    assert np.array_equal(clips.frames[3, :, :, 2].ravel(), x[0, 2048:])  # blue plane
    assert list(clips.split) == ["train"] * 6 + ["test"] * 3
    assert clips.subjects[3] == "cifar10-train-00003" and clips.subjects[6] == "cifar10-test-00000"
    assert any("data_batch_3" in n for n in report.notes)  # the missing batches are said
    gray, _ = ingest_cifar10(str(tmp_path), frames=FrameOptions(color=False))
    assert gray.frames.shape == (9, 32, 32)


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_python_layout(tmp_path, protocol):
    truth = make_cifar_python(tmp_path)
    if protocol != 2:  # a Python 3 re-pickle (str keys, protocol 5 buffers) reads the same
        y, x = truth["data_batch_1"]
        (tmp_path / "data_batch_1").write_bytes(pickle.dumps({"data": x, "labels": y.astype(np.int64)}, protocol=protocol))
    clips, _ = ingest_cifar10(str(tmp_path))
    assert clips.class_names == NAMES and clips.meta["layout"] == "python"
    y, x = truth["test_batch"]
    assert list(clips.labels[3:]) == list(y)
    assert np.array_equal(clips.frames[3:].transpose(0, 3, 1, 2).reshape(3, -1), x)


def test_cifar_corrupt_binary_batch_is_one_sentence(tmp_path):
    make_cifar_binary(tmp_path)
    with open(tmp_path / "data_batch_2.bin", "ab") as fh:
        fh.write(b"\0" * 100)
    proc = fercli("ingest", "cifar10", tmp_path, "-o", tmp_path / "c.h5")
    assert_user_error(proc, "data_batch_2.bin", "3073-byte")
    assert not (tmp_path / "c.h5").exists()


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps({b"data": _Evil(marker), b"labels": [1]}, protocol=2)
    # The payload is real: plain pickle.loads would create the marker.
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(FercliError, match="refused"):
        load_pickle(payload, "data_batch_1")
    assert not marker.exists()
    # ...and through the CLI, in a CIFAR python folder: exit 2, one line, nothing written or run.
    make_cifar_python(tmp_path / "py")
    (tmp_path / "py" / "data_batch_1").write_bytes(payload)
    proc = fercli("ingest", "cifar10", tmp_path / "py", "-o", tmp_path / "c.h5")
    assert_user_error(proc, "data_batch_1", "refused", "system")
    assert not marker.exists() and not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("name", ["builtins.eval", "subprocess.Popen", "numpy.load", "builtins.getattr"])
def test_safe_unpickler_refuses_globals(name):
    module, attr = name.rsplit(".", 1)
    payload = f"c{module}\n{attr}\n(S'1'\ntR.".encode()  # protocol 0: GLOBAL, then call it
    with pytest.raises(FercliError, match=name.replace(".", r"\.")):
        load_pickle(payload, "batch")


def test_truncated_pickle_is_one_sentence(tmp_path):
    data = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)
    with pytest.raises(FercliError, match="truncated or corrupt"):
        load_pickle(data[: len(data) // 2], "data_batch_1")


# --------------------------------------------------------------------------- generic video / images


def make_video_folder(root: Path) -> None:
    write_video(root / "happy" / "a.avi", 3, start=10)
    write_video(root / "happy" / "b.avi", 4, start=40)
    write_video(root / "Angry" / "c.avi", 2, start=80)
    write_video(root / "Angry" / "d.avi", 5, start=120)
    write_video(root / "sad" / "e.avi", 3, start=160)


def test_video_folder_labels_from_parent(tmp_path):
    make_video_folder(tmp_path / "vids")
    (tmp_path / "vids" / "happy" / "readme.txt").write_text("x")
    clips, report = ingest_video([str(tmp_path / "vids")])
    assert clips.class_names == ["anger", "happy", "sadness"]  # canonical names, canonical order
    assert list(clips.clip_ids) == ["Angry/c", "Angry/d", "happy/a", "happy/b", "sad/e"]
    assert list(clips.labels) == [0, 0, 1, 1, 2]
    assert list(clips.lengths) == [2, 5, 3, 4, 3]
    assert report.count("not_media") == 1
    fixed, report = ingest_video([str(tmp_path / "vids")], classes=["happy", "neutral"])
    assert fixed.class_names == ["happy", "neutral"] and list(fixed.labels) == [0, 0]
    assert report.count("unknown_label") == 3


def test_video_shards_concatenate_to_the_unsharded_run(tmp_path):
    make_video_folder(tmp_path / "vids")
    whole, _ = ingest_video([str(tmp_path / "vids")])
    parts = [ingest_video([str(tmp_path / "vids")], shard=(i, 3))[0] for i in range(3)]
    assert [p.n_clips for p in parts] == [1, 2, 2]
    assert all(p.class_names == whole.class_names for p in parts)
    assert np.array_equal(np.concatenate([p.frames for p in parts]), whole.frames)
    assert np.array_equal(np.concatenate([p.labels for p in parts]), whole.labels)
    assert list(np.concatenate([p.clip_ids for p in parts])) == list(whole.clip_ids)
    assert list(np.concatenate([p.subjects for p in parts])) == list(whole.subjects)
    offsets = np.concatenate([[0]] + [p.offsets[1:] + sum(q.offsets[-1] for q in parts[:k]) for k, p in enumerate(parts)])
    assert np.array_equal(offsets, whole.offsets)


def test_video_shard_cli_and_manifest(tmp_path):
    make_video_folder(tmp_path / "vids")
    manifest = tmp_path / "vids" / "labels.csv"
    manifest.write_text("path,label,subject\nhappy/a.avi,Happiness,P1\nhappy/b.avi,neutral,P2\nAngry/c.avi,,P1\nsad/gone.avi,sad,P3\n")
    out = tmp_path / "s1.h5"
    proc = fercli("ingest", "video", tmp_path / "vids", "--manifest", manifest, "--shard", "1/2", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "2 files not listed in the manifest" in err and "1 manifest row naming a missing file" in err
    clips, _, lineage = load_clips(str(out), "test")
    # the manifest's 3 files sorted: Angry/c, happy/a, happy/b -> shard 1/2 holds happy/a, happy/b
    assert clips.class_names == ["happy", "neutral"]
    assert list(clips.clip_ids) == ["happy/a", "happy/b"] and list(clips.subjects) == ["P1", "P2"]
    assert list(clips.labels) == [0, 1]
    assert lineage[-1]["parameters"]["shard"] == "1/2"


def test_video_nothing_usable_is_one_sentence(tmp_path):
    bad = tmp_path / "happy" / "x.avi"
    write_video(tmp_path / "full.avi", 30)
    data = (tmp_path / "full.avi").read_bytes()
    bad.parent.mkdir()
    bad.write_bytes(data[: len(data) // 3])
    proc = fercli("ingest", "video", bad, "-o", tmp_path / "v.h5")
    assert_user_error(proc, "no usable data", "x.avi")
    assert not (tmp_path / "v.h5").exists()


def test_images_dir_manifest_colour_and_unknown_labels(tmp_path):
    write_image(tmp_path / "imgs" / "happy" / "1.png")
    write_image(tmp_path / "imgs" / "happy" / "2.png")
    write_image(tmp_path / "imgs" / "fear" / "3.jpg")
    clips, _ = ingest_images(str(tmp_path / "imgs"))
    assert clips.class_names == ["fear", "happy"] and list(clips.labels) == [0, 1, 1]
    assert clips.frames.shape == (3, 12, 16)  # every file gray -> gray
    write_image(tmp_path / "imgs" / "happy" / "4.png", color=True)
    clips, _ = ingest_images(str(tmp_path / "imgs"))
    assert clips.frames.shape == (4, 12, 16, 3)  # one colour file -> colour
    assert np.array_equal(clips.frames[1, :, :, 0], clips.frames[1, :, :, 1])  # gray ones replicated
    (tmp_path / "imgs" / "m.csv").write_text("happy/1.png,joy,S1\nfear/3.jpg,bored,S2\nhappy/2.png,happy\n")
    clips, report = ingest_images(str(tmp_path / "imgs"), manifest=str(tmp_path / "imgs" / "m.csv"), classes=["happy", "fear"])
    assert list(clips.clip_ids) == ["happy/1", "happy/2"] and list(clips.subjects) == ["S1", "happy/2"]
    assert report.count("unknown_label") == 1 and "bored" in report.examples["unknown_label"][0]
    assert report.count("not_in_manifest") == 1


def test_images_nothing_usable_cli(tmp_path):
    (tmp_path / "d" / "happy").mkdir(parents=True)
    (tmp_path / "d" / "happy" / "a.png").write_bytes(b"nope")
    (tmp_path / "d" / "happy" / "b.jpg").write_bytes(b"")
    proc = fercli("ingest", "images", tmp_path / "d", "-o", tmp_path / "i.h5")
    assert_user_error(proc, "no usable data", "2 unreadable files")
    assert not (tmp_path / "i.h5").exists()


def test_options_conflicts_are_sentences(tmp_path):
    with pytest.raises(FercliError, match="not both"):
        FrameOptions(resize=(8, 8), max_side=16)
    with pytest.raises(FercliError, match="--partition"):
        ingest_emotiw(str(tmp_path), dataset="sfew", partitions="Training")
    with pytest.raises(FercliError, match="has no Val folder"):
        (tmp_path / "Train").mkdir()
        ingest_emotiw(str(tmp_path), dataset="sfew")


def test_artifact_frames_round_trip(tmp_path):
    """What the importer returns is exactly what lands in the file."""
    make_cifar_binary(tmp_path / "bin")
    out = tmp_path / "c.h5"
    proc = fercli("ingest", "cifar10", tmp_path / "bin", "--gray", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    direct, _ = ingest_cifar10(str(tmp_path / "bin"), frames=FrameOptions(color=False))
    with h5py.File(out) as f:
        assert np.array_equal(f["frames"][()], direct.frames)
        assert f.attrs["fercli_kind"] == "clips"
