"""LBP-TOP: local binary patterns on three orthogonal planes (thesis 3.2.4, 3.3.1).

A clip of T frames of H x W is a volume V[t, y, x].  Its three orthogonal plane
families are the XY images V[t, :, :] (appearance), the XT slices V[:, y, :]
(horizontal motion) and the YT slices V[:, :, x] (vertical motion).  Every
pixel of every plane gets an LBP code computed exactly as
``skimage.feature.local_binary_pattern`` does, and the codes are stored as one
code map per frame and plane, so a CNN can treat them as images (3.2.4).

What each map is (m = the margin, ``ceil`` of the largest neighbour offset,
1 for R = 1; T' = T - 2m, H' = H - 2m, W' = W - 2m)::

    xy[j, y', x'] = lbp(V[m + j, :, :])[m + y', m + x']     (frame m + j)
    xt[j, y', x'] = lbp(V[:, m + y', :])[m + j,  m + x']     ((T, W) slice at row m + y')
    yt[j, y', x'] = lbp(V[:, :, m + x'])[m + j,  m + y']     ((T, H) slice at column m + x')

so every plane gives T' maps of H' x W' (10 frames of 64 x 64 -> 8 maps of
62 x 62, as 3.3.1), map j belonging to frame m + j, and only pixels whose
whole circular neighbourhood lies inside the volume are kept (skimage pads
with zeros at the border, which is not texture).

Exactness: the neighbour positions, the bilinear interpolation and the
``>= 0`` threshold repeat skimage's float64 arithmetic operation for operation
(``rp = round(-R sin(2 pi p / P), 5)``, ``cp = round(R cos(...), 5)``, R
passed through a C ``float`` as skimage's Cython signature does, per-row
``dr = (r + rp) - floor(r + rp)``, ``(1 - dr) * top + dr * bottom``), so the
codes equal skimage's code for code, ties included.  The speed comes from
doing it for whole batches of clips at once: integer-offset neighbours are
plain uint8 comparisons, the horizontal interpolation is shared by the
neighbours with the same column offset, and clips are processed in blocks that
fit the CPU cache.

Methods (the issue's names -> skimage's ``method``):

    default -> 'default'      P-bit code, 2**P values
    ror     -> 'ror'          rotation invariant (minimum over rotations)
    uniform -> 'nri_uniform'  uniform patterns kept apart, P(P-1)+3 values (59 for P=8)
    riu2    -> 'uniform'      rotation-invariant uniform, P+2 values (10 for P=8)

Codes are stored as uint8, so default/ror need P <= 8 and uniform P <= 16.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Iterable, Optional, Sequence

import numpy as np

from fercli.artifacts import Clips, shard_indices  # noqa: F401  (shard_indices: `fercli lbptop --shard`)
from fercli.errors import FercliError
from fercli.images import to_gray
from fercli.progress import ProgressFn, report

PLANES = ("xy", "xt", "yt")

#: fercli's method name -> skimage's ``local_binary_pattern`` method name.
METHODS = {"default": "default", "ror": "ror", "uniform": "nri_uniform", "riu2": "uniform"}

#: About this many volume elements per block: the float64 working set of one
#: block (a few arrays of this size) then stays in the L2 cache.
BLOCK_ELEMENTS = 1 << 14


# --------------------------------------------------------------------------- parameters


def neighbour_offsets(points: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) offsets of the P circular neighbours, as skimage computes them."""
    # skimage's Cython signature declares `float R`: the radius goes through a
    # C float (1.1 becomes 1.100000023841858) before the double arithmetic.
    r = float(np.float32(radius))
    angles = 2 * np.pi * np.arange(points, dtype=np.double) / points
    rr = -r * np.sin(angles)
    cc = r * np.cos(angles)
    return np.round(rr, 5), np.round(cc, 5)


