"""The experiment protocol, attacked the way a reviewer of the paper would: mislabelled
frames, test subjects in training, statistics from test data, classes joined two ways,
trained-on clips reported as held out (thesis 3.3.1, 4.2.7, 4.3.1-4.3.2, 5.3.2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_user_error, fercli
from fercli import artifacts
from fercli.artifacts import Clips
from fercli.errors import FercliError
from train_helpers import fit, tiny_clips, train_to, write

PLAIN = {"dropout": 0, "width": 0.125}


def sequences(subjects=4, classes=("anger", "contempt", "happy", "sadness"), length=8, size=8, prefix="S", seed=0) -> Clips:
    """CK+-like neutral -> apex sequences; pixel (0, 0) of every frame holds its position t."""
    rng = np.random.default_rng(seed)
    seqs, labels, subj, ids = [], [], [], []
    for s in range(subjects):
        for c, _ in enumerate(classes):
            frames = rng.integers(0, 60, (length, size, size), dtype=np.uint8)
            for t in range(length):
                frames[t, 2:, 2 + c % (size - 2)] = 40 + 200 * t // (length - 1)
                frames[t, 0, 0] = t
            seqs.append(frames)
            labels.append(c)
            subj.append(f"{prefix}{s:03d}")
            ids.append(f"{prefix}{s:03d}_{c:03d}")
    return Clips.from_sequences(seqs, labels, list(classes), subj, ids)


def stills(n=12, classes=("Happy", "neutral", "surprise"), size=8, split=None, prefix="fer") -> Clips:
    """FER2013-like one-frame clips, one subject each."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (1, size, size), dtype=np.uint8) for _ in range(n)]
    ids = [f"{prefix}-{i:05d}" for i in range(n)]
    extra = {"split": np.asarray(split, dtype=object)} if split is not None else {}
    return Clips.from_sequences(frames, [i % len(classes) for i in range(n)], list(classes), ids, ids, **extra)


def lineage(seed):
    return [artifacts.lineage_entry("synth", {"seed": seed, "faces": None}, [])]


def load(path):
    clips, ident, lin = artifacts.load_clips(str(path), "test")
    from fercli.protocol import data_origins

    return clips, {**ident, "origins": data_origins(lin)}


def opts(arch="plain-cnn", **kw):
    from fercli.train import RunOptions

    kw.setdefault("config", dict(PLAIN) if arch == "plain-cnn" else {})
    return RunOptions(arch, size=(8, 8), fit=kw.pop("fit", fit(0)), **kw)


# --------------------------------------------------------------------------- 4.3.1 labels


