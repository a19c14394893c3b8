"""Identity sampling: one synthetic subject per seed and index (shape, skin tone,
pose, light, background), drawn independently of any label."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from fercli.geometry import apply_matrix, invert
from fercli.synth.facs import _BROWS, _EYE_L, _EYE_R, _INNER_LOWER, _INNER_UPPER, _JAW, _MOUTH, _NOSE_LOW, _OUTER_LOWER, _OUTER_UPPER
from fercli.synth.textures import Texture, _similarity_from_eyes, _soft_mask
from fercli.synth.warp import triangulate


def _neutralise(canon: np.ndarray) -> np.ndarray:
    """Close the lips and lower smiling lip corners to the lip line (a neutral start)."""
    c = canon.copy()
    mid = (c[_INNER_UPPER] + c[_INNER_LOWER]) / 2
    c[_INNER_UPPER, 1] = mid[:, 1] - 0.006
    c[_INNER_LOWER, 1] = mid[:, 1] + 0.006
    # Mouth closed: shift the lower lip up by what the gap was, so lip thickness stays.
    gap = float(np.mean(canon[_INNER_LOWER, 1] - canon[_INNER_UPPER, 1])) - 0.012
    if gap > 0:
        c[_OUTER_LOWER, 1] -= gap * 0.6
        c[[8, 7, 9], 1] -= gap * 0.3
    line = float(np.mean((c[[62, 66], 1])))
    # > 0: corners above the lip line (a smile).  Lowered only half-way: dragging
    # the photograph's deep smile-corner shadows all the way along the lips
    # looks worse than a faint resting smile.
    lift = 0.5 * (line - (c[60, 1] + c[64, 1]) / 2)
    if lift > 0:
        for idx, w in (([48, 54, 60, 64], 1.0), ([49, 53, 59, 55, 61, 63, 67, 65], 0.45), ([50, 52, 58, 56], 0.15)):
            c[idx, 1] += w * lift
    return c


@dataclass
class Subject:
    name: str
    texture: Texture
    neutral: np.ndarray  # (68, 2) canonical shape incl. identity variation
    triangles: np.ndarray  # (T, 3) indices into 68 landmarks + RING
    source_rgba: np.ndarray  # (h, w, 4|2) uint8: toned photograph (RGB or gray) + person mask
    to_source: np.ndarray  # 2x3 canonical -> source pixels
    background: np.ndarray  # (H, W) or (H, W, 3) float32 in [0, 1]
    yaw: float
    roll: float
    iod: float
    centre: np.ndarray
    light_dir: float
    light_amp: float
    expressivity: float


def _shape_variation(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """Identity shape: a few anthropometric modes plus smooth small asymmetry."""
    c = base.copy()
    u = lambda a: rng.uniform(-a, a)  # noqa: E731
    c[_JAW, 0] *= 1 + u(0.08)                      # face width
    lower = c[:, 1] > 0.6
    c[lower, 1] += u(0.12) * (c[lower, 1] - 0.6)   # chin / lower-face length
    chin = np.arange(5, 12)
    c[chin, 0] *= 1 + u(0.1)                       # chin width
    spacing = u(0.04)
    for eye, sign in ((_EYE_L, -1), (_EYE_R, 1)):
        centre = c[eye].mean(0)
        c[eye] = centre + (c[eye] - centre) * (1 + u(0.12))  # eye size
        c[eye, 0] += sign * spacing                           # eye spacing
    brow = u(0.06)
    c[_BROWS, 1] += brow + rng.normal(0, 0.01, 10)             # brow height
    c[_NOSE_LOW, 1] += u(0.06)                                 # nose length
    ncx = c[_NOSE_LOW, 0].mean()
    c[31:36, 0] = ncx + (c[31:36, 0] - ncx) * (1 + u(0.15))    # nose width
    mc = c[_MOUTH].mean(0)
    mouth = c[_MOUTH] - mc
    mouth[:, 0] *= 1 + u(0.12)                                  # mouth width
    thick = 1 + u(0.2)
    outer = np.isin(_MOUTH, np.r_[_OUTER_UPPER, _OUTER_LOWER])
    mouth[outer, 1] *= thick                                    # lip thickness
    c[_MOUTH] = mc + mouth + np.array([0.0, u(0.04)])           # mouth height
    # small smooth asymmetry: a random affine tilt of the lower face
    c += rng.normal(0, 0.008, c.shape)
    return c


def _make_background(rng: np.random.Generator, w: int, h: int, color: bool) -> np.ndarray:
    """A plain-ish studio wall: muted tint, gradient, low-frequency shading, faint texture."""
    ch = 3 if color else 1
    base = rng.uniform(0.2, 0.85)
    tint = (1 + rng.uniform(-0.1, 0.1, ch)) if color else np.ones(1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    grad = rng.uniform(0, 0.25) * ((xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang))
    # shading blotches are luminance only: coloured ones look like a rainbow, not a wall
    blotch = cv2.resize(rng.normal(0, 0.05, (4, 5)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    bg = base * tint.astype(np.float32)[None, None, :] * (1 + grad[..., None]) + blotch[..., None]
    kind = rng.integers(0, 4)
    if kind < 3:
        tex = _wall_texture(int(kind))
        side = int(max(w, h) * rng.uniform(1.0, 1.6))
        tex = cv2.resize(tex, (side, side), interpolation=cv2.INTER_LINEAR)  # one piece: no tiling seams
        oy, ox = rng.integers(0, side - h + 1), rng.integers(0, side - w + 1)
        bg = bg + rng.uniform(0.01, 0.035) * tex[oy:oy + h, ox:ox + w, None]
    bg = np.clip(bg, 0, 1).astype(np.float32)
    return bg if color else bg[..., 0]


@functools.lru_cache(maxsize=4)
def _wall_texture(kind: int) -> np.ndarray:
    """A zero-mean, unit-ish texture from scikit-image's bundled samples."""
    from skimage import data

    img = (data.brick, data.gravel, data.grass)[kind]().astype(np.float32) / 255.0
    img = cv2.GaussianBlur(cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    return ((img - img.mean()) / (img.std() + 1e-6)).astype(np.float32)


def _make_subject(index: int, textures: Sequence[Texture], rng: np.random.Generator, size: tuple[int, int], color: bool, width: int) -> Subject:
    w, h = size
    texture = textures[index % len(textures)]
    if rng.random() < 0.5:
        texture = texture.mirrored()
    to_source = _similarity_from_eyes(texture.landmarks)
    canon = apply_matrix(invert(to_source), texture.landmarks)
    neutral = _shape_variation(rng, _neutralise(canon))
    # skin tone / gamma: applied to the person in the source photograph
    img = texture.image.astype(np.float32) / 255.0
    brightness = rng.uniform(0.72, 1.15)
    gains = brightness * (1 + np.array([rng.uniform(-0.04, 0.1), 0.0, rng.uniform(-0.12, 0.05)]))
    gamma = rng.uniform(0.8, 1.25)
    img = np.clip(img * gains[None, None, :], 0, 1) ** gamma
    img8 = np.round(img * 255).astype(np.uint8)
    if not color:  # gray output: convert once here, then remap 2 channels instead of 4
        img8 = cv2.cvtColor(img8, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([img8, _soft_mask(texture, float(np.hypot(*to_source[:, 0])))])
    ref = min(h, w * 490 / 640)
    iod = ref * rng.uniform(0.16, 0.21)
    centre = np.array([w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.05, 0.05) * h])
    return Subject(
        name=f"S{index + 1:0{width}d}",
        texture=texture,
        neutral=neutral,
        triangles=triangulate(canon),
        source_rgba=np.ascontiguousarray(rgba),
        to_source=to_source,
        background=_make_background(rng, w, h, color),
        yaw=rng.uniform(-10, 10),
        roll=rng.uniform(-6, 6),
        iod=iod,
        centre=centre,
        light_dir=rng.uniform(0, 2 * np.pi),
        light_amp=rng.uniform(0.0, 0.3),
        expressivity=rng.uniform(0.8, 1.2),
    )