def margin(points: int, radius: float) -> int:
    """Pixels lost at each border: the largest neighbour offset, rounded up."""
    rp, cp = neighbour_offsets(points, radius)
    return int(math.ceil(max(np.abs(rp).max(), np.abs(cp).max())))


def n_codes(points: int, method: str) -> int:
    """How many distinct code values ``method`` produces (histogram bins)."""
    if method in ("default", "ror"):
        return 2**points
    if method == "uniform":
        return points * (points - 1) + 3
    if method == "riu2":
        return points + 2
    raise FercliError(f"unknown LBP method '{method}' (choose {', '.join(METHODS)})")


def check_parameters(points: int, radius: float, method: str, planes: Sequence[str]) -> None:
    """One sentence for any parameter the uint8 code maps cannot hold."""
    if method not in METHODS:
        raise FercliError(f"unknown LBP method '{method}' (choose {', '.join(METHODS)})")
    if points < 1:
        raise FercliError(f"--points must be at least 1 (got {points})")
    if not radius > 0 or not math.isfinite(radius):
        raise FercliError(f"--radius must be a positive number (got {radius})")
    if n_codes(points, method) - 1 > 255:
        limit = {"default": 8, "ror": 8, "uniform": 16}.get(method, 254)
        raise FercliError(f"--method {method} with --points {points} gives codes above 255; code maps are uint8, so use --points <= {limit}")
    if not planes:
        raise FercliError("--planes needs at least one of xy, xt, yt")
    for name in planes:
        if name not in PLANES:
            raise FercliError(f"unknown plane '{name}' (choose from xy, xt, yt)")
    if len(set(planes)) != len(planes):
        raise FercliError(f"--planes lists a plane twice ({','.join(planes)})")


# --------------------------------------------------------------------------- code tables


def _bits_of_all_codes(points: int) -> np.ndarray:
    codes = np.arange(2**points, dtype=np.int64)
    return ((codes[:, None] >> np.arange(points)) & 1).astype(np.int64)


@lru_cache(maxsize=None)
def _table(points: int, method: str) -> Optional[np.ndarray]:
    """Map from the default code (bit i = neighbour i) to ``method``'s code.

    Built from skimage's rules in `_texture.pyx`, over all 2**P patterns.
    """
    if method == "default":
        return None
    bits = _bits_of_all_codes(points)
    codes = np.arange(2**points, dtype=np.int64)
    if method == "ror":
        # _bit_rotate_right applied P-1 times, minimum over the chain.
        best = codes.copy()
        chain = codes.copy()
        for _ in range(1, points):
            chain = (chain >> 1) | ((chain & 1) << (points - 1))
            best = np.minimum(best, chain)
        return best.astype(np.uint8)
    if method == "uniform":  # skimage 'nri_uniform'
        p = points
        # skimage counts changes between consecutive neighbours without the
        # wrap-around pair (i = 0 .. P-2).
        changes = np.sum(bits[:, :-1] != bits[:, 1:], axis=1)
        n_ones = bits.sum(axis=1)
        first_one = np.where(n_ones > 0, np.argmax(bits == 1, axis=1), -1)
        first_zero = np.where(n_ones < p, np.argmax(bits == 0, axis=1), -1)
        rot_index = np.where(first_one == 0, n_ones - first_zero, p - first_one)
        out = 1 + (n_ones - 1) * p + rot_index
        out = np.where(n_ones == 0, 0, np.where(n_ones == p, p * (p - 1) + 1, out))
        out = np.where(changes <= 2, out, p * (p - 1) + 2)
        return out.astype(np.uint8)
    if method == "riu2":  # skimage 'uniform'
        changes = np.sum(bits[:, :-1] != bits[:, 1:], axis=1)
        return np.where(changes <= 2, bits.sum(axis=1), points + 1).astype(np.uint8)
    raise ValueError(method)


# --------------------------------------------------------------------------- kernel

