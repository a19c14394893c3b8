"""fercli lbptop: code-for-code equality with skimage on every plane, shapes, histograms, CLI."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from fercli import lbptop
from fercli.artifacts import Clips, load_clips, save_clips
from fercli.errors import FercliError
from tests.conftest import assert_user_error, fercli


def tie_volume(rng, shape):
    """Random volume mixing full-range noise with few-level regions.

    Few gray levels make the interpolated neighbour land within rounding error
    of the centre, where only skimage's exact float64 arithmetic (per-row
    weights, operation order) gives the same bit.
    """
    full = rng.integers(0, 256, size=shape, dtype=np.uint8)
    few = (rng.integers(0, 3, size=shape) * 127).astype(np.uint8)
    mask = rng.random(shape) < 0.6
    return np.where(mask, few, full).astype(np.uint8)


def skimage_planes(vol, points, radius, method):
    """The reference: skimage's LBP of every XY image, XT slice and YT slice."""
    sk = lbptop.METHODS[method]
    m = lbptop.margin(points, radius)
    t, h, w = vol.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xy = np.stack([local_binary_pattern(vol[m + j], points, radius, sk)[m : h - m, m : w - m] for j in range(t - 2 * m)])
        xt = np.stack([local_binary_pattern(vol[:, y, :], points, radius, sk)[m : t - m, m : w - m] for y in range(m, h - m)], axis=1)
        yt = np.stack([local_binary_pattern(vol[:, :, x], points, radius, sk)[m : t - m, m : h - m] for x in range(m, w - m)], axis=2)
    return {"xy": xy, "xt": xt, "yt": yt}


# P/R variants; default and ror stop at P = 8 (2**P codes in uint8 maps).
CASES = [
    (points, radius, method)
    for points, radius in [(8, 1.0), (4, 1.0), (8, 2.0), (8, 1.5), (6, 0.7), (12, 1.3), (16, 2.0), (24, 3.0)]
    for method in ("default", "ror", "uniform", "riu2")
    if lbptop.n_codes(points, method) <= 256
]


@pytest.mark.parametrize("points,radius,method", CASES)
def test_codes_equal_skimage_on_every_plane(points, radius, method):
    rng = np.random.default_rng(points * 100 + int(radius * 10))
    m = lbptop.margin(points, radius)
    batch = np.stack([tie_volume(rng, (2 * m + 4, 2 * m + 9, 2 * m + 7)) for _ in range(2)])
    ours = lbptop.lbp_top_volume(batch, ("xy", "xt", "yt"), points, radius, method)
    for b in range(len(batch)):
        ref = skimage_planes(batch[b], points, radius, method)
        for plane in ("xy", "xt", "yt"):
            assert ours[plane].dtype == np.uint8
            assert ours[plane][b].shape == ref[plane].shape
            np.testing.assert_array_equal(ours[plane][b], ref[plane].astype(np.uint8), err_msg=f"{plane} {method} P={points} R={radius}")


def test_tie_data_needs_exact_arithmetic():
    """The data above would catch an interpolation with one weight per neighbour
    instead of skimage's per-row rounding: such a version differs from skimage."""
    rng = np.random.default_rng(3)
    img = (rng.integers(0, 3, size=(96, 96)) * 127).astype(np.uint8)
    rp, cp = lbptop.neighbour_offsets(8, 1)
    f = img.astype(np.float64)
    centre = f[1:-1, 1:-1]
    naive = np.zeros(centre.shape, np.int64)
    for i in range(8):
        fr, fc = int(np.floor(rp[i])), int(np.floor(cp[i]))
        dr, dc = rp[i] - fr, cp[i] - fc
        # skimage's corners: floor and ceil of the position (equal when integral)
        gr, gc = fr + (dr > 0), fc + (dc > 0)
        a = f[1 + fr : 95 + fr, 1 + fc : 95 + fc]
        b = f[1 + fr : 95 + fr, 1 + gc : 95 + gc]
        c = f[1 + gr : 95 + gr, 1 + fc : 95 + fc]
        d = f[1 + gr : 95 + gr, 1 + gc : 95 + gc]
        v = (1 - dr) * ((1 - dc) * a + dc * b) + dr * ((1 - dc) * c + dc * d)
        naive |= ((v - centre) >= 0).astype(np.int64) << i
    ref = local_binary_pattern(img, 8, 1, "default")[1:-1, 1:-1]
    assert np.any(naive != ref)
    np.testing.assert_array_equal(lbptop.lbp_image(img), ref)


