"""Inline images for the report: downscaled thumbnails and patch-weight heat maps as data URIs."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageReadError
from ..inputs.decode import load_image


@dataclass
class Thumb:
    uri: str  # data URI of the picture, or of a placeholder when the file cannot be read
    width: int
    height: int
    missing: str | None = None  # why the picture is a placeholder


def _data_uri(im: Image.Image, fmt: str, **options) -> str:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    mime = "jpeg" if fmt == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _placeholder(size: int) -> str:
    # An SVG, so the placeholder costs a few hundred bytes and says what happened.
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">'
        f'<rect width="100%" height="100%" fill="#d9d9d9"/>'
        f'<path d="M0 0L{size} {size}M{size} 0L0 {size}" stroke="#bbb" stroke-width="2"/>'
        f'<text x="50%" y="50%" font-family="sans-serif" font-size="13" fill="#555" '
        f'text-anchor="middle" dominant-baseline="middle">image missing</text></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def make_thumb(path: str | Path, size: int = 128, quality: int = 80) -> Thumb:
    """The image fitted into a size x size box (aspect kept), as a JPEG data URI."""
    try:
        # The library's decoder handles EXIF, 16-bit and palette images like the network saw them.
        arr = load_image(path, size, keep_aspect=True)
    except ImageReadError as exc:
        return Thumb(_placeholder(size), size, size, missing=str(exc))
    im = Image.fromarray(np.clip(arr.transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
    im.thumbnail((size, size), Image.Resampling.BILINEAR)
    return Thumb(_data_uri(im, "JPEG", quality=quality, optimize=True), im.width, im.height)


# Colour ramp of the heat map: low weight is transparent, high weight opaque red via yellow.
_RAMP = np.array([[255, 255, 0, 0], [255, 200, 0, 120], [255, 90, 0, 170], [230, 0, 0, 210]], dtype=np.float32)


def heat_uri(weights: np.ndarray, grid: tuple[int, int], ring: int = 0) -> str:
    """Patch weights as a tiny RGBA PNG (one pixel per patch on the image's own grid); the browser
    scales it smoothly over the thumbnail. ring (aspect "keep"): the ring's width around the
    interior grid; the bag's first rows * cols weights are the interior's, drawn on it with a
    transparent margin where the ring is (its patches, after them, are never weighted)."""
    w = np.asarray(weights, dtype=np.float32)[: grid[0] * grid[1]]
    w = np.nan_to_num(w.reshape(grid), nan=0.0)
    # Min-max within the image: uniform weights (average pooling) show as no heat at all.
    span = float(w.max() - w.min())
    v = (w - w.min()) / span if span > 0 else np.zeros_like(w)
    pos = v * (len(_RAMP) - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    rgba = _RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac
    if ring:
        rgba = np.pad(rgba, ((ring, ring), (ring, ring), (0, 0)))  # alpha 0: no heat on the margin
    im = Image.fromarray(np.clip(rgba + 0.5, 0, 255).astype(np.uint8), "RGBA")
    return _data_uri(im, "PNG", optimize=True)