#: (rows axis, columns axis, the third axis) of each plane family in a
#: (b, T, H, W) block: XY images span (H, W), XT slices (T, W), YT slices (T, H).
_AXES = {"xy": (2, 3, 1), "xt": (1, 3, 2), "yt": (1, 2, 3)}


@lru_cache(maxsize=256)
def _plan(points: int, radius: float, rows: int, cols: int, m: int) -> tuple:
    """Per neighbour: integer shifts and per-row / per-column interpolation weights.

    skimage evaluates neighbour i of pixel (r, c) at the double position
    (r + rp[i], c + cp[i]); ``dr = pos - floor(pos)`` then depends on r's
    magnitude through rounding, so the weights are vectors, not scalars.
    """
    rp, cp = neighbour_offsets(points, radius)
    h, w = rows - 2 * m, cols - 2 * m
    r_idx = np.arange(m, m + h, dtype=np.float64)
    c_idx = np.arange(m, m + w, dtype=np.float64)
    out = []
    for i in range(points):
        pr, pc = r_idx + rp[i], c_idx + cp[i]
        minr, minc = np.floor(pr), np.floor(pc)
        dr, dc = pr - minr, pc - minc
        fr, fc = int(math.floor(rp[i])), int(math.floor(cp[i]))
        # rp, cp are rounded to 5 decimals, so floor(r + rp) == r + floor(rp)
        # for any realistic size; the slicing below relies on it.
        if not (np.array_equal(minr, r_idx + fr) and np.array_equal(minc, c_idx + fc)):
            raise FercliError(f"images of {rows}x{cols} are too large for exact LBP neighbour positions")
        out.append((fr, fc, None if not dr.any() else dr, None if not dc.any() else dc))
    return tuple(out)


def _shape_along(vec: np.ndarray, axis: int, ndim: int = 4) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = len(vec)
    return vec.reshape(shape)


