"""`fercli show` and `fercli table` for every artifact kind; reports' per-clip predictions;
`info` on models and reports (issue 14)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from conftest import assert_user_error, fercli
from face_video import face_clips
from train_helpers import fit, tiny_clips, train_to, write

from fercli import artifacts

KINDS = ("clips", "aligned", "planes", "model", "report", "pruning")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One artifact of every kind (and clips with and without alignment / LBP-TOP planes)."""
    import torch

    from fercli import prune as P
    from fercli.align import AlignOptions, align
    from fercli.lbptop import lbp_top
    from fercli.models import registry
    from fercli.train import RunOptions

    d = tmp_path_factory.mktemp("show")
    paths = {k: d / f"{k}.h5" for k in KINDS}
    fercli("synth", "--subjects", "2", "--classes", "happy,surprise", "--frames", "4:4", "--size", "160x120", "-o", paths["clips"], check=True)
    aligned, _ = align(face_clips(lengths=(5, 4)), AlignOptions(size=32, missing="hold"))
    artifacts.save_clips(str(paths["aligned"]), aligned, [])
    artifacts.save_clips(str(paths["planes"]), lbp_top(aligned), [])

    data = write(d / "data.h5", tiny_clips())
    clips, ident, _ = artifacts.load_clips(data, "test")
    train_to(paths["model"], RunOptions("plain-cnn", config={"dropout": 0, "width": 0.125}, size=(8, 8), all_folds=True, fit=fit(2)), [(clips, ident)])
    fercli("evaluate", paths["model"], data, "--no-latency", "-o", paths["report"], "--figure", d / "cm.svg", check=True)

    torch.manual_seed(0)
    tiny = {"depth": 14, "expansion": 4, "channels": [8, 4, 8, 8, 16, 16], "input_size": 16, "in_channels": 1}
    net, cfg = registry.build("lb-mbnet", 3, tiny)
    stats, seen = P.se_statistics(net, [[torch.rand(6, 1, 16, 16)]], total=6)
    rec = artifacts.ModelRecord("lb-mbnet", cfg, registry.state_to_numpy(net), ["a", "b", "c"])
    P.save_pruning(str(paths["pruning"]), P.Pruning(rec, [2, 1], stats, [P.select_kept(stats, 2), P.select_kept(stats, 1)], seen), [])
    return d, paths, data


def _png_ok(path) -> np.ndarray:
    import cv2

    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 100
    # not blank: a real spread of values, and more than a frame of white
    assert img.std() > 10 and (img < 200).mean() > 0.02
    return img


@pytest.mark.parametrize("kind", KINDS)
def test_show_writes_a_valid_image_for_every_kind(made, kind):
    d, paths, _ = made
    png = d / f"{kind}.png"
    proc = fercli("show", paths[kind], "-o", png, check=True)
    assert png.name.encode() in proc.stderr
    _png_ok(png)


@pytest.mark.parametrize("kind, fmt", [("aligned", "pdf"), ("model", "pdf"), ("report", "svg"), ("pruning", "svg")])
def test_vector_figures_keep_text_as_text(made, kind, fmt):
    """PDF and SVG by extension, text embedded as text (in-process: the CLI path is the PNG test's)."""
    from fercli import figures
    from fercli.prune import read_pruning

    d, paths, _ = made
    with artifacts.open_artifact(str(paths[kind]), None, "test") as f:
        data = {"aligned": lambda: {"clips": artifacts.read_clips(f)}, "model": lambda: {"record": artifacts.read_model_header(f)},
                "report": lambda: {"report": artifacts.read_report(f)[0]}, "pruning": lambda: {"pruning": read_pruning(f, "p", weights=False)}}[kind]()
    out = d / f"{kind}.{fmt}"
    figures.save(figures.for_artifact("clips" if kind == "aligned" else kind, **data), str(out))
    raw = out.read_bytes()
    if fmt == "pdf":
        assert raw[:5] == b"%PDF-" and raw.rstrip().endswith(b"%%EOF") and len(raw) > 2000
        assert b"FontFile2" in raw  # TrueType embedded: text stays text
    else:
        assert b"<svg" in raw and b"<text" in raw  # vector text, not glyph outlines


