import errno
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from anoclust.inputs import decode as images
from anoclust.errors import AnoclustError, ImageReadError
from anoclust.inputs.decode import IMAGE_EXTENSIONS, MAX_PIXELS, load_image, load_mask, read_size


def _check(a: np.ndarray, h: int, w: int) -> None:
    assert a.shape == (3, h, w)
    assert a.dtype == np.float32
    assert a.flags.c_contiguous
    assert 0.0 <= a.min() and a.max() <= 1.0


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_bomb_png(path: Path, w: int, h: int) -> None:
    """A valid 1-bit all-black PNG of w x h written row block by row block: only a few KB on disk
    and never the full pixel buffer in memory."""
    row = b"\x00" * (1 + (w + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 500) for _ in range(h // 500)]
    parts += [comp.compress(row * (h % 500)), comp.flush()]
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def test_extensions():
    assert IMAGE_EXTENSIONS == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
    assert MAX_PIXELS == 100_000_000


def test_rgb_png(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (255, 128, 0)).save(p)
    a = load_image(p, size=32)
    _check(a, 32, 32)
    np.testing.assert_allclose(a[:, 5, 5], [1.0, 128 / 255, 0.0], atol=1e-6)


@pytest.mark.parametrize("mode,value,expected", [
    ("L", 200, [200 / 255] * 3),
    ("LA", (200, 0), [200 / 255] * 3),
    ("RGBA", (10, 200, 30, 0), [10 / 255, 200 / 255, 30 / 255]),  # alpha dropped, not composited
    ("1", 1, [1.0] * 3),
])
def test_modes(tmp_path, mode, value, expected):
    p = tmp_path / f"{mode}.png"
    Image.new(mode, (20, 20), value).save(p)
    a = load_image(p, size=16)
    _check(a, 16, 16)
    np.testing.assert_allclose(a[:, 8, 8], expected, atol=1e-6)


def test_palette_with_transparency(tmp_path):
    p = tmp_path / "p.png"
    im = Image.new("P", (20, 20), 1)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    im.save(p, transparency=1)  # the only colour used is transparent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = load_image(p, size=8)
    np.testing.assert_allclose(a[:, 4, 4], [0.0, 1.0, 0.0])
    im.save(tmp_path / "p2.png", transparency=bytes([255, 0] + [255] * 254))
    np.testing.assert_allclose(load_image(tmp_path / "p2.png", size=8)[:, 4, 4], [0.0, 1.0, 0.0])


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "c.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(p, quality=95)
    with Image.open(p) as im:
        assert im.mode == "CMYK"
    a = load_image(p, size=16)
    _check(a, 16, 16)
    np.testing.assert_allclose(a[:, 8, 8], [1.0, 0.0, 0.0], atol=0.03)


@pytest.mark.parametrize("name,dtype", [("g16.png", "<u2"), ("g16.tif", "<u2"), ("g16b.tif", ">u2")])
def test_16bit_scaled_by_bit_depth(tmp_path, name, dtype):
    arr = np.zeros((20, 40), dtype=dtype)
    arr[:, :20] = 65535
    arr[:, 20:] = 32768
    p = tmp_path / name
    Image.fromarray(arr).save(p)
    with Image.open(p) as im:
        assert im.mode.startswith("I;16")
    a = load_image(p, size=20, keep_aspect=True)  # long side 40 -> 48 (multiple of 16, half up)
    _check(a, 20, 48)
    assert a[0, 10, 0] == pytest.approx(1.0, abs=1e-6)
    assert a[0, 10, -1] == pytest.approx(32768 / 65535, abs=1e-4)
    m = load_mask(p, size=20)
    assert m.shape == (20, 20) and m[10, 0] == pytest.approx(1.0, abs=1e-6)


def test_32bit_and_float_tiff(tmp_path):
    Image.fromarray(np.full((10, 10), 2**31 - 1, np.int32), "I").save(tmp_path / "i.tif")
    assert load_image(tmp_path / "i.tif", size=8)[0, 4, 4] == pytest.approx(1.0)
    Image.fromarray(np.full((10, 10), 0.25, np.float32), "F").save(tmp_path / "f.tif")
    assert load_image(tmp_path / "f.tif", size=8)[0, 4, 4] == pytest.approx(0.25)
    ramp = np.tile(np.linspace(0, 1000, 10, dtype=np.float32), (10, 1))
    Image.fromarray(ramp, "F").save(tmp_path / "f2.tif")
    a = load_image(tmp_path / "f2.tif", size=10)
    assert a.min() == pytest.approx(0.0) and a.max() == pytest.approx(1.0)


def test_animated_gif_and_multiframe_tiff_take_first_frame(tmp_path):
    red, blue = Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))
    red.save(tmp_path / "a.gif", save_all=True, append_images=[blue], duration=50, loop=0)
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 2
    np.testing.assert_allclose(load_image(tmp_path / "a.gif", 8)[:, 4, 4], [1, 0, 0], atol=0.02)
    red.save(tmp_path / "a.tif", save_all=True, append_images=[blue])
    np.testing.assert_allclose(load_image(tmp_path / "a.tif", 8)[:, 4, 4], [1, 0, 0], atol=1e-6)