def test_first_last_takes_three_plus_three_frames_of_whole_sequences_never_an_apex_as_neutral(tmp_path):
    """4.3.1: the static CNN learns each ORIGINAL sequence's first 3 frames as neutral and
    its last 3 as its expression; the --ckplus-split clips (a peak->peak clip starts at
    the apex) are refused for that, pointing at the unsplit artifact."""
    from fercli.protocol.samples import SampleSpec, build_samples, clip_labels
    from fercli.temporal import ckplus_split

    whole = sequences()
    whole.folds = np.asarray([int(s[-1]) % 2 for s in whole.subjects])
    split = ckplus_split(whole, 5, "nearest")
    assert set(split.segments) == {"neutral-peak", "neutral-neutral", "peak-peak"}
    assert list(split.sequence_ids[:3]) == [whole.clip_ids[0]] * 3
    whole_h5, split_h5 = write(tmp_path / "aligned.h5", whole), write(tmp_path / "seq.h5", split)
    back, _, _ = artifacts.load_clips(split_h5, "test")
    assert list(back.segments) == list(split.segments) and list(back.sequence_ids) == list(split.sequence_ids)

    assert_user_error(fercli("train", "plain-cnn", split_h5, "--frame", "first-last", "--fold", "0", "--epochs", "0", "-o", tmp_path / "x.h5"),
                      "--ckplus-split", "artifact the split was made from")
    assert not (tmp_path / "x.h5").exists()

    rec = train_to(tmp_path / "cnn.h5", opts(frame="first-last", fold=0), [load(whole_h5)])
    # Chapter 4's seven: contempt left out, neutral added (4.2.4.3)
    assert rec.class_names == ["anger", "happy", "sadness", "neutral"]
    assert rec.extra["partition"]["classes"]["left_out"] == ["contempt"]
    spec = SampleSpec.from_json(rec.extra["data_prep"])
    labels = clip_labels(whole, rec.class_names)
    used = np.flatnonzero(labels >= 0)
    s = build_samples(whole, used, labels, rec.class_names, spec)
    t = s.inputs["image"][:, 0, 0, 0]  # the frame position written into pixel (0, 0)
    neutral = rec.class_names.index("neutral")
    assert set(t[s.labels == neutral].tolist()) == {0, 1, 2}  # onsets only
    assert set(t[s.labels != neutral].tolist()) == {5, 6, 7}  # the apex frames keep their expression
    per_clip = {int(i): s.labels[s.clip_index == i].tolist() for i in used}
    assert all(v == [neutral] * 3 + [int(labels[i])] * 3 for i, v in per_clip.items())
    counts = rec.extra["partition"]["runs"][0]["parts"]
    total = {k: counts["train"]["samples_per_class"][k] + counts["test"]["samples_per_class"][k] for k in rec.class_names}
    assert total == {"anger": 12, "happy": 12, "sadness": 12, "neutral": 36}  # 4 subjects x 3 sequences x 3 + 3

    # The GRU on the split clips gets the same classes and the same folds (4.2.7).
    gru = train_to(tmp_path / "gru.h5", opts("cnn-gru", config={"backbone_config": {"width": 0.125}}, fold=0), [load(split_h5)])
    assert gru.class_names == rec.class_names
    from fercli.protocol import load_model_file

    a, b = load_model_file(str(tmp_path / "cnn.h5"), "t").partition, load_model_file(str(tmp_path / "gru.h5"), "t").partition
    from fercli.protocol.partition import TEST, TRAIN

    assert a.subjects(0, TEST) == b.subjects(0, TEST) and a.subjects(0, TRAIN) == b.subjects(0, TRAIN)
    # ...and the unsplit model's evaluation on its own data scores exactly its test sequences
    from fercli.evaluate import evaluate

    clips, ident = load(whole_h5)
    r = evaluate(load_model_file(str(tmp_path / "cnn.h5"), "t"), clips, identity=ident, latency=False)
    assert r["folds"][0]["clips"] == int((whole.folds == 0).sum() * 3 / 4) and r["folds"][0]["n"] == 6 * r["folds"][0]["clips"]
    with pytest.raises(FercliError, match="ckplus-split"):
        clips, ident = load(split_h5)
        evaluate(load_model_file(str(tmp_path / "cnn.h5"), "t"), clips, identity=ident, latency=False)


def test_class_choice_is_recorded_and_contempt_can_be_kept(tmp_path):
    from fercli.evaluate import evaluate
    from fercli.protocol import load_model_file

    whole = sequences()
    whole.folds = np.asarray([int(s[-1]) % 2 for s in whole.subjects])
    ds = [(whole, {"id": "ck"})]
    rec = train_to(tmp_path / "all.h5", opts(frame="first-last", fold=0, classes=["all"]), ds)
    assert rec.class_names == ["anger", "contempt", "happy", "sadness", "neutral"]
    rec = train_to(tmp_path / "pick.h5", opts(classes=["happy", "Anger"], fold=0), ds)
    assert rec.class_names == ["happy", "anger"] and rec.extra["partition"]["classes"]["left_out"] == ["contempt", "sadness"]
    # evaluate replays the choice: contempt and sadness clips are not scored
    r = evaluate(load_model_file(str(tmp_path / "pick.h5"), "t"), whole, identity={"id": "ck"}, latency=False)
    assert r["folds"][0]["clips"] == int((whole.folds == 0).sum() / 2)


# --------------------------------------------------------------------------- cross-database