def _plane_codes(xu8: np.ndarray, xf: np.ndarray, plane: str, points: int, radius: float, method: str, m: int) -> np.ndarray:
    """Codes of one plane family for a (b, T, H, W) block, as (b, T', H', W') uint8.

    ``xf`` is ``xu8`` as float64 (shared by the planes).  Equal, code for code,
    to skimage's LBP of each plane image, restricted to the interior.
    """
    ra, ca, oa = _AXES[plane]
    shape = xu8.shape
    rows, cols = shape[ra], shape[ca]
    h, w = rows - 2 * m, cols - 2 * m
    plan = _plan(points, radius, rows, cols, m)

    def window(arr: np.ndarray, r0: Optional[int], c0: int, full_rows: bool = False) -> np.ndarray:
        index = [slice(None)] * 4
        index[oa] = slice(m, shape[oa] - m)
        index[ra] = slice(None) if full_rows else slice(r0, r0 + h)
        index[ca] = slice(c0, c0 + w)
        return arr[tuple(index)]

    center_u8 = window(xu8, m, m)
    center = window(xf, m, m)
    out_shape = center.shape
    hcache: dict[tuple[int, bytes], np.ndarray] = {}
    value = np.empty(out_shape, dtype=np.float64)
    scratch = np.empty(out_shape, dtype=np.float64)
    bit = np.empty(out_shape, dtype=bool)
    # riu2 counts ones and changes directly only where a 2**P table is too big.
    riu2 = method == "riu2" and points > 16
    if riu2:
        n_ones = np.zeros(out_shape, dtype=np.uint8)
        changes = np.zeros(out_shape, dtype=np.uint8)
        prev = np.empty(out_shape, dtype=np.uint8)
    else:
        code = np.zeros(out_shape, dtype=np.uint8 if points <= 8 else np.uint16)
    shifted = np.empty(out_shape, dtype=code.dtype if not riu2 else np.uint8)

    for i, (fr, fc, dr, dc) in enumerate(plan):
        top0, left0 = m + fr, m + fc
        if dr is None and dc is None:
            # Integer offset: (1-0)*a + 0*b == a exactly, so compare the bytes.
            np.greater_equal(window(xu8, top0, left0), center_u8, out=bit)
        else:
            if dc is None:
                # (1 - 0) * left + 0 * right == left exactly.
                hfull = None
            else:
                key = (fc, dc.tobytes())
                hfull = hcache.get(key)
                if hfull is None:
                    # skimage: top = (1 - dc) * top_left + dc * top_right, for all
                    # rows at once, shared by the neighbours with this column offset.
                    dcv = _shape_along(dc, ca)
                    hfull = window(xf, None, left0, full_rows=True) * (1.0 - dcv)
                    hfull += window(xf, None, left0 + 1, full_rows=True) * dcv
                    hcache[key] = hfull
            if hfull is None:
                top = window(xf, top0, left0)
                bottom = window(xf, top0 + 1, left0) if dr is not None else None
            else:
                index = [slice(None)] * 4
                index[ra] = slice(top0, top0 + h)
                top = hfull[tuple(index)]
                index[ra] = slice(top0 + 1, top0 + 1 + h)
                bottom = hfull[tuple(index)] if dr is not None else None
            if dr is None:
                # (1 - 0) * top + 0 * bottom == top exactly.
                np.greater_equal(top, center, out=bit)
            else:
                drv = _shape_along(dr, ra)
                # skimage: (1 - dr) * top + dr * bottom, then texture - centre >= 0,
                # which for finite doubles is exactly texture >= centre.
                np.multiply(top, 1.0 - drv, out=value)
                np.multiply(bottom, drv, out=scratch)
                np.add(value, scratch, out=value)
                np.greater_equal(value, center, out=bit)
        bit_u8 = bit.view(np.uint8)
        if riu2:
            n_ones += bit_u8
            if i:
                np.not_equal(bit_u8, prev, out=shifted)
                changes += shifted
            prev[...] = bit_u8
        else:
            # bit * 2**i: numpy's multiply is vectorised, its left_shift is not.
            np.multiply(bit_u8, code.dtype.type(1 << i), out=shifted)
            code |= shifted
    if riu2:
        # skimage 'uniform': number of ones if at most 2 changes, else P + 1.
        return np.where(changes <= 2, n_ones, np.uint8(points + 1)).astype(np.uint8)
    table = _table(points, method)
    if table is None:
        return code.astype(np.uint8, copy=False)
    return np.take(table, code)


def lbp_image(image: np.ndarray, points: int = 8, radius: float = 1.0, method: str = "default") -> np.ndarray:
    """LBP codes of one gray image (H, W), interior only (H - 2m, W - 2m).

    Equals ``local_binary_pattern(image, P, R, METHODS[method])[m:-m, m:-m]``.
    """
    check_parameters(points, radius, method, ["xy"])
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 2:
        raise FercliError(f"lbp_image needs one (H, W) gray image, got shape {image.shape}")
    m = margin(points, radius)
    if min(image.shape) < 2 * m + 1:
        raise FercliError(f"images of {image.shape[0]}x{image.shape[1]} are smaller than the {2 * m + 1}x{2 * m + 1} LBP neighbourhood")
    # One image is a 1-clip volume of 2m+1 copies; its XY map at the middle frame.
    vol = np.broadcast_to(image, (1, 2 * m + 1, *image.shape))
    return lbp_top_volume(vol, ["xy"], points, radius, method)["xy"][0, 0]