def test_thesis_shapes_and_slices():
    """10 frames of 64x64 -> 8 maps of 62x62 per plane (3.3.1); map j is frame j+1."""
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 256, size=(10, 64, 64), dtype=np.uint8)
    out = lbptop.lbp_top_volume(vol, ("xy", "xt", "yt"))
    for plane in ("xy", "xt", "yt"):
        assert out[plane].shape == (8, 62, 62)
    np.testing.assert_array_equal(out["xy"][3], local_binary_pattern(vol[4], 8, 1)[1:-1, 1:-1])
    np.testing.assert_array_equal(out["xt"][:, 10, :], local_binary_pattern(vol[:, 11, :], 8, 1)[1:-1, 1:-1])
    np.testing.assert_array_equal(out["yt"][:, :, 20], local_binary_pattern(vol[:, :, 21], 8, 1)[1:-1, 1:-1])


def test_blocking_does_not_change_codes(monkeypatch):
    rng = np.random.default_rng(1)
    batch = tie_volume(rng, (7, 5, 12, 11))
    big = lbptop.lbp_top_volume(batch, ("xy", "xt", "yt"), 8, 1.0, "uniform")
    monkeypatch.setattr(lbptop, "BLOCK_ELEMENTS", 1)
    small = lbptop.lbp_top_volume(batch, ("xy", "xt", "yt"), 8, 1.0, "uniform")
    for plane in big:
        np.testing.assert_array_equal(big[plane], small[plane])


def ragged_clips(rng, lengths=(3, 6, 4, 6, 5), size=(14, 17), color=False):
    shape = (*size, 3) if color else size
    seqs = [rng.integers(0, 256, size=(n, *shape), dtype=np.uint8) for n in lengths]
    k = len(lengths)
    return Clips.from_sequences(seqs, [i % 3 for i in range(k)], ["a", "b", "c"], [f"S{i // 2}" for i in range(k)])


def test_ragged_clips_keep_frames_and_per_clip_maps():
    rng = np.random.default_rng(2)
    clips = ragged_clips(rng)
    out = lbptop.lbp_top(clips, ("xt", "yt"), method="riu2")
    np.testing.assert_array_equal(out.frames, clips.frames)
    np.testing.assert_array_equal(out.plane_offsets, np.concatenate([[0], np.cumsum(clips.lengths - 2)]))
    for i in range(len(clips)):
        ref = lbptop.lbp_top_volume(clips.clip(i), ("xt", "yt"), method="riu2")
        for plane in ("xt", "yt"):
            np.testing.assert_array_equal(out.clip_planes(plane, i), ref[plane])
    assert out.meta["lbp"]["skimage_method"] == "uniform" and out.meta["lbp"]["codes"] == 10
    out.validate()


def test_colour_frames_use_opencv_luma():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(4)
    clips = ragged_clips(rng, lengths=(4, 3), color=True)
    gray = lbptop.to_gray(clips.frames)
    np.testing.assert_array_equal(gray, np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clips.frames]))
    luma = clips.frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(gray - luma).max() <= 1.0  # BT.601, RGB order
    out = lbptop.lbp_top(clips, ("xy",))
    ref = lbptop.lbp_top_volume(gray[:4], ("xy",))["xy"]
    np.testing.assert_array_equal(out.clip_planes("xy", 0), ref)
    assert out.meta["lbp"]["gray_from_color"] is True
    assert out.frames.ndim == 4  # the colour frames themselves are kept


def test_histogram_descriptor():
    rng = np.random.default_rng(5)
    clips = ragged_clips(rng, lengths=(5, 4))
    out = lbptop.lbp_top(clips, ("xy", "xt", "yt"), method="uniform", histogram=True, grid=(3, 2))
    bins = 59
    assert out.histograms.shape == (2, 2 * 3 * 3 * bins) and out.histograms.dtype == np.float32
    h = out.histograms.reshape(2, 2, 3, 3, bins)  # (clip, block_row, block_col, plane, bin)
    np.testing.assert_allclose(h.sum(axis=-1), 1.0, rtol=1e-6)
    # clip 1, block row 1, block col 2, plane yt, by hand
    maps = out.clip_planes("yt", 1)  # (2, 12, 15)
    ys, xs = lbptop.block_edges(12, 2), lbptop.block_edges(15, 3)
    block = maps[:, ys[1] : ys[2], xs[2] : xs[3]]
    expected = np.bincount(block.ravel(), minlength=bins) / block.size
    np.testing.assert_allclose(h[1, 1, 2, 2], expected, rtol=1e-6)