def test_cross_database_keeps_the_folded_artifacts_folds_and_never_tests_a_trained_subject(tmp_path):
    """`train ck.h5 fer.h5 --folds all`: CK+'s folds are kept (not recomputed over the union);
    FER2013's official train part trains, its test part is tested, nothing else of it."""
    from fercli.evaluate import evaluate
    from fercli.protocol import load_model_file
    from fercli.protocol.partition import TEST, TRAIN
    from fercli.split import assign_folds

    ck = tiny_clips(classes=["neutral", "happy", "sad"])
    ck.folds = assign_folds(ck, 3, "subject", seed=4)  # a `fercli split --folds 3 --seed 4`
    fer = stills(12, split=["Training"] * 8 + ["PrivateTest"] * 4)
    ck_h5, fer_h5 = write(tmp_path / "ck.h5", ck), write(tmp_path / "fer.h5", fer)
    m = tmp_path / "m.h5"
    train_to(m, opts(all_folds=True), [load(ck_h5), load(fer_h5)])
    mf = load_model_file(str(m), "t")
    rec = mf.partition
    assert rec.class_names == ["neutral", "happy", "sad", "surprise"]
    assert [a.role for a in rec.data] == ["folds from the artifact", "official split"]
    for r, run in enumerate(rec.runs):
        ck_test = sorted(set(ck.subjects[ck.folds == run.fold]))
        assert [s for s in rec.subjects(r, TEST) if s.startswith("S")] == ck_test
        assert not set(rec.subjects(r, TEST)) & set(rec.subjects(r, TRAIN))  # no test subject in training, every fold
        fer_part = rec.data[1].parts[r]
        assert fer_part.tolist() == [TRAIN] * 8 + [TEST] * 4
    # evaluate on ck.h5 reports each fold's own held-out CK+ clips only
    clips, ident = load(ck_h5)
    report = evaluate(mf, clips, identity=ident, latency=False)
    assert [f["n"] for f in report["folds"]] == [int((ck.folds == k).sum()) for k in (0, 1, 2)]
    # ...and on fer.h5 its official test part only, with every fold's weights
    clips, ident = load(fer_h5)
    assert [f["n"] for f in evaluate(mf, clips, identity=ident, latency=False)["folds"]] == [4, 4, 4]


def test_copies_with_other_folds_are_refused_and_other_origins_do_not_collide(tmp_path):
    from fercli.train import train

    a = tiny_clips()
    b = tiny_clips()
    b.folds = (a.folds + 1) % 3  # the same subjects, split another way
    with pytest.raises(FercliError, match="would test subjects it trains on"):
        train(opts(fold=0), [(a, {"id": "a"}), (b, {"id": "b"})])
    # Synthetic data of another seed reuses subject names for other faces: no conflict.
    a_h5 = tmp_path / "a.h5"
    b_h5 = tmp_path / "b.h5"
    artifacts.save_clips(str(a_h5), a, lineage(1))
    b.folds = None
    artifacts.save_clips(str(b_h5), b, lineage(2))
    rec = train(opts(fold=0), [load(a_h5), load(b_h5)])
    assert [d["role"] for d in rec.extra["partition"]["data"]] == ["folds from the artifact", "training only"]


# --------------------------------------------------------------------------- joining


def test_merge_and_train_join_classes_by_one_rule():
    from fercli.merge import merge
    from fercli.train import train

    a = tiny_clips(classes=["Happy", "sad"])
    b = tiny_clips(classes=["happy", "neutral", "SAD"], seed=1)
    b.clip_ids = np.asarray([f"b{i}" for i in range(len(b))], dtype=object)
    merged = merge([a, b], ["a", "b"])
    rec = train(opts(fold=0), [(a, {"id": "a"}), (b, {"id": "b"})])
    assert merged.class_names == rec.class_names == ["Happy", "sad", "neutral"]
    assert np.array_equal(merged.labels[len(a):], np.asarray([[0, 2, 1][c] for c in b.labels]))


# --------------------------------------------------------------------------- evaluate