def test_show_options_and_errors(made, tmp_path):
    d, paths, _ = made
    fercli("show", paths["aligned"], "--clip", "c1", "--frames", "3", "-o", tmp_path / "one.png", check=True)
    one = _png_ok(tmp_path / "one.png")
    fercli("show", paths["aligned"], "-o", tmp_path / "two.png", check=True)
    assert one.shape[0] < _png_ok(tmp_path / "two.png").shape[0]  # one clip row instead of two
    from fercli import figures

    with artifacts.open_artifact(str(paths["report"]), "report", "test") as f:
        report = artifacts.read_report(f)[0]
    texts = [t.get_text() for t in figures.confusion_figure(report, counts=True).axes[0].texts]
    cm = np.asarray(report["pooled"]["confusion"])
    assert texts == [f"{report['pooled']['confusion_normalised'][i][j]:.2f}\n({cm[i, j]})" for i in range(3) for j in range(3)]
    assert_user_error(fercli("show", paths["aligned"], "-o", tmp_path / "x.jpg"), ".png, .pdf or .svg")
    assert_user_error(fercli("show", paths["aligned"], "--clip", "nope", "-o", tmp_path / "x.png"), "no clip with id 'nope'")
    assert_user_error(fercli("show", paths["pruning"], "--step", "5", "-o", tmp_path / "x.png"), "--step")
    assert not (tmp_path / "x.png").exists()
    # evaluate --figure draws the same matplotlib figure, by extension
    assert "<svg" in (d / "cm.svg").read_text()


def _table(path, *extra) -> list[dict]:
    return list(csv.DictReader(io.StringIO(fercli("table", path, *extra, check=True).stdout.decode())))


