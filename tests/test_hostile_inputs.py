"""End-to-end guarantees on a folder that mixes good images with hostile and odd files.

The corpus is generated here (nothing binary is committed). One CLI run on the hostile folder
and one after the bad files are removed must give the same assignments.csv byte for byte, list
every bad file once in skipped.csv, write nothing inside the input and stay within memory (the
decompression bomb is never decoded).

"No read permission" cannot be tested with chmod alone when the tests run as root (root reads
anything): the run's process then drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its
capability bounding set before exec, so that the kernel really refuses the chmod-000 file.
"""

import csv
import ctypes
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anoclust.synthetic import make_labelled_folder
from conftest import ROOT

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_SETPCAP = 1, 2, 8


pytestmark = pytest.mark.usefixtures("one_thread")

def _can_drop_caps() -> bool:
    if os.geteuid() != 0:
        return True  # nothing to drop: chmod 000 already works
    status = Path("/proc/self/status").read_text()
    eff = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff")), 16)
    return bool(eff >> CAP_SETPCAP & 1)


def _drop_dac_caps():  # runs in the child between fork and exec
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(path: Path, side: int = 30000) -> None:
    """A valid all-black 1-bit PNG of side x side (900 MB once decoded), about 100 KB on disk,
    compressed row block by row block so that the test never holds the raw pixels."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 1000) for _ in range(side // 1000)] + [comp.flush()]
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts))
                     + _png_chunk(b"IEND", b""))


def _odd_but_valid(folder: Path, rng: np.random.Generator) -> list[Path]:
    """Unusual images that must be clustered, not skipped."""
    folder.mkdir()
    rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    made = []

    def save(name, im, **kw):
        im.save(folder / name, **kw)
        made.append(folder / name)

    save("one pixel.png", Image.new("RGB", (1, 1), (200, 30, 30)))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    gray16 = (rng.integers(0, 65535, (40, 40))).astype(np.uint16)
    save("gray16.png", Image.fromarray(gray16))
    save("gray16 tiff.tif", Image.fromarray(gray16))  # own stem: gray16.png would be its mask
    frames = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    made.append(folder / "animated.gif")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    save("rotated.jpg", Image.fromarray(rgb), exif=exif)
    save("naïve ünïcødé 画像.png", Image.fromarray(rgb[::-1]))
    return made


def _bad_files(folder: Path, good: Path, locked: bool) -> dict[str, str]:
    """Unreadable files -> a word their skipped.csv reason must contain."""
    bad = {}
    (folder / "zero.png").write_bytes(b"")
    bad["zero.png"] = "empty"
    png, jpg = good.read_bytes(), folder / "cut jpeg.jpg"  # not "cut": cut.png would be its mask
    (folder / "cut.png").write_bytes(png[: len(png) // 2])
    bad["cut.png"] = "truncated"
    Image.open(good).convert("RGB").save(jpg, quality=90)
    jpg.write_bytes(jpg.read_bytes()[:300])
    bad[jpg.name] = "truncated"
    (folder / "notes.png").write_text("this is text, not a picture\n")
    bad["notes.png"] = "not a recognised image"
    _bomb_png(folder / "bomb.png")
    bad["bomb.png"] = "decompression bomb"
    os.symlink("loop b.png", folder / "loop a.png")
    os.symlink("loop a.png", folder / "loop b.png")
    bad["loop a.png"] = bad["loop b.png"] = "symlink loop"
    os.mkfifo(folder / "fifo.png")
    bad["fifo.png"] = "not a regular file"
    if locked:
        (folder / "locked.png").write_bytes(png)
        (folder / "locked.png").chmod(0)
        bad["locked.png"] = "permission denied"
    return bad


def _snapshot(root: Path) -> dict:
    """Every entry below root with its type, size and modification time (links not followed)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            snap[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return snap


def _run(args, out_dir: Path, drop_caps: bool = False) -> tuple[int, str, int]:
    """The CLI in a child process; returns (exit code, stderr, peak resident memory in MiB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")  # see conftest.one_thread
    err_path = out_dir.parent / f"{out_dir.name}.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "anoclust.cli", *args, "--out", str(out_dir)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_drop_dac_caps if drop_caps else None)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err_path.read_text(), usage.ru_maxrss // 1024


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_hostile_folder_is_clustered_like_the_clean_one(tmp_path):
    data = make_labelled_folder(tmp_path / "in put", n_per_type=4, size=64, classes=("scratch", "spot", "crack"))
    rng = np.random.default_rng(0)
    odd = _odd_but_valid(data / "odd ö folder", rng)
    first = sorted((data / "spot").glob("0*.png"))[0]
    (data / "spot" / "copy of first.png").write_bytes(first.read_bytes())  # a duplicate image
    locked = _can_drop_caps()
    bad = _bad_files(data / "crack", first, locked)
    common = ["cluster", str(data), "--k", "4", "--image-size", "64", "--quiet"]

    before = _snapshot(data)
    out_hostile = tmp_path / "hostile out"
    code, stderr, rss_hostile = _run(common + ["--cache", str(tmp_path / "cache")], out_hostile, drop_caps=locked)
    assert code == 0, stderr
    assert _snapshot(data) == before  # nothing written, renamed or touched inside the input

    skipped = _rows(out_hostile / "skipped.csv")
    names = [Path(r["path"]).name for r in skipped]
    assert sorted(names) == sorted(bad)  # each bad file once, and nothing else
    for r in skipped:
        assert bad[Path(r["path"]).name] in r["reason"].lower(), r
    assignments = _rows(out_hostile / "assignments.csv")
    clustered = {r["path"] for r in assignments}
    assert {str(p) for p in odd} <= clustered
    by_name = {Path(r["path"]).name: r["cluster"] for r in assignments if r["label"] == "spot"}
    assert by_name["copy of first.png"] == by_name[first.name]
    with np.load(out_hostile / "embeddings.npz", allow_pickle=False) as npz:  # no pickled objects inside
        assert list(npz["paths"]) == [r["path"] for r in assignments]
        assert all(npz[k].dtype != object for k in npz.files)

    for name in bad:
        (data / "crack" / name).unlink()
    out_clean = tmp_path / "clean out"
    code, stderr, rss_clean = _run(common + ["--no-cache"], out_clean)
    assert code == 0, stderr
    assert (out_clean / "assignments.csv").read_bytes() == (out_hostile / "assignments.csv").read_bytes()
    assert _rows(out_clean / "skipped.csv") == []
    # Decoding the bomb would need at least 900 MB; refusing it costs nothing measurable.
    assert rss_hostile < rss_clean + 300, (rss_hostile, rss_clean)
    if not locked:
        pytest.skip("running as root without CAP_SETPCAP: the no-read-permission case was not tested")


def test_one_file_listed_twice_under_other_spellings_is_refused(tmp_path, monkeypatch):
    from anoclust.errors import AnoclustError
    from anoclust.inputs import read_input

    data = make_labelled_folder(tmp_path / "d", n_per_type=1, size=32, classes=("spot", "crack"))
    one = next((data / "spot").glob("0*.png"))
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(one, tmp_path)
    for twin in (str(one), f"d/../d/spot/{one.name}"):
        Path("list.csv").write_text(f"path\n{rel}\n{twin}\n")
        with pytest.raises(AnoclustError, match=r"line 3 names the same file as line 2"):
            read_input("list.csv")
    os.symlink(one, tmp_path / "link.png")
    Path("list.csv").write_text(f"path\n{rel}\nlink.png\n")
    with pytest.raises(AnoclustError, match="same file"):
        read_input("list.csv")


def test_a_huge_file_that_is_no_image_is_refused_before_it_is_hashed(tmp_path, monkeypatch):
    from anoclust.features import cache, extract

    sparse = tmp_path / "huge.png"
    with open(sparse, "wb") as f:
        f.truncate(20 << 30)  # 20 GB of holes: hashing it would read 20 GB
    hashed = []
    monkeypatch.setattr(extract, "file_digest", lambda p: hashed.append(p) or cache.file_digest(p))
    ex = extract.PatchExtractor(extract.EmbeddingConfig(image_size=32), cache_dir=tmp_path / "c", pretrained=False)
    result = ex.extract([str(sparse)])
    assert hashed == [] and len(result.skipped) == 1 and "not a recognised image" in result.skipped[0][1]