def lbp_top_volume(
    volume: np.ndarray,
    planes: Sequence[str] = ("xt", "yt"),
    points: int = 8,
    radius: float = 1.0,
    method: str = "default",
) -> dict[str, np.ndarray]:
    """LBP-TOP code maps of one clip (T, H, W) or a batch of equal clips (B, T, H, W).

    Returns ``{plane: (T', H', W')}`` or ``{plane: (B, T', H', W')}`` uint8 (see
    the module docstring for which slice each map comes from).
    """
    planes = list(planes)
    check_parameters(points, radius, method, planes)
    volume = np.asarray(volume)
    if volume.dtype != np.uint8:
        raise FercliError(f"LBP-TOP needs uint8 gray frames, got {volume.dtype}")
    single = volume.ndim == 3
    if single:
        volume = volume[None]
    if volume.ndim != 4:
        raise FercliError(f"LBP-TOP needs (T, H, W) or (B, T, H, W) gray frames, got shape {volume.shape}")
    m = margin(points, radius)
    b, t, hh, ww = volume.shape
    if t < 2 * m + 1:
        raise FercliError(f"clips of {t} frames are too short for LBP-TOP with radius {radius}: it needs at least {2 * m + 1}")
    if min(hh, ww) < 2 * m + 1:
        raise FercliError(f"frames of {hh}x{ww} are smaller than the {2 * m + 1}x{2 * m + 1} LBP neighbourhood")
    out = {name: np.empty((b, t - 2 * m, hh - 2 * m, ww - 2 * m), dtype=np.uint8) for name in planes}
    # Blocks of whole clips small enough for the float64 working set to stay
    # in cache: the arithmetic is then compute-bound instead of memory-bound.
    step = max(1, BLOCK_ELEMENTS // (t * hh * ww))
    xf = None
    for s in range(0, b, step):
        block = np.ascontiguousarray(volume[s : s + step])
        if xf is None or xf.shape != block.shape:
            xf = np.empty(block.shape, dtype=np.float64)
        np.copyto(xf, block)
        for name in planes:
            out[name][s : s + step] = _plane_codes(block, xf, name, points, radius, method, m)
    return {k: v[0] for k, v in out.items()} if single else out


# --------------------------------------------------------------------------- frames


def check_sequences(sequences: Iterable[np.ndarray], points: int = 8, radius: float = 1.0, ids: Optional[Sequence[str]] = None) -> None:
    """One sentence if clips are too short for LBP-TOP or their frame sizes differ."""
    m = margin(points, radius)
    seqs = list(sequences)
    names = list(ids) if ids is not None else [f"#{i}" for i in range(len(seqs))]
    sizes = {}
    short = []
    for name, seq in zip(names, seqs):
        if len(seq) < 2 * m + 1:
            short.append((name, len(seq)))
        if len(seq):
            sizes.setdefault(tuple(np.shape(seq)[1:3]), name)
    if short:
        first = ", ".join(f"{n} ({k} frames)" for n, k in short[:3])
        raise FercliError(f"{len(short)} clip(s) have fewer than the {2 * m + 1} frames LBP-TOP needs (first: {first}); run fercli resample -n 10 first")
    if len(sizes) > 1:
        (s1, n1), (s2, n2) = list(sizes.items())[:2]
        raise FercliError(f"clips have mixed frame sizes ({s1[0]}x{s1[1]} in {n1}, {s2[0]}x{s2[1]} in {n2}); align them to one --size first")


def lbp_top_sequences(
    sequences: Sequence[np.ndarray],
    planes: Sequence[str] = ("xt", "yt"),
    points: int = 8,
    radius: float = 1.0,
    method: str = "default",
) -> list[dict[str, np.ndarray]]:
    """LBP-TOP of a list of clips (each (T, H, W) uint8, any lengths, one frame size)."""
    check_parameters(points, radius, method, planes)
    sequences = [to_gray(np.asarray(s)) for s in sequences]
    check_sequences(sequences, points, radius)
    if not sequences:
        return []
    clips = Clips.from_sequences(sequences, [-1] * len(sequences), [], [""] * len(sequences))
    out = lbp_top(clips, planes=planes, points=points, radius=radius, method=method)
    return [{k: out.clip_planes(k, i) for k in planes} for i in range(len(sequences))]


# --------------------------------------------------------------------------- histograms


def block_edges(size: int, parts: int) -> np.ndarray:
    """Block boundaries: ``parts`` near-equal blocks (the first ones smaller)."""
    return (np.arange(parts + 1) * size) // parts


#: Codes binned per step of :func:`histograms` (bounds its int64 index to ~32 MiB).
HISTOGRAM_CODES_PER_STEP = 1 << 22


def histograms(maps: dict[str, np.ndarray], offsets: np.ndarray, planes: Sequence[str], bins: int, grid: tuple[int, int]) -> np.ndarray:
    """The classic LBP-TOP descriptor: per clip, per block, per plane a code histogram.

    ``grid`` is (columns, rows) of blocks over the H' x W' map area; each
    histogram counts the codes of all the clip's maps in that block and is
    L1-normalised (sums to 1).  Layout of a row: (block_row, block_col, plane,
    bin), the per-block concatenation of Zhao & Pietikainen's LBP-TOP.
    """
    gx, gy = grid
    n = len(offsets) - 1
    first = maps[planes[0]]
    h, w = first.shape[1:]
    by = np.searchsorted(block_edges(h, gy), np.arange(h), side="right") - 1
    bx = np.searchsorted(block_edges(w, gx), np.arange(w), side="right") - 1
    block_id = (by[:, None] * gx + bx[None, :]).astype(np.int64)
    nblocks = gx * gy
    out = np.empty((n, nblocks * len(planes) * bins), dtype=np.float32)
    # Clips a few at a time: the int64 bin index of every code would be 8x the maps,
    # the float64 counts of every clip 2x the descriptor.
    per_map = max(1, h * w)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and offsets[stop + 1] - offsets[start] <= HISTOGRAM_CODES_PER_STEP // per_map:
            stop += 1
        lo, hi = int(offsets[start]), int(offsets[stop])
        owner = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(offsets[start:stop + 1]))
        part = np.zeros((stop - start, nblocks, len(planes), bins), dtype=np.float64)
        for p, name in enumerate(planes):
            codes = maps[name][lo:hi]
            if len(codes) == 0:
                continue
            index = (owner[:, None, None] * nblocks + block_id[None]) * bins + codes
            counts = np.bincount(index.ravel(), minlength=(stop - start) * nblocks * bins)
            part[:, :, p, :] = counts.reshape(stop - start, nblocks, bins)
        totals = part.sum(axis=3, keepdims=True)
        np.divide(part, totals, out=part, where=totals > 0)
        out[start:stop] = part.reshape(stop - start, -1)
        start = stop
    return out