def _exif_jpeg(path: Path, orientation: int) -> Image.Image:
    im = Image.new("RGB", (300, 150), (255, 0, 0))
    im.paste((0, 0, 255), (150, 0, 300, 150))  # right half blue
    im.paste((0, 255, 0), (0, 0, 30, 30))  # top-left marker
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, quality=95, exif=exif.tobytes())
    return im


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_exif_transpose(tmp_path, orientation):
    p = tmp_path / "r.jpg"
    _exif_jpeg(p, orientation)
    with Image.open(p) as im:
        ref_im = ImageOps.exif_transpose(im).convert("RGB")
    ref_w, ref_h = ref_im.size
    a = load_image(p, size=64, keep_aspect=True)
    short = min(ref_w, ref_h)
    tw, th = (64, 128) if ref_w == short else (128, 64)
    _check(a, th, tw)
    ref = np.asarray(ref_im.resize((tw, th), Image.Resampling.BILINEAR), np.float32).transpose(2, 0, 1) / 255
    assert np.abs(a - ref).mean() < 0.01
    assert read_size(p) == (ref_w, ref_h)


def test_exif_rotated_shape(tmp_path):
    p = tmp_path / "r6.jpg"
    _exif_jpeg(p, 6)
    a = load_image(p, size=224, keep_aspect=True)
    _check(a, 448, 224)  # stored 300x150, displayed 150x300
    # Orientation 6 = rotate 90 degrees clockwise to display: stored left (red) ends on top.
    assert a[0, 100, 112] > 0.9 and a[2, 350, 112] > 0.9
    assert read_size(p) == (150, 300)


@pytest.mark.parametrize("w,h,expected", [
    (300, 150, (224, 448)), (150, 300, (448, 224)), (301, 300, (224, 224)),
    (500, 300, (224, 368)), (224, 224, (224, 224)), (1, 1, (224, 224)),
])
def test_keep_aspect_shapes(tmp_path, w, h, expected):
    p = tmp_path / "k.png"
    Image.new("RGB", (w, h), (9, 9, 9)).save(p)
    a = load_image(p, size=224, keep_aspect=True)
    assert a.shape[1:] == expected
    assert a.shape[1] % 16 == 0 and a.shape[2] % 16 == 0
    assert load_mask(p, size=224, keep_aspect=True).shape == expected


def test_draft_does_not_change_keep_aspect_shape(tmp_path):
    # 1033x330 at size 64: long side 200.3 -> 208; the 1/4-scale draft (259x83) alone gives 192.
    Image.new("RGB", (1033, 330), (50, 60, 70)).save(tmp_path / "w.jpg")
    Image.new("L", (1033, 330), 255).save(tmp_path / "w.png")
    assert load_image(tmp_path / "w.jpg", size=64, keep_aspect=True).shape == (3, 64, 208)
    assert load_mask(tmp_path / "w.png", size=64, keep_aspect=True).shape == (64, 208)


def test_one_pixel_image(tmp_path):
    p = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (0, 255, 0)).save(p)
    a = load_image(p, size=224)
    _check(a, 224, 224)
    np.testing.assert_allclose(a[:, 100, 100], [0, 1, 0])


def test_large_jpeg_uses_draft_but_stays_close(tmp_path):
    p = tmp_path / "big.jpg"
    x = np.linspace(0, 255, 1600, dtype=np.float32)
    grad = np.stack([np.tile(x, (1200, 1)), np.tile(x[::-1], (1200, 1)), np.full((1200, 1600), 90)], -1)
    Image.fromarray(grad.astype(np.uint8)).save(p, quality=95)
    with Image.open(p) as im:
        ref = np.asarray(im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), np.float32)
    a = load_image(p, size=224)
    assert np.abs(a - ref.transpose(2, 0, 1) / 255).mean() < 0.01


