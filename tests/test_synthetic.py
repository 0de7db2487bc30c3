from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anoclust.inputs.listing import find_images, read_input
from anoclust.errors import AnoclustError
from anoclust.synthetic import TEXTURE_CLASSES, make_labelled_folder, make_mvtec_category


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _tree(root: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(root).as_posix(): _pixels(p) for p in sorted(root.rglob("*.png"))}


def test_mvtec_layout_and_counts(tmp_path):
    root = make_mvtec_category(tmp_path / "cat", n_per_type=4, n_good_test=3, n_train=5, size=64)
    assert root == tmp_path / "cat"
    s = read_input(root)
    assert s.layout == "mvtec"
    assert {lab: s.labels.count(lab) for lab in set(s.labels)} == {
        "good": 3, "scratch": 4, "spot": 4, "crack": 4,
    }
    assert len(s.normals) == 5
    assert sorted(p.name for p in (root / "ground_truth").iterdir()) == ["crack", "scratch", "spot"]
    for p, lab, m in zip(s.paths, s.labels, s.masks):
        img = _pixels(p)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        if lab == "good":
            assert m is None
            continue
        mask = _pixels(m) > 0
        assert mask.shape == (64, 64)
        assert 0.001 < mask.mean() < 0.06, (p, mask.mean())


def test_defects_are_visible(tmp_path):
    root = make_mvtec_category(tmp_path / "c", n_per_type=5, n_good_test=0, n_train=0, size=128,
                               defect_types=("spot", "crack", "scratch", "stain", "hole"))
    s = read_input(root)
    for p, lab, m in zip(s.paths, s.labels, s.masks):
        img = _pixels(p).astype(np.float32)
        mask = _pixels(m) > 0
        colour_gap = np.linalg.norm(img[mask].mean(0) - img[~mask].mean(0))
        assert colour_gap > 25, (lab, p, colour_gap)


def test_deterministic_by_seed(tmp_path):
    a = _tree(make_mvtec_category(tmp_path / "a", n_per_type=2, n_good_test=2, n_train=2, size=48, seed=3))
    b = _tree(make_mvtec_category(tmp_path / "b", n_per_type=2, n_good_test=2, n_train=2, size=48, seed=3))
    c = _tree(make_mvtec_category(tmp_path / "c", n_per_type=2, n_good_test=2, n_train=2, size=48, seed=4))
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not any(np.array_equal(a[k], c[k]) for k in a if "ground_truth" not in k)


def test_images_independent_of_counts(tmp_path):
    small = _tree(make_mvtec_category(tmp_path / "s", n_per_type=2, n_good_test=1, n_train=1, size=48))
    big = _tree(make_mvtec_category(tmp_path / "b", n_per_type=5, n_good_test=3, n_train=4, size=48,
                                    defect_types=("crack", "scratch", "spot", "hole")))
    assert all(np.array_equal(small[k], big[k]) for k in small)


def test_normal_images_vary(tmp_path):
    root = make_mvtec_category(tmp_path / "c", n_per_type=0, n_good_test=0, n_train=6, size=64)
    means = [_pixels(p).mean() for p in find_images(root / "train" / "good")]
    assert np.std(means) > 2.0


@pytest.mark.parametrize("kind", ["local", "texture", "variable", "aligned"])
def test_labelled_kinds(tmp_path, kind):
    root = make_labelled_folder(tmp_path / kind, n_per_type=3, size=64, seed=1, kind=kind,
                                normal_root=tmp_path / f"{kind}_normal", n_normal=4)
    s = read_input(root)
    assert s.layout == "labelled"
    expected = set(TEXTURE_CLASSES) if kind == "texture" else {"scratch", "spot", "crack"}
    assert set(s.labels) == expected and len(s) == 3 * len(expected)
    if kind == "texture":
        assert s.masks is None
    else:
        assert all(m is not None and 0 < (_pixels(m) > 0).mean() < 0.06 for m in s.masks)
    normals = read_input(tmp_path / f"{kind}_normal")
    assert normals.layout == "flat" and len(normals) == 4
    again = make_labelled_folder(tmp_path / f"{kind}2", n_per_type=3, size=64, seed=1, kind=kind)
    first, second = _tree(root), _tree(again)
    assert first.keys() == second.keys()
    assert all(np.array_equal(v, second[k]) for k, v in first.items())


def test_aligned_images_show_one_product(tmp_path):
    # every image of an "aligned" set is the same scene up to a small shift, brightness and noise;
    # "variable" draws a new object each time
    spread = {}
    for kind in ("aligned", "variable"):
        make_labelled_folder(tmp_path / kind, n_per_type=1, size=64, seed=1, kind=kind,
                             normal_root=tmp_path / f"{kind}_normal", n_normal=6)
        normals = np.stack([_pixels(p) for p in find_images(tmp_path / f"{kind}_normal")]).astype(float)
        spread[kind] = np.abs(normals - np.median(normals, 0)).mean()
    assert spread["aligned"] < 0.5 * spread["variable"]


def test_refuses_non_empty_root_and_bad_args(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(AnoclustError, match="not an empty folder"):
        make_mvtec_category(tmp_path / "x")
    with pytest.raises(ValueError):
        make_labelled_folder(tmp_path / "y", kind="weird")
    with pytest.raises(ValueError):
        make_mvtec_category(tmp_path / "z", defect_types=("scratch", "bogus"))