def test_stage_errors():
    rng = np.random.default_rng(6)
    with pytest.raises(FercliError, match="fewer than the 3 frames"):
        lbptop.lbp_top(ragged_clips(rng, lengths=(4, 2)))
    with pytest.raises(FercliError, match="fewer than the 5 frames"):
        lbptop.lbp_top(ragged_clips(rng, lengths=(4, 6)), radius=2)
    with pytest.raises(FercliError, match="mixed frame sizes"):
        lbptop.lbp_top_sequences([np.zeros((4, 8, 8), np.uint8), np.zeros((4, 9, 8), np.uint8)])
    with pytest.raises(FercliError, match="uint8"):
        lbptop.check_parameters(16, 1, "default", ["xt"])
    with pytest.raises(FercliError, match="grid"):
        lbptop.lbp_top(ragged_clips(rng), histogram=True, grid=(40, 2))
    seqs = lbptop.lbp_top_sequences([rng.integers(0, 256, (4, 8, 8), dtype=np.uint8), rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)])
    assert [s["xt"].shape for s in seqs] == [(2, 6, 6), (1, 6, 6)]


# --------------------------------------------------------------------------- CLI


def test_cli_writes_planes_beside_frames(tmp_path):
    rng = np.random.default_rng(7)
    clips = ragged_clips(rng)
    src = tmp_path / "in.h5"
    save_clips(str(src), clips, [])
    out = tmp_path / "out.h5"
    proc = fercli("lbptop", src, "-o", out, "--planes", "xy,yt", "--method", "ror", "--grid", "2x2")
    assert proc.returncode == 0, proc.stderr.decode()
    got, _, lineage = load_clips(str(out), "test")
    np.testing.assert_array_equal(got.frames, clips.frames)
    assert sorted(got.planes) == ["xy", "yt"]
    ref = lbptop.lbp_top_volume(clips.clip(1), ("xy", "yt"), method="ror")
    np.testing.assert_array_equal(got.clip_planes("yt", 1), ref["yt"])
    assert got.histograms is not None and got.histograms.shape[0] == len(clips)
    assert lineage[-1]["stage"] == "lbptop"
    assert lineage[-1]["parameters"]["planes"] == ["xy", "yt"] and lineage[-1]["parameters"]["grid"] == [2, 2]
    with h5py.File(out) as f:
        assert json.loads(f.attrs["fercli_meta"])["lbp"]["method"] == "ror"


def test_cli_pipe_and_errors(tmp_path):
    rng = np.random.default_rng(8)
    src = tmp_path / "in.h5"
    save_clips(str(src), ragged_clips(rng, lengths=(3, 4)), [])
    proc = fercli("lbptop", "-", "-o", "-", input=src.read_bytes())
    assert proc.returncode == 0 and proc.stdout[:8] == b"\x89HDF\r\n\x1a\n"
    short = tmp_path / "short.h5"
    save_clips(str(short), ragged_clips(rng, lengths=(4, 2)), [])
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous")
    assert_user_error(fercli("lbptop", short, "-o", out), "fewer than the 3 frames")
    assert_user_error(fercli("lbptop", src, "-o", out, "--points", "12"), "--points <= 8")
    assert out.read_bytes() == b"previous"
    # the option checks the CLI relies on, without a process each
    for args, fragment in [
        ((8, 1.0, "default", ["xy", "zz"]), "unknown plane"),
        ((8, 1.0, "lbp", ["xt"]), "unknown LBP method"),
        ((8, 0.0, "default", ["xt"]), "--radius"),
        ((8, 1.0, "default", ["xt", "xt"]), "twice"),
    ]:
        with pytest.raises(FercliError, match=fragment):
            lbptop.check_parameters(*args)