# --------------------------------------------------------------------------- clips


def check_clips(clips: Clips, planes: Sequence[str], points: int, radius: float, method: str,
                histogram: bool = False, grid: tuple[int, int] = (4, 4), index: Optional[np.ndarray] = None) -> None:
    """Refuse clips LBP-TOP cannot code: frames smaller than the neighbourhood, clips
    shorter than it, a histogram grid that does not fit.  Needs only the clip lengths
    and the frame shape (never the frames), so a streaming caller checks the whole input
    -- or the clips ``index`` of it, a shard -- on the reader's lazy header before any work."""
    check_parameters(points, radius, method, planes)
    m = margin(points, radius)
    index = np.arange(len(clips)) if index is None else np.asarray(index, dtype=np.int64)
    lengths = clips.lengths[index]
    clip_ids = np.asarray(clips.clip_ids)[index]
    hh, ww = clips.frames.shape[1:3]
    if len(index) and min(hh, ww) < 2 * m + 1:
        raise FercliError(f"frames of {hh}x{ww} are smaller than the {2 * m + 1}x{2 * m + 1} LBP neighbourhood of radius {radius}")
    short = np.flatnonzero(lengths < 2 * m + 1)
    if len(short):
        first = ", ".join(f"{clip_ids[i]} ({int(lengths[i])} frames)" for i in short[:3])
        raise FercliError(
            f"{len(short)} clip(s) have fewer than the {2 * m + 1} frames LBP-TOP needs (first: {first}); "
            f"run fercli resample -n 10 first"
        )
    h2, w2 = max(hh - 2 * m, 0), max(ww - 2 * m, 0)
    if histogram:
        gx, gy = grid
        if gx < 1 or gy < 1 or gx > w2 or gy > h2:
            raise FercliError(f"--grid {gx}x{gy} does not fit code maps of {w2}x{h2} (need 1 <= columns <= {w2}, 1 <= rows <= {h2})")


