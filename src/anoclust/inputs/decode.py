"""Robust, fast image decoding into float arrays.

Every failure (missing, unreadable, empty, corrupt, truncated, oversized file, symlink loop,
decoder crash) becomes an :class:`ImageReadError` whose message starts with the path, so a
caller can skip that one image and report why.

Conventions shared by :func:`load_image` and :func:`load_mask`:

* EXIF orientation is applied (same result as ``ImageOps.exif_transpose``). The transpose is
  done *after* resizing, on the small image, which is exact because 90-degree turns and flips
  commute with separable resampling.
* Resizing is one ``Image.resize(..., BILINEAR, reducing_gap=3.0)`` call (antialiased; the
  reducing gap adds an exact box pre-reduction by an integer factor for speed). Large JPEGs
  are first decoded at 1/2, 1/4 or 1/8 scale via ``Image.draft`` (never below the target).
* ``size`` may also be a function of the oriented ``(width, height)`` that returns the output's
  ``(height, width)``: the extraction's aspect-preserving mode (anoclust.features.aspect) chooses
  each image's input shape from its size, known here only once the EXIF orientation is read.
* ``keep_aspect=False`` gives ``size x size``. ``keep_aspect=True`` maps the *shorter* side to
  ``size`` and the longer side to the proportional length rounded to the nearest multiple of
  16 (halves round up; at least 16), so feature maps at stride 8 and 16 tile the image exactly; the aspect
  ratio is therefore preserved only up to that rounding.
* Alpha is dropped, not composited: RGBA/LA/PA and palette transparency keep the stored
  colours. Masks and defect photos rarely carry meaningful alpha, and compositing over an
  arbitrary background would invent content.
* High bit depths are scaled by their real range: ``I;16*`` by 65535; ``I`` by the TIFF
  ``BitsPerSample`` when declared, else by 65535 if all values fit in 16 bits, else by
  2**32-1 (2**31-1 when signed; negatives clip to 0); ``F`` is kept when it already lies in
  [0, 1] and otherwise min-max scaled (non-finite values become 0).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageReadError

# Larger images are refused from their header, before any pixel is decoded (decompression bombs).
MAX_PIXELS: int = 100_000_000
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
)

# PIL refuses (DecompressionBombError) at 2x its limit while still inside Image.open, i.e.
# before any pixel data is decoded; tying its limit to ours makes that early refusal cover
# everything we would refuse anyway. Set once here rather than per call because the setting
# is process-global and toggling it would race between threads. Images between 1x and 2x the
# limit only make PIL warn; our own size check right after open rejects them before load().
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_RESAMPLE = Image.Resampling.BILINEAR
_REDUCING_GAP = 3.0
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_HIGH_DEPTH = {"I", "F"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


# The output side, or (oriented width, height) -> output (height, width).
Size = int | Callable[[int, int], tuple[int, int]]


def _check_size(size: Size) -> None:
    if callable(size):
        return
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")


def _fail(path: str, reason: str) -> ImageReadError:
    return ImageReadError(f"{path}: {reason}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"too many pixels (limit {MAX_PIXELS:,}); refusing to decode a possible decompression bomb"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied; check the file's read permissions"
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image file (wrong extension or corrupt header)"
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return f"truncated or incomplete file ({text})"
    return f"cannot decode ({type(exc).__name__}: {text})"


class _Opened:
    """Context manager: stat checks, ``Image.open`` and the pixel limit, all mapped to errors."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self.im: Image.Image | None = None

    def __enter__(self) -> Image.Image:
        p = self.path
        try:
            st = os.stat(p)
            if stat.S_ISDIR(st.st_mode):
                raise _fail(p, "is a folder, not an image file")
            if not stat.S_ISREG(st.st_mode):
                raise _fail(p, "not a regular file")
            if st.st_size == 0:
                raise _fail(p, "empty file (0 bytes)")
            self.im = Image.open(p)
            w, h = self.im.size
            if w * h > MAX_PIXELS:
                raise _fail(
                    p, f"too many pixels ({w}x{h} > {MAX_PIXELS:,}); refusing to decode a possible "
                    "decompression bomb"
                )
            if w < 1 or h < 1:
                raise _fail(p, f"invalid size {w}x{h}")
            return self.im
        except ImageReadError:
            self._close()
            raise
        except Exception as exc:  # every decoder failure is "this one image is unreadable"
            self._close()
            raise _fail(p, _reason(exc)) from exc

    def _close(self) -> None:
        if self.im is not None:
            self.im.close()
            self.im = None

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._close()
        if exc is not None and not isinstance(exc, ImageReadError) and isinstance(exc, Exception):
            raise _fail(self.path, _reason(exc)) from exc
        return False


def _orientation(im: Image.Image, allow_load: bool) -> int:
    # PNG keeps EXIF in an eXIf chunk that PIL may only see after a full load.
    if not allow_load and im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        value = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # corrupt EXIF should not make a readable image unreadable
        return 1
    return value if value in _TRANSPOSE else 1


def _target(w: int, h: int, size: Size, keep_aspect: bool) -> tuple[int, int]:
    if callable(size):
        out_h, out_w = size(w, h)
        return int(out_w), int(out_h)
    if not keep_aspect:
        return size, size
    long_side = size * max(w, h) / min(w, h)
    long_side = max(16, int(long_side / 16 + 0.5) * 16)  # half-up, not banker's rounding
    return (size, long_side) if w <= h else (long_side, size)