def test_evaluate_replays_the_record_and_refuses_leaks(tmp_path):
    """--split all on trained-on data and data holding nothing held out are refused with
    one sentence (CLI); a copy with another fold array is scored on the recorded test clips."""
    from fercli.evaluate import evaluate
    from fercli.protocol import load_model_file

    ck = tiny_clips()
    ck_h5 = write(tmp_path / "ck.h5", ck)
    m = tmp_path / "m.h5"
    train_to(m, opts(fold=0), [load(ck_h5)])
    err = assert_user_error(fercli("evaluate", m, ck_h5, "--split", "all", "--no-latency"), "scoring them would leak", "--include-training-data")
    assert "S1" in err  # names the trained subjects
    copy = tiny_clips()
    copy.folds = (copy.folds + 1) % 3
    trained_h5 = write(tmp_path / "trained.h5", copy.select(np.flatnonzero(ck.folds != 0)))
    assert_user_error(fercli("evaluate", m, trained_h5, "--no-latency"), "nothing in it is held out")
    mf = load_model_file(str(m), "t")
    r = evaluate(mf, copy, identity={"path": "copy.h5"}, latency=False)
    assert r["folds"][0]["clips"] == int((ck.folds == 0).sum()) and r["partition"]["runs"][0]["match"] == "copy"
    assert r["folds"][0]["baselines"]["chance"] == pytest.approx(1 / 3) and r["folds"][0]["baselines"]["majority"] == pytest.approx(1 / 3)
    clips, ident = load(ck_h5)
    r = evaluate(mf, clips, identity=ident, split="all", include_training_data=True, latency=False)
    assert r["folds"][0]["n"] == len(ck) and "INCLUDES" in r["folds"][0]["part"]


def test_models_without_a_record_are_evaluated_as_before_and_say_so(tmp_path):
    from fercli.evaluate import evaluate
    from fercli.models import registry
    from fercli.protocol import load_model_file

    model, cfg = registry.build("plain-cnn", 3, {"input_size": 8, "width": 0.125})
    rec = artifacts.ModelRecord("plain-cnn", cfg, registry.state_to_numpy(model), ["neutral", "happy", "sad"],
                                extra={"fold": 1, "partition": {"scheme": "folds", "n_folds": 3, "fold_seed": 0}})
    artifacts.save_model(str(tmp_path / "old.h5"), rec, [])
    r = evaluate(load_model_file(str(tmp_path / "old.h5"), "t"), tiny_clips(), latency=False)
    assert r["partition"]["source"].startswith("reconstructed") and r["folds"][0]["n"] == 12


def test_info_shows_the_partition_record(tmp_path):
    ck = tiny_clips()
    ck_h5 = write(tmp_path / "ck.h5", ck)
    m = tmp_path / "m.h5"
    train_to(m, opts(fold=2, val=0.3), [load(ck_h5)])
    info = json.loads(fercli("info", m, "--json", check=True).stdout)
    p = info["partition"]
    with artifacts.open_artifact(ck_h5, "clips", "t") as f:
        assert p["data"][0]["id"] == artifacts.artifact_identity(f, ck_h5)["id"]
    run = p["runs"][0]
    assert run["fold"] == 2 and run["test"]["subject_ids"] == ["S2", "S5"] and run["test"]["clips"] == 12
    assert run["train"]["subjects"] + run["val"]["subjects"] == 4 and run["val"]["subjects"] == 1
    assert run["test"]["samples_per_class"] == {"neutral": 4, "happy": 4, "sad": 4}
    from fercli.protocol.partition import describe_lines

    human = "\n".join(describe_lines(p))
    assert "fold 2: train" in human and "test 2 subjects / 12 clips" in human and "(S2, S5)" in human


# --------------------------------------------------------------------------- transfer and prune


def test_init_from_a_model_trained_on_other_folds_is_refused(tmp_path):
    """--init-from compares the source's recorded training subjects with this run's test
    subjects, not fold numbers: fold 1 of another seed's folds would leak."""
    from fercli.protocol import load_model_file
    from fercli.split import assign_folds

    clips = tiny_clips()
    clips.folds = None
    s0, s1 = (set(clips.subjects[assign_folds(clips, 3, "subject", seed) == 1]) for seed in (0, 2))
    assert s0 != s1
    cnn = tmp_path / "cnn.h5"
    train_to(cnn, opts(fold=1, n_folds=3), [(clips, {"id": "a"})])
    with pytest.raises(FercliError, match="would leak"):
        train_to(tmp_path / "gru.h5", opts("cnn-gru", fold=1, n_folds=3, fit=fit(0, seed=2)), [(clips, {"id": "a"})],
                 init=load_model_file(str(cnn), "t"))
    assert not (tmp_path / "gru.h5").exists()
    train_to(tmp_path / "gru.h5", opts("cnn-gru", fold=1, n_folds=3), [(clips, {"id": "a"})], init=load_model_file(str(cnn), "t"))