def lbp_top(
    clips: Clips,
    planes: Sequence[str] = ("xt", "yt"),
    points: int = 8,
    radius: float = 1.0,
    method: str = "default",
    histogram: bool = False,
    grid: tuple[int, int] = (4, 4),
    progress: Optional[ProgressFn] = None,
) -> Clips:
    """LBP-TOP code maps for every clip, stored beside its frames (thesis 3.2.4).

    Returns a copy of ``clips`` with ``planes[name]`` (M, H', W') uint8 and
    ``plane_offsets`` (clip i owns maps ``plane_offsets[i]:plane_offsets[i+1]``,
    T_i - 2m of them), optionally ``histograms`` (N, D) float32, and the
    parameters in ``meta['lbp']``.  Frames and all other data are kept, so one
    artifact feeds every stream of chapter 3.  Colour frames are converted to
    gray first (:func:`to_gray`).
    """
    planes = list(planes)
    check_clips(clips, planes, points, radius, method, histogram, grid)
    m = margin(points, radius)
    gray = to_gray(clips.frames)
    lengths = clips.lengths
    hh, ww = gray.shape[1:3]
    h2, w2 = max(hh - 2 * m, 0), max(ww - 2 * m, 0)

    per_clip = np.maximum(lengths - 2 * m, 0)
    plane_offsets = np.zeros(len(clips) + 1, dtype=np.int64)
    np.cumsum(per_clip, out=plane_offsets[1:])
    total = int(plane_offsets[-1])
    maps = {name: np.empty((total, h2, w2), dtype=np.uint8) for name in planes}

    # Equal-length clips are stacked into (B, T, H, W) batches; a dataset of
    # ragged clips is a few such batches, one per length.
    done = 0
    report(progress, 0, len(clips))
    chunk = max(1, (1 << 22) // max(1, int(lengths.max(initial=1)) * hh * ww))
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        for s in range(0, len(members), chunk):
            idx = members[s : s + chunk]
            frame_idx = clips.offsets[idx][:, None] + np.arange(length)
            codes = lbp_top_volume(gray[frame_idx], planes, points, radius, method)
            map_idx = (plane_offsets[idx][:, None] + np.arange(length - 2 * m)).ravel()
            for name in planes:
                maps[name][map_idx] = codes[name].reshape(-1, h2, w2)
            done += len(idx)
            report(progress, done, len(clips))

    out = clips.copy()
    out.planes = maps
    out.plane_offsets = plane_offsets
    out.histograms = None
    meta = dict(clips.meta)
    meta["lbp"] = {
        "planes": planes,
        "points": int(points),
        "radius": float(radius),
        "method": method,
        "skimage_method": METHODS[method],
        "margin": m,
        "codes": n_codes(points, method),
        "map_shape": [h2, w2],
        "gray_from_color": bool(clips.is_color and clips.frames.shape[-1] == 3),
    }
    meta.pop("lbp_histogram", None)
    if histogram:
        bins = n_codes(points, method)
        out.histograms = histograms(maps, plane_offsets, planes, bins, grid)
        meta["lbp_histogram"] = {
            "grid": [int(grid[0]), int(grid[1])],
            "bins": bins,
            "layout": ["block_row", "block_col", "plane", "bin"],
            "planes": planes,
            "normalisation": "l1 per block and plane",
            "dim": int(out.histograms.shape[1]),
        }
    out.meta = meta
    return out
