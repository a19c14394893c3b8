"""`fercli ingest` writes clip by clip (issue 19): the streamed artifact equals the
in-memory result array for array, a long clip goes in parts, a wrong layout guess
or a truncated long video is redone, and memory follows one run of frames."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from clip_compare import assert_same_clips
from conftest import assert_user_error, fercli
from fercli import artifacts
from fercli.ingest import (
    FrameOptions, images_plan, ingest_cifar10, ingest_ckplus, ingest_emotiw, ingest_fer2013, ingest_images, ingest_oulu,
    ingest_video, stream, video_plan,
)
from test_ingest import make_cifar_binary, make_ckplus, make_video_folder, write_image, write_video


def build(root: Path) -> None:
    make_ckplus(root / "ck")
    write_image(root / "sfew/Train/Angry/a1.png", color=True)
    write_image(root / "sfew/Train/Sad/s1.png", h=20, w=10)
    write_image(root / "sfew/Val/x.png")
    write_video(root / "afew/Train/Happy/001.avi", 6, h=48, w=64)
    write_video(root / "afew/Val/Fear/002.avi", 40, h=48, w=64, start=100)  # longer than a run at the budget below
    for subj in ("P001", "P002"):
        for i in range(3):
            write_image(root / "oulu/VL/Strong" / subj / "Anger" / f"{i:03d}.jpeg", color=i != 1, h=12 + (subj == "P002"))
    rng = np.random.default_rng(1)
    rows = ["emotion,pixels,Usage"] + [f"{i % 7},{' '.join(map(str, rng.integers(0, 256, 2304)))},Training" for i in range(9)]
    (root / "fer.csv").write_text("\n".join(rows) + "\n")
    make_cifar_binary(root / "cifar")
    make_video_folder(root / "vids")
    write_video(root / "vids2/happy/big.avi", 30, h=30, w=40)
    write_image(root / "imgs/happy/1.png")
    write_image(root / "imgs/fear/2.png", color=True)


#: (CLI arguments, the library call of the same ingest)
CASES = [
    (["ckplus", "{r}/ck", "--all"], lambda r: ingest_ckplus(f"{r}/ck", include_unlabelled=True)),
    (["oulu", "{r}/oulu"], lambda r: ingest_oulu(f"{r}/oulu")),
    (["sfew", "{r}/sfew", "--pad"], lambda r: ingest_emotiw(f"{r}/sfew", dataset="sfew", frames=FrameOptions(pad=True))),
    (["afew", "{r}/afew", "--max-side", "40"], lambda r: ingest_emotiw(f"{r}/afew", dataset="afew", frames=FrameOptions(max_side=40))),
    (["fer2013", "{r}/fer.csv"], lambda r: ingest_fer2013(f"{r}/fer.csv")),
    (["cifar10", "{r}/cifar", "--gray"], lambda r: ingest_cifar10(f"{r}/cifar", frames=FrameOptions(color=False))),
    (["video", "{r}/vids", "{r}/vids2", "--pad"], lambda r: ingest_video([f"{r}/vids", f"{r}/vids2"], frames=FrameOptions(pad=True))),
    (["images", "{r}/imgs"], lambda r: ingest_images(f"{r}/imgs")),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("layouts")
    build(root)
    return str(root)


@pytest.mark.parametrize("args, library", CASES, ids=[c[0][0] for c in CASES])
def test_streamed_artifact_equals_the_in_memory_clips(tmp_path, data, args, library):
    # A small budget: runs of about 64 KiB, so the longer videos reach the writer in parts.
    proc = fercli("ingest", *[a.format(r=data) for a in args], "-o", tmp_path / "streamed.h5", env={"FERCLI_MEMORY_BUDGET": "256K"})
    assert proc.returncode == 0, proc.stderr
    streamed, _, _ = artifacts.load_clips(str(tmp_path / "streamed.h5"), "test")
    clips, _ = library(data)
    assert_same_clips(streamed, clips)
    with h5py.File(tmp_path / "streamed.h5") as f:
        assert "clip by clip" in f.attrs["fercli_storage"]


def _parts_and_appends(monkeypatch, frames_per_run: int) -> list[str]:
    """Record the writer calls of the next collect(), with runs of ``frames_per_run`` 24x32 RGB frames."""
    calls: list[str] = []
    monkeypatch.setattr(stream, "run_bytes", lambda: frames_per_run * 24 * 32 * 3)
    for name in ("append", "append_part", "end_clip"):
        original = getattr(stream.MemoryWriter, name)
        monkeypatch.setattr(stream.MemoryWriter, name, lambda self, *a, _o=original, _n=name: (calls.append(_n), _o(self, *a))[1])
    return calls


def test_a_long_clip_goes_in_parts_and_equals_the_whole(tmp_path, monkeypatch):
    make_video_folder(tmp_path / "vids")  # clips of 2, 5, 3, 4 and 3 frames
    whole, _ = ingest_video([str(tmp_path / "vids")])
    calls = _parts_and_appends(monkeypatch, 3)
    parts, _ = ingest_video([str(tmp_path / "vids")])
    assert "append_part" in calls and calls.count("end_clip") >= 2
    for name in ("frames", "offsets", "labels", "source_frame", "transform", "fps"):
        assert np.array_equal(getattr(parts, name), getattr(whole, name), equal_nan=True), name
    assert list(parts.clip_ids) == list(whole.clip_ids)


def test_a_truncated_video_found_after_its_parts_were_written_is_skipped(tmp_path, monkeypatch):
    write_video(tmp_path / "v/happy/a.avi", 4)
    write_video(tmp_path / "v/happy/full.avi", 20)
    raw = (tmp_path / "v/happy/full.avi").read_bytes()
    (tmp_path / "v/happy/b.avi").write_bytes(raw[: len(raw) * 6 // 10])  # decodes a few of its 20 declared frames
    (tmp_path / "v/happy/full.avi").unlink()
    write_video(tmp_path / "v/happy/c.avi", 5, start=50)
    _parts_and_appends(monkeypatch, 1)
    clips, report = ingest_video([str(tmp_path / "v")])
    assert list(clips.clip_ids) == ["happy/a", "happy/c"] and list(clips.lengths) == [4, 5]
    assert report.count("truncated") == 1 and "b.avi" in report.examples["truncated"][0]


def test_a_wrong_layout_guess_is_redone(tmp_path):
    write_image(tmp_path / "imgs/happy/1.png", h=12, w=16)
    write_image(tmp_path / "imgs/happy/2.png", h=20, w=10, color=True)
    expected, expected_report = ingest_images(str(tmp_path / "imgs"), frames=FrameOptions(pad=True))
    for wrong in (stream.Layout(False, 16, 20), stream.Layout(True, 8, 8), stream.Layout(True, 30, 30)):
        plan = images_plan(str(tmp_path / "imgs"), frames=FrameOptions(pad=True))
        plan.guess = lambda wrong=wrong: wrong
        clips, report = stream.collect(plan)
        assert clips.frames.shape == expected.frames.shape == (2, 20, 16, 3)
        assert np.array_equal(clips.frames, expected.frames) and report.lines() == expected_report.lines()


def test_nothing_is_written_when_a_check_fails_after_clips_were_streamed(tmp_path):
    write_video(tmp_path / "v/happy/a.avi", 4)
    (tmp_path / "v/happy/b.avi").write_bytes(b"garbage")
    proc = fercli("ingest", "video", tmp_path / "v", "--strict", "-o", tmp_path / "out.h5")
    assert_user_error(proc, "--strict")
    assert not (tmp_path / "out.h5").exists() and os.listdir(tmp_path) == ["v"]


def test_video_bigger_than_the_memory_budget_ingests(tmp_path):
    # 110 frames of 640x360 RGB: 76 MB decoded, over a 64 MB budget (refused before issue 19).
    path = tmp_path / "long" / "happy" / "talk.avi"
    path.parent.mkdir(parents=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 360))
    for i in range(110):
        vw.write(np.full((360, 640, 3), (3 * i) % 256, np.uint8))
    vw.release()
    proc = fercli("ingest", "video", tmp_path / "long", "-o", tmp_path / "long.h5", env={"FERCLI_MEMORY_BUDGET": "64M"})
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "long.h5") as f:
        assert f["frames"].shape == (110, 360, 640, 3) and list(f["offsets"][()]) == [0, 110]
        assert abs(float(f["frames"][100].mean()) - 300 % 256) <= 3


def test_plans_are_what_the_library_functions_collect(tmp_path):
    make_video_folder(tmp_path / "vids")
    clips, report = stream.collect(video_plan([str(tmp_path / "vids")], shard=(1, 2)))
    same, same_report = ingest_video([str(tmp_path / "vids")], shard=(1, 2))
    assert np.array_equal(clips.frames, same.frames) and report.lines() == same_report.lines()


def test_without_a_header_guess_the_first_clip_decides(tmp_path):
    make_video_folder(tmp_path / "vids")
    write_video(tmp_path / "vids2/happy/big.avi", 3, h=30, w=40)
    sources = [str(tmp_path / "vids"), str(tmp_path / "vids2")]
    expected, _ = ingest_video(sources, frames=FrameOptions(pad=True))
    for frames in (FrameOptions(pad=True), FrameOptions(pad=True, color=False)):
        plan = video_plan(sources, frames=frames)
        plan.guess = lambda: None
        clips, _ = stream.collect(plan)
        reference, _ = ingest_video(sources, frames=frames)
        assert np.array_equal(clips.frames, reference.frames) and np.array_equal(clips.offsets, reference.offsets)
    assert expected.frames.shape[1:] == (30, 40, 3)
