"""fercli merge: shards back to the unsharded run byte for byte, classes by name, refusals."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fercli import lbptop
from fercli.artifacts import Clips, load_clips, save_clips
from fercli.errors import FercliError
from fercli.merge import merge
from tests.conftest import assert_user_error, fercli


def clips_of(rng, n, classes=("anger", "happy"), size=(12, 10), prefix="c", meta=None, lengths=None):
    lengths = lengths or [int(rng.integers(3, 7)) for _ in range(n)]
    seqs = [rng.integers(0, 256, size=(k, *size), dtype=np.uint8) for k in lengths]
    c = Clips.from_sequences(
        seqs, [i % len(classes) for i in range(n)], list(classes), [f"S{i // 2}" for i in range(n)],
        clip_ids=[f"{prefix}{i}" for i in range(n)], sources=[f"src{i}" for i in range(n)],
    )
    c.meta = dict(meta or {})
    return c


def h5_arrays(path):
    """Every dataset of an artifact as bytes (attributes like ids and times differ by design)."""
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_arrays(a_path, b_path):
    """The same datasets in both artifacts, of the same dtype, shape and bytes."""
    a, b = h5_arrays(a_path), h5_arrays(b_path)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        if a[name].dtype.kind == "O":
            assert list(a[name]) == list(b[name]), name
        else:
            assert a[name].tobytes() == b[name].tobytes(), name


def test_lbptop_shards_merged_equal_unsharded_run(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "in.h5"
    save_clips(str(src), clips_of(rng, 7, meta={"dataset": "synth", "size": 12}), [])
    whole = tmp_path / "whole.h5"
    common = ["--planes", "xt,yt,xy", "--method", "uniform", "--histogram", "--grid", "2x2"]
    assert fercli("lbptop", src, "-o", whole, *common).returncode == 0
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"part{i}.h5")
        proc = fercli("lbptop", src, "-o", shards[-1], "--shard", f"{i}/3", *common)
        assert proc.returncode == 0, proc.stderr.decode()
    merged = tmp_path / "merged.h5"
    proc = fercli("merge", *shards, "-o", merged)
    assert proc.returncode == 0, proc.stderr.decode()
    assert_same_arrays(whole, merged)
    got, _, lineage = load_clips(str(merged), "test")
    assert lineage[-1]["stage"] == "merge" and len(lineage[-1]["inputs"]) == 3
    assert sum(e["stage"] == "lbptop" for e in lineage) == 3  # each shard's entry kept
    assert "shard" not in got.meta and got.meta["dataset"] == "synth"


def test_empty_shard_merges_in_process():
    rng = np.random.default_rng(1)
    clips = clips_of(rng, 3)
    whole = lbptop.lbp_top(clips, histogram=True)
    parts = [lbptop.lbp_top(clips.select(lbptop.shard_indices(3, (i, 5))), histogram=True) for i in range(5)]
    assert sum(len(p) == 0 for p in parts) == 2
    merged = merge(parts, [f"p{i}" for i in range(5)])
    for attr in ("frames", "offsets", "labels", "plane_offsets", "histograms"):
        np.testing.assert_array_equal(getattr(merged, attr), getattr(whole, attr))
    for key in whole.planes:
        np.testing.assert_array_equal(merged.planes[key], whole.planes[key])


def test_classes_reconciled_by_name_and_provenance_meta():
    rng = np.random.default_rng(2)
    a = clips_of(rng, 4, classes=("anger", "happy"), prefix="a", meta={"dataset": "ckplus", "size": 64, "shard": "0/2"})
    b = clips_of(rng, 3, classes=("happy", "sad", "anger"), prefix="b", meta={"dataset": "oulu", "size": 64})
    b.labels[1] = -1  # unlabelled stays unlabelled
    b.split = np.asarray(["train", "test", "train"], dtype=object)
    m = merge([a, b], ["a.h5", "b.h5"])
    assert m.class_names == ["anger", "happy", "sad"]
    names = [m.class_names[k] if k >= 0 else None for k in m.labels]
    expected = [a.class_names[k] for k in a.labels] + [b.class_names[k] if k >= 0 else None for k in b.labels]
    assert names == expected
    assert list(m.split) == ["", "", "", "", "train", "test", "train"] and m.folds is None
    assert m.meta == {"dataset": ["ckplus", "oulu"], "size": 64}
    assert list(m.clip_ids) == [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(3)]


def test_refusals_name_the_difference():
    rng = np.random.default_rng(3)
    a = clips_of(rng, 2, prefix="a")
    cases = [
        (clips_of(rng, 2, size=(12, 11), prefix="b"), "frames of 12x10 gray vs 12x11 gray"),
        (lbptop.lbp_top(clips_of(rng, 2, prefix="b")), "planes none vs xt,yt"),
        (clips_of(rng, 2, prefix="b", meta={"size": 96}), "b.h5 has 'size' parameters"),
    ]
    for other, fragment in cases:
        with pytest.raises(FercliError, match=fragment):
            merge([a, other], ["a.h5", "b.h5"])
    x = lbptop.lbp_top(clips_of(rng, 2, prefix="x"), points=4)
    y = lbptop.lbp_top(clips_of(rng, 2, prefix="y"), points=8)
    with pytest.raises(FercliError, match="different 'lbp' parameters"):
        merge([x, y], ["x.h5", "y.h5"])
    z = clips_of(rng, 2, prefix="z")
    z.landmarks = np.zeros((len(z.frames), 68, 2), np.float32)
    with pytest.raises(FercliError, match="z.h5 has landmarks and a.h5 has none"):
        merge([a, z], ["a.h5", "z.h5"])


def test_cli_duplicate_ids_and_prefix(tmp_path):
    rng = np.random.default_rng(4)
    a, b = tmp_path / "ck.h5", tmp_path / "oulu.h5"
    save_clips(str(a), clips_of(rng, 2, prefix="x"), [])
    save_clips(str(b), clips_of(rng, 3, prefix="x"), [])
    out = tmp_path / "out.h5"
    out.write_bytes(b"old")
    assert_user_error(fercli("merge", a, b, "-o", out), "clip id 'x0'", "--prefix-ids")
    assert out.read_bytes() == b"old"
    proc = fercli("merge", a, b, "-o", out, "--prefix-ids")
    assert proc.returncode == 0, proc.stderr.decode()
    got, _, _ = load_clips(str(out), "test")
    assert list(got.clip_ids) == ["ck:x0", "ck:x1", "oulu:x0", "oulu:x1", "oulu:x2"]