def _stored_target(w: int, h: int, size: Size, keep_aspect: bool, orient: int) -> tuple[int, int]:
    """Target size in the stored (un-rotated) frame."""
    swap = orient in (5, 6, 7, 8)
    tw, th = _target(h, w, size, keep_aspect) if swap else _target(w, h, size, keep_aspect)
    return (th, tw) if swap else (tw, th)


def _high_depth_to_float(im: Image.Image) -> np.ndarray:
    """Single-channel 16/32-bit int or float image -> float32 (H, W) in [0, 1]."""
    mode = im.mode
    a = np.asarray(im)
    if mode.startswith("I;16"):
        return np.clip(a.astype(np.float32) / np.float32(65535.0), 0.0, 1.0)
    if mode == "I":
        a = a.astype(np.float64)
        bits, signed = _declared_bits(im)
        if bits is None:
            bits = 16 if (a.size == 0 or (a.min() >= 0 and a.max() <= 65535)) else 32
        top = 2.0 ** (bits - 1 if signed else bits) - 1
        return np.clip(a / top, 0.0, 1.0).astype(np.float32)
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0:
        return a
    return (a - lo) / np.float32(hi - lo) if hi > lo else np.zeros_like(a)


def _declared_bits(im: Image.Image) -> tuple[int | None, bool]:
    tags = getattr(im, "tag_v2", None)
    if not tags:
        return None, True
    bits = tags.get(258)
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    signed = tags.get(339, 1) in (2, (2,))
    return (int(bits) if bits else None), signed


def _prepare(im: Image.Image, size: Size, keep_aspect: bool, want: str):
    """Decode and resize ``im``; returns (resized PIL image, is_float, orientation)."""
    if im.format in ("JPEG", "MPO"):
        orient = _orientation(im, allow_load=False)
        # The target comes from the full size: draft's rounded-up reduced size could round the
        # keep_aspect long side differently and break image/mask alignment.
        tw, th = _stored_target(*im.size, size, keep_aspect, orient)
        if im.size[0] >= 2 * tw and im.size[1] >= 2 * th:
            im.draft(im.mode, (tw, th))
        im.load()
    else:
        im.load()
        orient = _orientation(im, allow_load=True)
        tw, th = _stored_target(*im.size, size, keep_aspect, orient)

    mode = im.mode
    if mode.startswith("I;16") or mode in _HIGH_DEPTH:
        im = Image.fromarray(_high_depth_to_float(im), mode="F")
        return im.resize((tw, th), _RESAMPLE, reducing_gap=_REDUCING_GAP), True, orient
    # Dropping palette/colour-key transparency is our alpha policy; PIL would otherwise warn.
    im.info.pop("transparency", None)
    if want == "L" or mode not in _COLOUR_MODES:
        target_mode = "L"
    else:
        target_mode = "RGB"
    if mode != target_mode:
        im = im.convert(target_mode)
    return im.resize((tw, th), _RESAMPLE, reducing_gap=_REDUCING_GAP), False, orient


def _finish(im: Image.Image, orient: int) -> Image.Image:
    return im.transpose(_TRANSPOSE[orient]) if orient != 1 else im


def load_image(path: str | os.PathLike, size: Size, keep_aspect: bool = False) -> np.ndarray:
    """Decode one image to a float32 ``(3, H, W)`` RGB array in [0, 1] (first frame only).

    Grayscale is replicated to three channels. See the module docstring for the resize,
    orientation, alpha and bit-depth rules. Raises :class:`ImageReadError` on any failure.
    """
    _check_size(size)
    with _Opened(path) as im:
        small, is_float, orient = _prepare(im, size, keep_aspect, want="RGB")
        small = _finish(small, orient)
        if is_float:
            a = np.asarray(small, dtype=np.float32)
            return np.repeat(np.clip(a, 0.0, 1.0)[None], 3, axis=0)
        a = np.asarray(small, dtype=np.uint8)
        out = (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)).astype(np.float32, order="C")
        out *= np.float32(1.0 / 255.0)
        return np.repeat(out, 3, axis=0) if out.shape[0] == 1 else out


def load_mask(path: str | os.PathLike, size: int, keep_aspect: bool = False) -> np.ndarray:
    """Decode a ground-truth mask to float32 ``(H, W)`` in [0, 1], resized like :func:`load_image`.

    Colour masks are converted to luminance; the result is soft at edges (bilinear), so
    threshold it if a binary mask is needed.
    """
    _check_size(size)
    with _Opened(path) as im:
        small, is_float, orient = _prepare(im, size, keep_aspect, want="L")
        small = _finish(small, orient)
        a = np.asarray(small, dtype=np.float32)
        return np.clip(a, 0.0, 1.0) if is_float else a * np.float32(1.0 / 255.0)


def read_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` as :func:`load_image` sees it (EXIF orientation applied), from the
    header only. PNGs whose EXIF comes after the pixel data report the stored size."""
    with _Opened(path) as im:
        w, h = im.size
        return (h, w) if _orientation(im, allow_load=False) in (5, 6, 7, 8) else (w, h)