def test_mask(tmp_path):
    p = tmp_path / "m.png"
    m = Image.new("L", (64, 64), 0)
    m.paste(255, (0, 0, 32, 64))
    m.save(p)
    a = load_mask(p, size=32)
    assert a.shape == (32, 32) and a.dtype == np.float32
    assert a[:, :15].min() == 1.0 and a[:, 17:].max() == 0.0
    Image.new("RGB", (10, 10), (255, 255, 255)).save(tmp_path / "rgb.png")
    assert load_mask(tmp_path / "rgb.png", 8).min() == 1.0
    Image.new("1", (10, 10), 1).save(tmp_path / "bw.png")
    assert load_mask(tmp_path / "bw.png", 8).min() == 1.0
    with pytest.raises(ImageReadError):
        load_mask(tmp_path / "missing.png", 64)


def _raises(path, match: str) -> ImageReadError:
    with pytest.raises(ImageReadError, match=match) as info:
        load_image(path, 64)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, AnoclustError) and "\n" not in str(info.value)
    return info.value


def test_missing_zero_byte_not_image_and_folder(tmp_path):
    _raises(tmp_path / "nope.png", "not found")
    (tmp_path / "zero.png").write_bytes(b"")
    _raises(tmp_path / "zero.png", "empty")
    (tmp_path / "text.png").write_text("hello, not a picture\n")
    _raises(tmp_path / "text.png", "not a recognised image")
    (tmp_path / "dir.png").mkdir()
    _raises(tmp_path / "dir.png", "folder")
    with pytest.raises(ImageReadError):
        read_size(tmp_path / "text.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(tmp_path, fmt):
    rng = np.random.default_rng(0)
    full = tmp_path / f"full.{fmt.lower()}"
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(full, fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    _raises(cut, "truncated|cannot decode")


def test_decompression_bomb_refused_without_decoding(tmp_path, monkeypatch):
    from PIL import ImageFile

    p = tmp_path / "bomb.png"
    _write_bomb_png(p, 30000, 30000)
    assert p.stat().st_size < 1_000_000

    def never(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)  # refused from the header alone
    _raises(p, "too many pixels")
    with pytest.raises(ImageReadError, match="too many pixels"):
        read_size(p)


@pytest.mark.parametrize("filter_action", ["ignore", "error"])
def test_between_limit_and_twice_limit(tmp_path, filter_action):
    # PIL only warns here (it errors above 2x its limit); our own check must still refuse.
    p = tmp_path / "big.png"
    _write_bomb_png(p, 10001, 10000)
    with warnings.catch_warnings():
        warnings.simplefilter(filter_action)
        _raises(p, "too many pixels")


def test_pixel_limit_is_checked_before_load(tmp_path, monkeypatch):
    p = tmp_path / "small.png"
    Image.new("L", (20, 20)).save(p)
    monkeypatch.setattr(images, "MAX_PIXELS", 399)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    _raises(p, "too many pixels")


def test_permission_denied(tmp_path, monkeypatch):
    p = tmp_path / "locked.png"
    Image.new("RGB", (8, 8)).save(p)
    if os.geteuid() != 0:
        p.chmod(0)
        try:
            _raises(p, "permission denied")
        finally:
            p.chmod(0o644)
    # root reads anything, so also simulate the OS refusing.
    def deny(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(p))
    monkeypatch.setattr(images.Image, "open", deny)
    _raises(p, "permission denied")


def test_decoder_exception_is_mapped(tmp_path, monkeypatch):
    p = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(p)
    monkeypatch.setattr(Image.Image, "resize", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    _raises(p, "boom")


def test_symlink_loop(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    os.symlink(b, a)
    os.symlink(a, b)
    _raises(a, "symlink loop")


def test_unicode_and_space_names(tmp_path):
    p = tmp_path / "défaut ü 画像 x.png"
    Image.new("RGB", (10, 20), (1, 2, 3)).save(p)
    _check(load_image(p, size=32), 32, 32)
    assert read_size(p) == (10, 20)


def test_bad_size_is_a_programming_error(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(p)
    with pytest.raises(ValueError):
        load_image(p, size=0)
