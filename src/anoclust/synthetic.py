"""Built-in synthetic defect images for the demo and the tests (numpy + PIL, deterministic).

Each image draws from its own generator seeded by ``(seed, split, class, index)``, so an
image does not change when counts or other classes change. Defect types:

``scratch``  long thin straight bright or dark line, 40-70% of the image long, any angle
``spot``     filled dark disc, radius 4-8% of the image size
``crack``    short jagged thin dark polyline with one or two branches
``stain``    large soft coloured blotch (optional type)
``hole``     small near-black disc with a bright rim (optional type)
``ring``     thin bright circle outline, radius 8-14% of the image size (optional type)
``dots``     cluster of 6-12 tiny dark dots (optional type)
``streak``   wide soft bright band across the image (optional type)

Masks are the pixels where the defect covers at least half of the pixel (the stain: where its
opacity is at least 0.5), written as 0/255 PNGs.
"""

from __future__ import annotations

import math
import os
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from anoclust.errors import AnoclustError

DEFECT_TYPES = ("scratch", "spot", "crack", "stain", "hole", "ring", "dots", "streak")
TEXTURE_CLASSES = ("stripes_h", "stripes_d", "blotches", "grain", "pits")
KINDS = ("local", "texture", "variable", "aligned")
# Strips: defects small against the strip's length, which squashing to a square distorts most.
STRIP_CLASSES = ("spot", "crack", "dots", "ring")

# (centre x, centre y, inner radius, object coverage): where defects may go on an object.
Region = tuple[float, float, float, np.ndarray]


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    ints = [int(seed) % 2**63] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(ints)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return xx, yy


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    low = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(low, "F").resize((size, size), Image.Resampling.BICUBIC))