def test_report_table_has_one_row_per_evaluated_clip(made):
    d, paths, data = made
    rows = _table(paths["report"])
    with artifacts.open_artifact(str(paths["report"]), "report", "test") as f:
        report, predictions = artifacts.read_report(f)
    assert len(rows) == report["pooled"]["n"] == 36
    assert list(rows[0])[:6] == ["clip_id", "subject", "fold", "truth", "prediction", "correct"]
    probs = np.array([[float(r[f"p_{c}"]) for c in report["class_names"]] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    assert [r["prediction"] for r in rows] == [report["class_names"][k] for k in probs.argmax(1)]
    assert np.mean([int(r["correct"]) for r in rows]) == pytest.approx(report["pooled"]["accuracy"])
    clips, _, _ = artifacts.load_clips(data, "test")
    truth = {str(c): clips.class_names[k] for c, k in zip(clips.clip_ids, clips.labels)}
    assert all(truth[r["clip_id"]] == r["truth"] for r in rows)
    # each clip is scored in the fold that held its subject out
    assert {(r["subject"], r["fold"]) for r in rows} == {(f"S{s}", str(s % 3)) for s in range(6)}
    assert len(predictions["probabilities"]) == 36
    jsonl = fercli("table", paths["report"], "--format", "jsonl", check=True).stdout.decode().splitlines()
    assert json.loads(jsonl[0])["clip_id"] == rows[0]["clip_id"]


def test_model_and_pruning_tables(made, tmp_path):
    d, paths, _ = made
    rows = _table(paths["model"], "-o", "-")
    assert [(r["fold"], r["epoch"]) for r in rows] == [(str(k), str(e)) for k in range(3) for e in (1, 2)]
    assert {"loss", "train_acc", "test_acc", "lr"} <= set(rows[0])
    fercli("table", paths["pruning"], "-o", tmp_path / "k.csv", check=True)
    kernels = list(csv.DictReader(open(tmp_path / "k.csv")))
    from fercli.prune import load_pruning

    pr, _, _ = load_pruning(str(paths["pruning"]), "test")
    assert len(kernels) == sum(b.mid_chs for b in pr.blocks)
    for step, ratio in enumerate(pr.schedule):
        assert sum(int(r[f"kept_r{ratio:g}"]) for r in kernels) == sum(pr.kept_counts(step))
    first = [r for r in kernels if r["block"] == "0"]
    best = min(first, key=lambda r: int(r["rank"]))
    assert float(best["se_mean"]) == pytest.approx(float(np.max(pr.blocks[0].mean)), abs=1e-5)


def test_info_shows_fold_results_and_report_accuracy(made):
    d, paths, _ = made
    with artifacts.open_artifact(str(paths["model"]), "model", "test") as f:
        summary = artifacts.summarize(f, str(paths["model"]))
    assert [r["fold"] for r in summary["fold_results"]] == [0, 1, 2] and all(r["epochs"] == 2 for r in summary["fold_results"])
    text = fercli("info", paths["model"], check=True).stdout.decode()
    assert "fold results" in text and "classes:" in text and "config:" in text and "neutral, happy, sad" in text
    acc = summary["fold_results"][1]["test_acc"]
    assert f"{acc:.4f}" in text
    report = json.loads(fercli("info", paths["report"], "--json", check=True).stdout)
    assert report["predictions"] is True and report["samples"] == 36 and 0 <= report["accuracy"] <= 1
    with artifacts.open_artifact(str(paths["report"]), "report", "test") as f:
        assert artifacts.read_report(f)[0]["pooled"]["accuracy"] == report["accuracy"]


# --------------------------------------------------------------------------- timeline (issue 23)


def _two_face_log(path):
    """A `live --csv` log of 30 frames, two faces, windows of 5: face 1 leaves in frames 10-19,
    nobody in frames 20-22."""
    from fercli import live

    classes = ["happy", "surprise"]
    rows, windows = [], []
    for t in range(30):
        present = [f for f in (0, 1) if not (20 <= t <= 22) and not (f == 1 and 10 <= t <= 19)]
        faces = [live.FaceResult(f, (10.0 + 100 * f, 10.0, 60.0 + 100 * f, 60.0), 1.0, np.full((68, 2), 30.0 + 100 * f),
                                 np.array([0.5, 0.5]), np.array([1.0, 2.0, 500.0, 0.1, 0.2, 0.0])) for f in present]
        done = []
        if t % 5 == 4:
            done = [live.WindowResult(t - 4, t, t / 30, "happy", {"happy": (t / 30) if f == 0 else 0.2, "surprise": 1 - ((t / 30) if f == 0 else 0.2)}, 5, 5, f)
                    for f in present] or [live.WindowResult(t - 4, t, t / 30, None, None, 0, 5, None)]
            windows += done
        result = live.FrameResult(t, t / 30, bool(present), None, None, None, faces=faces)
        rows += live.csv_rows(result, done, classes, all_faces=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(live.csv_columns(classes))
        w.writerows(["" if v is None else v for v in r] for r in rows)
    return windows


def test_timeline_of_a_live_csv_with_two_faces(tmp_path):
    from fercli import timeline

    log = tmp_path / "frames.csv"
    _two_face_log(log)
    tl = timeline.read(str(log))
    assert sorted(tl.windows) == [0, 1] and tl.classes == ["happy", "surprise"]
    assert tl.no_face == {20, 21, 22} and set(range(10, 20)) <= tl.frames - tl.found[1]
    assert tl.seconds_per_frame == pytest.approx(1 / 30, rel=1e-3)
    fig = timeline.figure(tl)
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 2 and len(panels[0].patches) == 1 and len(panels[1].patches) == 1  # frames 20-22; 10-22
    magic = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}
    for fmt, head in magic.items():
        out = tmp_path / f"timeline.{fmt}"
        fercli("show", log, "-o", out, check=True)
        assert out.read_bytes()[:len(head)] == head
    assert b"face 1" in (tmp_path / "timeline.svg").read_bytes()


def test_timeline_of_live_json_lines_and_bad_logs(tmp_path):
    windows = _two_face_log(tmp_path / "frames.csv")
    jl = tmp_path / "labels.jsonl"
    jl.write_text("".join(json.dumps(w.as_json()) + "\n" for w in windows))
    fercli("show", jl, "-o", tmp_path / "t.png", check=True)
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    assert_user_error(fercli("show", bad, "-o", tmp_path / "x.png"), "live --csv")
    junk = tmp_path / "junk.jsonl"
    junk.write_text("{not json\n")
    assert_user_error(fercli("show", junk, "-o", tmp_path / "x.png"), "not a fercli live log")
