"""Warping: the head's pose (similarity, weak-perspective yaw and pitch) and the
piecewise-affine warp of the photograph onto the posed landmarks, with lip-aware
triangles."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from fercli.faces import MEAN_DEPTH_68


#: Rough depth of each landmark (canonical units, towards the camera), so yaw
#: moves the nose against the cheeks and compresses the far side of the face.
_DEPTH = MEAN_DEPTH_68


#: Anchor ring around the head (canonical units): follows only the head's
#: similarity transform, so the piecewise warp is confined inside it.
_RING_N = 28


_theta = np.linspace(0, 2 * np.pi, _RING_N, endpoint=False)


RING = np.stack([2.1 * np.cos(_theta), 0.55 + 2.25 * np.sin(_theta)], axis=1)


#: Where the face's centre sits (canonical), used for placement in the frame.
FACE_CENTRE = np.array([0.0, 0.7])


def _pose_matrix(iod: float, roll_deg: float, centre: np.ndarray) -> np.ndarray:
    """2x3 canonical -> frame similarity that puts FACE_CENTRE at ``centre``."""
    a = np.radians(roll_deg)
    rot = iod * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = centre - rot @ FACE_CENTRE
    return np.hstack([rot, t[:, None]])


def _project(shape: np.ndarray, yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """Weak-perspective head rotation using per-landmark depth: yaw about the
    vertical axis, then pitch (positive: chin up) about the horizontal axis
    through the face centre; orthographic projection back onto the image."""
    y = np.radians(yaw_deg)
    out = shape.copy()
    out[:, 0] = shape[:, 0] * np.cos(y) + _DEPTH * np.sin(y)
    if pitch_deg:
        p = np.radians(pitch_deg)
        depth = _DEPTH * np.cos(y) - shape[:, 0] * np.sin(y)  # depth after the yaw
        out[:, 1] = FACE_CENTRE[1] + (shape[:, 1] - FACE_CENTRE[1]) * np.cos(p) - depth * np.sin(p)
    return out


def _mouth_layout(canonical: np.ndarray, upper: float, lower: float, drop: float) -> np.ndarray:
    """Landmarks with an idealised open mouth: outer (48-59) and inner (60-67) lip on
    half-ellipses through the real lip corners; ``upper``/``lower`` are the heights
    of the upper/lower halves relative to the half-width, ``drop`` lowers the centre."""
    layout = canonical.copy()
    half = float(canonical[54, 0] - canonical[48, 0]) / 2
    centre = np.array([canonical[48:68, 0].mean(), (canonical[48, 1] + canonical[54, 1]) / 2 + drop])
    outer = np.pi + np.arange(12) * np.pi / 6  # 48 (left corner), 51 (top), 54, 57 (bottom)
    inner = np.pi + np.arange(8) * np.pi / 4   # 60 (left corner), 62 (top), 64, 66 (bottom)
    so, si = np.sin(outer), np.sin(inner)
    layout[48:60] = centre + half * np.stack([np.cos(outer), np.where(so < 0, upper, lower) * so], 1)
    layout[60:68] = centre + half * np.stack([0.78 * np.cos(inner), np.where(si < 0, 0.5 * upper, 0.6 * lower) * si], 1)
    return layout


def _signed_areas(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = points[tri[:, 0]], points[tri[:, 1]], points[tri[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


#: (upper, lower, drop) mouth layouts tried in turn; the first suits the astronaut.
_LAYOUTS = ((0.15, 0.8, 0.06), (0.25, 0.7, 0.08), (0.15, 0.7, 0.04), (0.35, 0.6, 0.1), (0.5, 0.5, 0.08))


@functools.lru_cache(maxsize=8)
def _triangles_for(key: bytes) -> np.ndarray:
    from scipy.spatial import Delaunay

    canonical = np.frombuffer(key, dtype=np.float64).reshape(68, 2)
    source = np.concatenate([canonical, RING])
    fallback = None
    for params in _LAYOUTS:
        layout = np.concatenate([_mouth_layout(canonical, *params), RING])
        tri = Delaunay(layout).simplices.astype(np.int64)
        if not _mouth_topology_ok(tri):
            continue
        inner = np.isin(tri, np.arange(60, 68)).all(1)
        flipped = (np.sign(_signed_areas(source, tri)) != np.sign(_signed_areas(layout, tri))) & ~inner
        if not flipped.any():
            return tri
        fallback = tri if fallback is None else fallback
    # An unusual face: keep a valid topology (teeth may show as slivers when closed).
    return fallback if fallback is not None else Delaunay(source).simplices.astype(np.int64)


def triangulate(canonical: np.ndarray) -> np.ndarray:
    """Fixed triangles over 68 landmarks + the anchor ring, with lip-aware topology.

    Delaunay on the landmarks themselves does not follow the lip contours (an
    edge from the lower lip to the upper inner lip would cut across the teeth).
    So the triangulation is made once per face on a layout whose mouth is an
    idealised open mouth (lip half-ellipses through the real corners): the lips
    become strips and the inner mouth gets its own triangles, which collapse when
    the lips close (the photograph's teeth disappear) and expand when the mouth
    opens (they show).  Layouts whose triangles would be folded on the real
    face (a smear when warped) are skipped.
    """
    return _triangles_for(np.ascontiguousarray(canonical, dtype=np.float64).round(6).tobytes())


def _mouth_topology_ok(tri: np.ndarray) -> bool:
    """Lip contours are edges, and every triangle touching the inner lip stays in the mouth."""
    edges = {tuple(sorted((int(t[i]), int(t[(i + 1) % 3])))) for t in tri for i in range(3)}
    inner = [(60 + i, 60 + (i + 1) % 8) for i in range(8)]
    outer = [(48 + i, 48 + (i + 1) % 12) for i in range(12)]
    touching = tri[np.isin(tri, np.arange(60, 68)).any(1)]
    return all(tuple(sorted(e)) in edges for e in inner + outer) and bool(np.all((touching >= 48) & (touching < 68)))


def _warp_maps(dst_pts: np.ndarray, src_pts: np.ndarray, tri: np.ndarray, global_inv: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Dense remap maps (frame -> source) of a piecewise-affine warp.

    Triangles are rasterised into an id image with ``cv2.fillConvexPoly``; each
    pixel then takes its triangle's affine map (six gathers, vectorised).
    Outside the triangulated hull the global similarity applies, which the ring
    anchors match exactly, so the map is continuous.
    """
    w, h = size
    gx = np.arange(w, dtype=np.float32)
    gy = np.arange(h, dtype=np.float32)[:, None]
    g = global_inv.astype(np.float32)
    map_x = g[0, 0] * gx + g[0, 1] * gy + g[0, 2]
    map_y = g[1, 0] * gx + g[1, 1] * gy + g[1, 2]
    x0, y0 = np.floor(dst_pts.min(0)).astype(int)
    x1, y1 = np.ceil(dst_pts.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return map_x, map_y
    ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
    shift = 4
    scaled = np.round((dst_pts - [x0, y0]) * (1 << shift)).astype(np.int32)
    for k, t in enumerate(tri):
        cv2.fillConvexPoly(ids, scaled[t], int(k), lineType=cv2.LINE_8, shift=shift)
    # affine dst -> src per triangle (solve the 3x3 systems in one batch)
    d = np.concatenate([dst_pts[tri], np.ones((len(tri), 3, 1))], axis=2)  # (T, 3, 3)
    s = src_pts[tri]  # (T, 3, 2)
    ok = np.abs(np.linalg.det(d)) > 1e-9
    coef = np.zeros((len(tri), 3, 2))
    coef[ok] = np.linalg.solve(d[ok], s[ok])  # rows: x, y, 1 coefficients
    coef = coef.astype(np.float32)
    inside = ids >= 0
    if not ok.all():
        inside &= ok[np.maximum(ids, 0)]
    idx = ids[inside]
    yy, xx = np.nonzero(inside)
    xx = (xx + x0).astype(np.float32)
    yy = (yy + y0).astype(np.float32)
    sub_x = map_x[y0:y1, x0:x1]
    sub_y = map_y[y0:y1, x0:x1]
    sub_x[inside] = coef[idx, 0, 0] * xx + coef[idx, 1, 0] * yy + coef[idx, 2, 0]
    sub_y[inside] = coef[idx, 0, 1] * xx + coef[idx, 1, 1] * yy + coef[idx, 2, 1]
    return map_x, map_y