def _surface(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gray, lightly tinted grainy surface; brightness and texture vary between images."""
    g = (
        rng.uniform(0.40, 0.60)
        + rng.uniform(0.03, 0.07) * _smooth_noise(rng, size, int(rng.integers(3, 8)))
        + rng.uniform(0.01, 0.03) * _smooth_noise(rng, size, max(4, size // 4))
        + rng.normal(0.0, rng.uniform(0.01, 0.03), (size, size)).astype(np.float32)
    )
    tint = rng.normal(0.0, 0.025, 3).astype(np.float32)
    return np.clip(g[..., None] + tint, 0.0, 1.0)


def _seg_dist(x0: float, y0: float, x1: float, y1: float, size: int) -> np.ndarray:
    xx, yy = _grid(size)
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    return np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))


def _centre(rng: np.random.Generator, size: int, hx: float, hy: float, region: Region | None):
    if region is not None:  # anywhere in the inner half of the object
        ox, oy, r, _ = region
        rad, ang = 0.5 * r * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
        return ox + rad * math.cos(ang), oy + rad * math.sin(ang)
    m = 2.0
    hx, hy = min(hx, size / 2 - m - 1), min(hy, size / 2 - m - 1)
    return rng.uniform(m + hx, size - m - hx), rng.uniform(m + hy, size - m - hy)


def _dark(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    return img * np.float32(rng.uniform(0.12, 0.3))


def _bright(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    return img + (1.0 - img) * np.float32(rng.uniform(0.6, 0.85))


def _scratch(rng, img, size, extent, region):
    half = 0.5 * extent * rng.uniform(0.4, 0.7)
    th = rng.uniform(0, math.pi)
    dx, dy = half * math.cos(th), half * math.sin(th)
    cx, cy = _centre(rng, size, abs(dx), abs(dy), region)
    w = max(1.5, size * rng.uniform(0.013, 0.021))
    a = np.clip(w / 2 + 0.5 - _seg_dist(cx - dx, cy - dy, cx + dx, cy + dy, size), 0.0, 1.0)
    return a, (_bright if rng.uniform() < 0.5 else _dark)(rng, img)


def _spot(rng, img, size, extent, region):
    r = size * rng.uniform(0.04, 0.08)
    cx, cy = _centre(rng, size, r, r, region)
    xx, yy = _grid(size)
    return np.clip(r + 0.5 - np.hypot(xx - cx, yy - cy), 0.0, 1.0), _dark(rng, img)


def _crack(rng, img, size, extent, region):
    th0, seg = rng.uniform(0, 2 * math.pi), size * rng.uniform(0.035, 0.05)
    pts = [np.zeros(2)]
    for _ in range(int(rng.integers(6, 10))):
        ang = th0 + rng.normal(0.0, 0.55)
        pts.append(pts[-1] + seg * np.array([math.cos(ang), math.sin(ang)]))
    segs = list(zip(pts[:-1], pts[1:]))
    for _ in range(int(rng.integers(1, 3))):
        p = pts[int(rng.integers(1, len(pts) - 1))]
        bth = th0 + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
        for _ in range(int(rng.integers(3, 6))):
            ang = bth + rng.normal(0.0, 0.5)
            q = p + 0.8 * seg * np.array([math.cos(ang), math.sin(ang)])
            segs.append((p, q))
            p = q
    allp = np.array([p for s in segs for p in s])
    lo, hi = allp.min(0), allp.max(0)
    cx, cy = _centre(rng, size, (hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2, region)
    off = np.array([cx, cy]) - (lo + hi) / 2
    d = np.min([_seg_dist(*(p + off), *(q + off), size) for p, q in segs], axis=0)
    w = max(1.5, size * rng.uniform(0.012, 0.017))
    return np.clip(w / 2 + 0.5 - d, 0.0, 1.0), _dark(rng, img)


def _stain(rng, img, size, extent, region):
    sigma = size * rng.uniform(0.07, 0.1)
    cx, cy = _centre(rng, size, 1.5 * sigma, 1.5 * sigma, region)
    xx, yy = _grid(size)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    blob *= 1.0 + 0.35 * _smooth_noise(rng, size, 10)  # ragged edge
    colour = np.array([0.55, 0.33, 0.18], np.float32) * np.float32(rng.uniform(0.8, 1.2))
    return np.clip(0.85 * blob, 0.0, 0.85).astype(np.float32), np.broadcast_to(colour, img.shape)


def _hole(rng, img, size, extent, region):
    r = size * rng.uniform(0.03, 0.06)
    cx, cy = _centre(rng, size, r + 2, r + 2, region)
    xx, yy = _grid(size)
    d = np.hypot(xx - cx, yy - cy)
    rim = np.clip(1.0 - np.abs(d - r - 0.8) / 1.2, 0.0, 1.0)[..., None]
    inner = np.clip(r + 0.5 - d, 0.0, 1.0)
    colour = np.full_like(img, 0.04) * (1 - rim) + _bright(rng, img) * rim
    return np.maximum(inner, rim[..., 0]), colour


def _ring(rng, img, size, extent, region):
    r = size * rng.uniform(0.08, 0.14)
    cx, cy = _centre(rng, size, r + 2, r + 2, region)
    xx, yy = _grid(size)
    w = max(1.5, size * rng.uniform(0.012, 0.018))
    return np.clip(w / 2 + 0.5 - np.abs(np.hypot(xx - cx, yy - cy) - r), 0.0, 1.0), _bright(rng, img)


def _dots(rng, img, size, extent, region):
    spread = size * rng.uniform(0.06, 0.1)
    cx, cy = _centre(rng, size, spread + 3, spread + 3, region)
    xx, yy = _grid(size)
    alpha = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(6, 13))):
        dx, dy = rng.uniform(-spread, spread, 2)
        r = size * rng.uniform(0.008, 0.014)
        alpha = np.maximum(alpha, np.clip(r + 0.5 - np.hypot(xx - cx - dx, yy - cy - dy), 0.0, 1.0))
    return alpha, _dark(rng, img)


def _streak(rng, img, size, extent, region):
    th = rng.uniform(0, math.pi)
    half = 0.5 * extent
    cx, cy = _centre(rng, size, 0.0, 0.0, region)
    dx, dy = half * math.cos(th), half * math.sin(th)
    sigma = size * rng.uniform(0.04, 0.06)
    d = _seg_dist(cx - dx, cy - dy, cx + dx, cy + dy, size)
    return (0.8 * np.exp(-(d**2) / (2 * sigma**2))).astype(np.float32), _bright(rng, img)


_DEFECTS: dict[str, Callable] = {
    "scratch": _scratch, "spot": _spot, "crack": _crack, "stain": _stain, "hole": _hole,
    "ring": _ring, "dots": _dots, "streak": _streak,
}


def _add_defect(rng, img: np.ndarray, kind: str, region: Region | None = None):
    """Draw one ``kind`` defect onto ``img`` (H, W, 3); returns (image, bool mask)."""
    size = img.shape[0]
    extent = size if region is None else 2.0 * region[2]
    alpha, colour = _DEFECTS[kind](rng, img, size, extent, region)
    if region is not None:
        alpha = alpha * region[3]
    a = alpha[..., None]
    return img * (1.0 - a) + colour * a, alpha >= 0.5


def _texture_class(rng: np.random.Generator, size: int, cls: str) -> np.ndarray:
    img = _surface(rng, size)
    xx, yy = _grid(size)
    if cls in ("stripes_h", "stripes_d"):
        th = math.radians((0.0 if cls == "stripes_h" else 45.0) + rng.normal(0.0, 5.0))
        period = size * rng.uniform(0.05, 0.09)
        wave = np.sin(2 * math.pi * (yy * math.cos(th) + xx * math.sin(th)) / period + rng.uniform(0, 6.3))
        return np.clip(img + rng.uniform(0.08, 0.14) * wave[..., None], 0.0, 1.0)
    if cls == "blotches":
        patches = np.tanh(3.0 * _smooth_noise(rng, size, int(rng.integers(4, 8))))
        return np.clip(img + rng.uniform(0.12, 0.2) * patches[..., None], 0.0, 1.0)
    if cls == "grain":
        grain = rng.normal(0.0, rng.uniform(0.08, 0.12), (size, size)).astype(np.float32)
        return np.clip(img + grain[..., None], 0.0, 1.0)
    if cls == "pits":
        layer = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(40, 90))):
            x, y, r = rng.uniform(0, size), rng.uniform(0, size), size * rng.uniform(0.006, 0.015)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        a = (np.asarray(layer, np.float32) / 255.0)[..., None]
        return img * (1.0 - a) + _dark(rng, img) * a
    raise ValueError(f"unknown texture class {cls!r}; choose from {TEXTURE_CLASSES}")


def _object_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, Region]:
    """Background plus one centred object whose shape, colour, size and pose vary a lot."""
    img = _surface(rng, size)
    xx, yy = _grid(size)
    ox, oy = size / 2 + rng.normal(0, 0.04 * size, 2)
    big = size * rng.uniform(0.22, 0.38)
    th = rng.uniform(0, 2 * math.pi)
    u = (xx - ox) * math.cos(th) + (yy - oy) * math.sin(th)
    v = -(xx - ox) * math.sin(th) + (yy - oy) * math.cos(th)
    shape = rng.choice(["disc", "ellipse", "square"])
    if shape == "disc":
        inner, obj = big, np.clip(big + 0.5 - np.hypot(u, v), 0.0, 1.0)
    elif shape == "ellipse":
        small = big * rng.uniform(0.55, 0.85)
        inner = small
        obj = np.clip(big * (1.0 - np.hypot(u / big, v / small)) + 0.5, 0.0, 1.0)
    else:
        inner = 0.8 * big
        obj = np.clip(inner + 0.5 - np.maximum(np.abs(u), np.abs(v)), 0.0, 1.0)
    colour = rng.uniform(0.12, 0.9, 3).astype(np.float32)
    shade = 0.8 + 0.2 * (u / big)  # light from one side; pose changes it
    fill = np.clip(colour * shade[..., None] + 0.02 * _smooth_noise(rng, size, 16)[..., None], 0, 1)
    o = obj[..., None]
    return img * (1.0 - o) + fill * o, (float(ox), float(oy), float(inner), obj.astype(np.float32))


@lru_cache(maxsize=4)
def _product(seed: int, size: int) -> tuple[np.ndarray, Region]:
    """The one product every image of an "aligned" set shows (drawn from the seed alone)."""
    return _object_scene(_rng(seed, "aligned", "product"), size)


def _aligned_scene(rng: np.random.Generator, seed: int, size: int) -> tuple[np.ndarray, Region]:
    """The set's product as a line camera sees it: shifted by up to 3 px, its brightness and
    the sensor noise varying a little."""
    scene, (ox, oy, inner, obj) = _product(seed, size)
    dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
    img = np.roll(scene, (dy, dx), (0, 1)) * rng.uniform(0.95, 1.05) + rng.normal(0.0, 0.02, scene.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32), (ox + dx, oy + dy, inner, np.roll(obj, (dy, dx), (0, 1)))


def _scene(rng: np.random.Generator, kind: str, seed: int, size: int) -> tuple[np.ndarray, Region | None]:
    """A defect-free image of a "local", "variable" or "aligned" set, and where defects may go."""
    if kind == "local":
        return _surface(rng, size), None
    return _aligned_scene(rng, seed, size) if kind == "aligned" else _object_scene(rng, size)


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)).save(path, compress_level=1)


def _save_mask(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path, compress_level=1)


def _fresh(root: str | os.PathLike) -> Path:
    out = Path(root)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AnoclustError(f"{out} exists and is not an empty folder; choose a new output folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _check_types(types: Sequence[str], known: Sequence[str]) -> list[str]:
    types = list(types)
    bad = [t for t in types if t not in known]
    if bad or not types or len(set(types)) != len(types):
        raise ValueError(f"classes must be distinct names from {known}, got {types}")
    return types


def make_mvtec_category(
    root: str | os.PathLike,
    n_per_type: int = 20,
    n_good_test: int = 10,
    n_train: int = 20,
    size: int = 128,
    seed: int = 0,
    defect_types: Sequence[str] = ("scratch", "spot", "crack"),
) -> Path:
    """Write an MVTec-AD-layout category at ``root`` (must be new or empty); returns ``root``.

    ``train/good`` and ``test/good`` hold defect-free surfaces, ``test/<type>`` one defect
    per image and ``ground_truth/<type>/<stem>_mask.png`` its mask.
    """
    types = _check_types(defect_types, DEFECT_TYPES)
    out = _fresh(root)
    for split, n in (("train", n_train), ("test", n_good_test)):
        (out / split / "good").mkdir(parents=True, exist_ok=True)  # layout holds even if n == 0
        for i in range(n):
            _save(out / split / "good" / f"{i:03d}.png", _surface(_rng(seed, split, "good", i), size))
    for t in types:
        for i in range(n_per_type):
            rng = _rng(seed, "test", t, i)
            img, mask = _add_defect(rng, _surface(rng, size), t)
            _save(out / "test" / t / f"{i:03d}.png", img)
            _save_mask(out / "ground_truth" / t / f"{i:03d}_mask.png", mask)
    return out


def make_labelled_folder(
    root: str | os.PathLike,
    n_per_type: int = 20,
    size: int = 128,
    seed: int = 0,
    kind: str = "local",
    classes: Sequence[str] | None = None,
    normal_root: str | os.PathLike | None = None,
    n_normal: int = 20,
) -> Path:
    """Write one subfolder per class at ``root`` (must be new or empty); returns ``root``.

    ``kind="local"``: small local defects on a grainy surface (masks written beside each
    image as ``<stem>_mask.png``). ``"texture"``: every image is a defect texture covering
    the whole frame, one texture per class (no masks). ``"variable"``: a centred object whose
    shape, colour, size and pose vary strongly, with a small local defect on it (masks
    written). ``"aligned"``: the same object in every image (one product on a line, shifted by
    a few pixels), with a small local defect on it (masks written). ``classes`` defaults to
    scratch/spot/crack, or all texture classes for ``"texture"``. With ``normal_root``, ``n_normal`` defect-free images of the same kind go
    there (a flat folder) for use as normal references.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    default = TEXTURE_CLASSES if kind == "texture" else ("scratch", "spot", "crack")
    types = _check_types(classes or default, TEXTURE_CLASSES if kind == "texture" else DEFECT_TYPES)
    out = _fresh(root)
    for t in types:
        for i in range(n_per_type):
            rng = _rng(seed, kind, t, i)
            if kind == "texture":
                _save(out / t / f"{i:03d}.png", _texture_class(rng, size, t))
                continue
            img, region = _scene(rng, kind, seed, size)
            img, mask = _add_defect(rng, img, t, region)
            _save(out / t / f"{i:03d}.png", img)
            _save_mask(out / t / f"{i:03d}_mask.png", mask)
    if normal_root is not None:
        nroot = _fresh(normal_root)
        for i in range(n_normal):
            rng = _rng(seed, kind, "normal", i)
            _save(nroot / f"{i:03d}.png", _scene(rng, kind, seed, size)[0])
    return out


def make_strip_folder(
    root: str | os.PathLike,
    n_per_type: int = 20,
    shapes: Sequence[tuple[int, int]] = ((64, 1024),),
    seed: int = 0,
    classes: Sequence[str] = STRIP_CLASSES,
    normal_root: str | os.PathLike | None = None,
    n_normal: int = 20,
) -> Path:
    """Write long strips of grainy surface, one subfolder per defect class, at ``root`` (must be
    new or empty); returns ``root``. Image ``i`` of a class has shape ``shapes[i % len(shapes)]``
    as (height, width): a tall shape gives a vertical strip. Each strip carries one small local
    defect, drawn on a square window as wide as the strip at a random place along it (no masks).
    With ``normal_root``, ``n_normal`` defect-free strips go there (a flat folder).
    """
    types = _check_types(classes, DEFECT_TYPES)
    if not shapes or any(min(s) < 16 for s in shapes):
        raise ValueError(f"shapes must be (height, width) pairs of at least 16 pixels, got {shapes}")
    out = _fresh(root)
    for t in types:
        for i in range(n_per_type):
            rng = _rng(seed, "strip", t, i)
            _save(out / t / f"{i:03d}.png", _strip(rng, shapes[i % len(shapes)], t))
    if normal_root is not None:
        nroot = _fresh(normal_root)
        for i in range(n_normal):
            _save(nroot / f"{i:03d}.png", _strip(_rng(seed, "strip", "normal", i), shapes[i % len(shapes)], None))
    return out


def _strip(rng: np.random.Generator, shape: tuple[int, int], defect: str | None) -> np.ndarray:
    """One strip (H, W, 3), with a `defect` on a window of it unless None."""
    short, long = sorted(shape)
    # A band across a square surface keeps its grain isotropic, so the strip has no built-in
    # direction apart from its shape.
    img = np.ascontiguousarray(_surface(rng, long)[:short])
    if defect is not None:
        x0 = int(rng.integers(0, long - short + 1))
        window, _ = _add_defect(rng, img[:, x0 : x0 + short].copy(), defect)
        img[:, x0 : x0 + short] = window
    return img if shape[1] >= shape[0] else img.transpose(1, 0, 2)
