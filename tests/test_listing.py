import os
import random
from pathlib import Path

import pytest
from PIL import Image

from anoclust.inputs.listing import LAYOUTS, ImageSet, find_images, read_input, read_path_list
from anoclust.errors import AnoclustError
from anoclust.synthetic import make_mvtec_category

MTD = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtd"  # ../shared/data beside the repo


def _img(path: Path, colour=(120, 120, 120)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def _touch(root: Path, *names: str) -> None:
    for n in names:
        _img(root / n)


def _rel(s: ImageSet, paths) -> list[str]:
    return [p.relative_to(s.root).as_posix() for p in paths]


def test_layouts_constant():
    assert LAYOUTS == ("auto", "mvtec", "labelled", "flat", "csv")


# --- MVTec -------------------------------------------------------------------------------

@pytest.fixture
def mvtec(tmp_path) -> Path:
    root = make_mvtec_category(tmp_path / "cat", n_per_type=3, n_good_test=2, n_train=4, size=32)
    _img(root / "test" / "combined" / "000.png")  # MVTec AD "combined" is always excluded
    _img(root / "test" / ".hidden" / "000.png")
    return root


def test_mvtec_auto(mvtec):
    s = read_input(mvtec)
    assert s.layout == "mvtec" and s.root == mvtec
    assert len(s) == 3 * 3 + 2
    assert sorted(set(s.labels)) == ["crack", "good", "scratch", "spot"]
    assert "combined" not in s.labels
    assert _rel(s, s.paths) == sorted(_rel(s, s.paths))
    assert len(s.normals) == 4 and all(p.parent == mvtec / "train" / "good" for p in s.normals)
    for p, lab, m in zip(s.paths, s.labels, s.masks):
        assert p.parent.name == lab
        if lab == "good":
            assert m is None
        else:
            assert m == mvtec / "ground_truth" / lab / f"{p.stem}_mask.png" and m.is_file()


def test_mvtec_masks_paired_by_name_not_order(mvtec):
    (mvtec / "ground_truth" / "spot" / "000_mask.png").unlink()
    _img(mvtec / "ground_truth" / "spot" / "zzz_mask.png")  # orphan mask must not shift pairing
    s = read_input(mvtec, layout="mvtec")
    masks = {p.relative_to(mvtec).as_posix(): m for p, m in zip(s.paths, s.masks)}
    assert masks["test/spot/000.png"] is None
    assert masks["test/spot/001.png"].name == "001_mask.png"
    assert masks["test/spot/002.png"].name == "002_mask.png"


def test_mvtec_include_good(mvtec):
    s = read_input(mvtec, include_good=False)
    assert "good" not in s.labels and len(s) == 9 and len(s.normals) == 4


def test_mvtec_only_good_without_include_good(tmp_path):
    root = make_mvtec_category(tmp_path / "c", n_per_type=0, n_good_test=2, n_train=1, size=16)
    with pytest.raises(AnoclustError, match="no images found"):
        read_input(root, include_good=False)


def test_explicit_layout_mismatch(tmp_path, mvtec):
    _touch(tmp_path / "lab", "a/x.png", "b/y.png")
    with pytest.raises(AnoclustError, match="not an MVTec"):
        read_input(tmp_path / "lab", layout="mvtec")
    with pytest.raises(AnoclustError, match="csv"):
        read_input(tmp_path / "lab", layout="csv")
    with pytest.raises(AnoclustError, match="flat"):
        read_input(tmp_path / "lab", layout="flat")
    with pytest.raises(AnoclustError, match="unknown layout"):
        read_input(tmp_path / "lab", layout="imagenet")


# --- labelled / flat ---------------------------------------------------------------------

def test_labelled_with_mask_conventions(tmp_path):
    root = tmp_path / "data"
    _touch(
        root,
        "MT_Crack/Imgs/a.jpg", "MT_Crack/Imgs/a.png",  # MTD: NAME.jpg + mask NAME.png
        "MT_Crack/Imgs/b.jpg", "MT_Crack/Imgs/b.png",
        "Dent/x.png", "Dent/x_mask.png",
        "Dent/y.bmp", "Dent/y_gt.png",
        "Dent/z.png",
        "good/orphan_mask.png",  # no "orphan" image beside it: an ordinary image
        "good/n.JPG",
        "Dent/.hidden.png", ".cache/c.png",
    )
    (root / "notes.txt").write_text("ignored")
    s = read_input(root)
    assert s.layout == "labelled" and s.normals == []
    assert _rel(s, s.paths) == [
        "Dent/x.png", "Dent/y.bmp", "Dent/z.png",
        "MT_Crack/Imgs/a.jpg", "MT_Crack/Imgs/b.jpg",
        "good/n.JPG", "good/orphan_mask.png",
    ]
    assert s.labels == ["Dent"] * 3 + ["MT_Crack"] * 2 + ["good"] * 2
    assert [m.name if m else None for m in s.masks] == [
        "x_mask.png", "y_gt.png", None, "a.png", "b.png", None, None,
    ]
    assert s.masks[3].parent == root / "MT_Crack" / "Imgs"


def test_mask_preference_and_no_masks(tmp_path):
    _touch(tmp_path / "d", "k/x.jpg", "k/x.png", "k/x_gt.png", "k/x_mask.png")
    s = read_input(tmp_path / "d")
    assert [p.name for p in s.paths] == ["x.jpg"] and s.masks[0].name == "x_mask.png"
    _touch(tmp_path / "e", "k/x.jpg", "j/y.png")
    assert read_input(tmp_path / "e").masks is None


def test_flat(tmp_path):
    _touch(tmp_path / "f", "b.png", "a.jpg", "c.tif", "c_mask.png")
    s = read_input(tmp_path / "f")
    assert s.layout == "flat" and s.labels is None
    assert [p.name for p in s.paths] == ["a.jpg", "b.png", "c.tif"]
    assert [m.name if m else None for m in s.masks] == [None, None, "c_mask.png"]


def test_mixed_folder_needs_explicit_layout(tmp_path):
    _touch(tmp_path / "m", "loose.png", "lab/x.png")
    with pytest.raises(AnoclustError, match="flat.*labelled"):
        read_input(tmp_path / "m")
    assert [p.name for p in read_input(tmp_path / "m", layout="flat").paths] == ["loose.png"]
    s = read_input(tmp_path / "m", layout="labelled")
    assert [p.name for p in s.paths] == ["x.png"] and s.labels == ["lab"]
    _touch(tmp_path / "only", "a.png")
    with pytest.raises(AnoclustError, match="labelled"):
        read_input(tmp_path / "only", layout="labelled")


def test_empty_and_missing(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(AnoclustError, match="no images found in .*expected"):
        read_input(tmp_path / "empty")
    with pytest.raises(AnoclustError, match="does not exist"):
        read_input(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(AnoclustError, match="is a file"):
        read_input(tmp_path / "file.png")


def test_ordering_is_deterministic(tmp_path):
    names = [f"{lab}/{i}.png" for lab in ("b", "a", "a-b", "c") for i in (10, 2, 1)]
    random.Random(0).shuffle(names)
    _touch(tmp_path / "o", *names)
    s1, s2 = read_input(tmp_path / "o"), read_input(tmp_path / "o")
    rel = _rel(s1, s1.paths)
    assert rel == sorted(rel) and s1.paths == s2.paths and s1.labels == s2.labels


def test_find_images_symlinks_and_loops(tmp_path):
    root = tmp_path / "r"
    _touch(root, "a/x.png", "a/x_mask.png", "b/y.jpg", ".h/z.png")
    os.symlink(root, root / "a" / "loop")  # would recurse forever if followed blindly
    os.symlink(root / "nowhere.png", root / "dangling.png")
    os.symlink(root / "self.png", root / "self.png")
    os.symlink(root / "b" / "y.jpg", root / "link.jpg")
    found = [p.relative_to(root).as_posix() for p in find_images(root)]
    # Dangling links and loops are listed, so that decoding reports them instead of dropping them.
    assert found == ["a/x.png", "b/y.jpg", "dangling.png", "link.jpg", "self.png"]
    assert [p.name for p in find_images(root, recursive=False)] == ["dangling.png", "link.jpg", "self.png"]


# --- CSV ---------------------------------------------------------------------------------

def test_csv(tmp_path):
    d = tmp_path / "lists"
    _touch(tmp_path, "imgs/b.png", "imgs/a.png", "imgs/a_m.png")
    absolute = _img(tmp_path / "elsewhere" / "c.png")
    (d).mkdir()
    (d / "set.csv").write_text(
        "\ufeffPath, Label ,mask\n"
        "../imgs/b.png,scratch,\n"
        "../imgs/a.png,spot,../imgs/a_m.png\n"
        f"{absolute},spot,\n",
        encoding="utf-8",
    )
    s = read_input(d / "set.csv")
    assert s.layout == "csv" and s.root == d and s.normals == []
    assert s.paths == [d / "../imgs/b.png", d / "../imgs/a.png", absolute]  # file order kept
    assert all(p.is_file() for p in s.paths)
    assert s.labels == ["scratch", "spot", "spot"]
    assert s.masks == [None, d / "../imgs/a_m.png", None]


def test_csv_labels_all_or_nothing_and_errors(tmp_path):
    (tmp_path / "p.csv").write_text("path,label\na.png,x\nb.png,\n")
    s = read_input(tmp_path / "p.csv", layout="csv")
    assert s.labels is None and s.masks is None and len(s) == 2
    (tmp_path / "nopath.csv").write_text("file,label\na.png,x\n")
    with pytest.raises(AnoclustError, match="no 'path' column"):
        read_input(tmp_path / "nopath.csv")
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(AnoclustError, match="no images found"):
        read_input(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("path,label\na.png,x\n,y\n")
    with pytest.raises(AnoclustError, match="line 3"):
        read_input(tmp_path / "blank.csv")
    (tmp_path / "dup.csv").write_text("path\na.png\nb.png\na.png\n")
    with pytest.raises(AnoclustError, match="same file as line 2"):
        read_input(tmp_path / "dup.csv")


# --- read_path_list ----------------------------------------------------------------------

def test_read_path_list(tmp_path):
    _touch(tmp_path / "normals", "b.png", "a.jpg", "a.png", "sub/c.png")
    assert [p.relative_to(tmp_path / "normals").as_posix() for p in read_path_list(tmp_path / "normals")] == [
        "a.jpg", "b.png", "sub/c.png",
    ]
    lst = tmp_path / "lists" / "n.txt"
    lst.parent.mkdir()
    lst.write_text(f"# reference normals\n\n../normals/b.png\n  ../normals/sub/c.png  \n{tmp_path / 'normals/a.jpg'}\n")
    assert read_path_list(lst) == [
        lst.parent / "../normals/b.png", lst.parent / "../normals/sub/c.png", tmp_path / "normals/a.jpg",
    ]
    (tmp_path / "n.csv").write_text("label,path\nx,normals/b.png\n")
    assert read_path_list(tmp_path / "n.csv") == [tmp_path / "normals/b.png"]
    (tmp_path / "bad.csv").write_text("file\nnormals/b.png\n")
    with pytest.raises(AnoclustError, match="'path' column"):
        read_path_list(tmp_path / "bad.csv")
    (tmp_path / "only_comments.txt").write_text("# nothing\n\n")
    with pytest.raises(AnoclustError, match="no images"):
        read_path_list(tmp_path / "only_comments.txt")
    with pytest.raises(AnoclustError, match="does not exist"):
        read_path_list(tmp_path / "missing.txt")
    with pytest.raises(AnoclustError):
        read_path_list(tmp_path / "normals" / "b.png")


# --- real data ---------------------------------------------------------------------------

@pytest.mark.data
@pytest.mark.skipif(not MTD.is_dir(), reason="MTD data not present")
def test_mtd_layout():
    s = read_input(MTD)
    assert s.layout == "labelled" and s.normals == []
    counts = {lab: s.labels.count(lab) for lab in set(s.labels)}
    assert counts == {
        "MT_Blowhole": 115, "MT_Break": 85, "MT_Crack": 57, "MT_Fray": 32, "MT_Uneven": 103,
        "MT_Free": 952,
    }
    assert sum(n for lab, n in counts.items() if lab != "MT_Free") == 392
    assert all(p.suffix == ".jpg" for p in s.paths)  # no .png mask listed as an image
    for p, m in zip(s.paths, s.masks):
        assert m == p.with_suffix(".png") and m.is_file()
    normals = read_path_list(MTD / "reference_normals.txt")
    assert len(normals) == 20 and all(p.is_file() and p.parent.parent.name == "MT_Free" for p in normals)
    assert set(normals) <= set(s.paths)