TINY_LB = {"depth": 14, "expansion": 2, "channels": [8, 4, 8, 8, 16, 16]}


@pytest.mark.parametrize("folds_from", ["computed", "fercli split"])
def test_prune_statistics_come_from_the_recorded_training_part_only(tmp_path, folds_from):
    """A model trained with non-default folds (--n-folds 4 --seed 3, or `fercli split
    --folds 4 --seed 5`) is pruned on exactly its training clips, never its test subjects."""
    import torch

    from fercli import prune as P
    from fercli.models import registry
    from fercli.protocol import load_model_file
    from fercli.protocol.samples import SampleSpec, build_samples, clip_labels
    from fercli.split import assign_folds

    clips = tiny_clips(subjects=8)
    if folds_from == "computed":
        clips.folds = None
        train_opts = opts("lb-mbnet", config=dict(TINY_LB), fold=1, n_folds=4, fit=fit(0, seed=3))
        folds = assign_folds(clips, 4, "subject", 3)
    else:
        clips.folds = assign_folds(clips, 4, "subject", 5)
        train_opts = opts("lb-mbnet", config=dict(TINY_LB), fold=1)
        folds = clips.folds
    data = write(tmp_path / "d.h5", clips)
    m = tmp_path / "m.h5"
    train_to(m, train_opts, [load(data)])
    fercli("prune", m, data, "--expansion", "1", "-o", tmp_path / "p.h5", "--device", "cpu", "--batch-size", "7", check=True)
    pr, _, _ = P.load_pruning(str(tmp_path / "p.h5"), "t")
    train_clips = np.flatnonzero(folds != 1)
    assert pr.data["clips"] == pr.samples == len(train_clips) and pr.data["fold"] == 1
    mf = load_model_file(str(m), "t")
    model = registry.from_record(mf.record).eval()
    spec = SampleSpec.from_json(mf.record.extra["data_prep"])
    s = build_samples(clips, train_clips, clip_labels(clips, mf.record.class_names), mf.record.class_names, spec)
    stats, _ = P.se_statistics(model, [[torch.from_numpy(s.inputs["image"]).float() / 255]], len(s))
    for mine, stored in zip(stats, pr.blocks):
        np.testing.assert_allclose(stored.mean, mine.mean, rtol=1e-5, atol=1e-7)
    # the rebuilt model inherits the record: evaluating it scores fold 1's test clips
    from fercli import rebuild as R

    artifacts.save_model(str(tmp_path / "r.h5"), R.rebuild(pr, 0), [], arrays=pr.source_arrays)
    rebuilt = load_model_file(str(tmp_path / "r.h5"), "t")
    assert rebuilt.partition is not None and rebuilt.partition.folds == [1]


# --------------------------------------------------------------------------- small guarantees


def test_clips_copy_shares_frames_and_signals_are_cleared_after_a_stop(tmp_path):
    from fercli import errors

    clips = tiny_clips()
    copy = clips.copy()
    copy.folds = None
    assert np.shares_memory(copy.frames, clips.frames) and clips.folds is not None
    errors.pending_signals.append(15)  # a SIGTERM whose exception an interrupted writer handled
    with pytest.raises(errors.Interrupted):
        artifacts.save_clips(str(tmp_path / "a.h5"), clips, [])
    artifacts.save_clips(str(tmp_path / "b.h5"), clips, [])  # the next write of the process works
    assert (tmp_path / "b.h5").exists() and not (tmp_path / "a.h5").exists()


def test_the_three_split_clips_of_a_sequence_are_used_together():
    """A contempt sequence left out of chapter 4's classes gives no neutral clip either:
    the CNN-GRU sees exactly the sequences the first-last static CNN sees."""
    from fercli.protocol.samples import choose_classes, clip_labels
    from fercli.temporal import ckplus_split

    whole = sequences()
    split = ckplus_split(whole, 5)
    classes = choose_classes([split]).names
    assert classes == ["anger", "happy", "sadness", "neutral"]
    used = clip_labels(split, classes) >= 0
    seq_used = {s for s, u in zip(split.sequence_ids, used) if u}
    assert seq_used == set(whole.clip_ids[clip_labels(whole, classes) >= 0])
    assert used.sum() == 3 * len(seq_used)
