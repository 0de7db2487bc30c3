"""The multiple-instance baselines: chamfer and Hausdorff distances between patch bags."""

import csv
import math

import numpy as np
import pytest

import anoclust.bag_distances as bd
from anoclust.metrics import clustering_scores
from conftest import call_cli

# Three images of 4 patches (a 2 x 2 grid: no border ring) in 2 dimensions.
SQUARE = [(0, 0), (1, 0), (0, 1), (1, 1)]
OUTLIER = [(0, 0), (1, 0), (0, 1), (4, 1)]  # the square with (1, 1) moved to (4, 1)
POINT = [(3, 4)] * 4


def _bags(*bags):
    return np.array(bags, dtype=np.float16)


def test_hand_computed_values():
    d = bd.bag_distances(_bags(SQUARE, OUTLIER, POINT), border=3, per_bag=4)
    # SQUARE -> OUTLIER: 0, 0, 0 and 1 for (1, 1); OUTLIER -> SQUARE: 0, 0, 0 and 3 for (4, 1).
    assert d.chamfer[0, 1] == pytest.approx((1 / 4 + 3 / 4) / 2)
    assert d.hausdorff[0, 1] == pytest.approx(3.0)
    # SQUARE -> POINT: 5, sqrt(20), sqrt(18), sqrt(13); POINT -> SQUARE: sqrt(13) four times.
    to_point = (5 + math.sqrt(20) + math.sqrt(18) + math.sqrt(13)) / 4
    assert d.chamfer[0, 2] == pytest.approx((to_point + math.sqrt(13)) / 2, rel=1e-6)
    assert d.hausdorff[0, 2] == pytest.approx(5.0, rel=1e-6)
    # OUTLIER -> POINT: 5, sqrt(20), sqrt(18), sqrt(10); POINT -> OUTLIER: sqrt(10) from (4, 1).
    to_point = (5 + math.sqrt(20) + math.sqrt(18) + math.sqrt(10)) / 4
    assert d.chamfer[1, 2] == pytest.approx((to_point + math.sqrt(10)) / 2, rel=1e-6)
    assert d.hausdorff[1, 2] == pytest.approx(5.0, rel=1e-6)
    assert d["chamfer"] is d.chamfer
    with pytest.raises(KeyError):
        d["uniform"]


def _brute_force(x):
    n = len(x)
    chamfer, hausdorff = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            dist = np.linalg.norm(x[i][:, None] - x[j][None], axis=2)
            a, b = dist.min(1), dist.min(0)
            chamfer[i, j] = (a.mean() + b.mean()) / 2
            hausdorff[i, j] = max(a.max(), b.max())
    return chamfer, hausdorff


def test_blocks_threads_subsample_symmetry_and_identical_bags(monkeypatch):
    rng = np.random.default_rng(0)
    bags = (rng.normal(size=(13, 64, 6)) + 5).astype(np.float16)  # 8 x 8 grid, ring of 1 left out
    bags[9] = bags[4]
    pos = bd.patch_positions(64, border=1, per_bag=20, seed=3)
    assert len(pos) == 20 and np.array_equal(pos, np.sort(pos))
    interior = np.arange(64).reshape(8, 8)[1:7, 1:7].ravel()
    assert np.isin(pos, interior).all()
    monkeypatch.setattr(bd, "BLOCK_ELEMENTS", (3 * 20) ** 2)  # blocks of 3 images: uneven last block
    small = bd.bag_distances(bags, border=1, per_bag=20, seed=3, n_threads=2)
    monkeypatch.undo()
    whole = bd.bag_distances(bags, border=1, per_bag=20, seed=3, n_threads=1)
    chamfer, hausdorff = _brute_force(bags[:, pos].astype(np.float64))
    for name, truth in (("chamfer", chamfer), ("hausdorff", hausdorff)):
        for d in (small[name], whole[name]):
            assert d.dtype == np.float64 and d.shape == (13, 13)
            assert np.array_equal(d, d.T)
            assert np.all(np.diag(d) == 0)
            assert d[4, 9] == 0.0  # identical bags, exactly
            assert np.allclose(d, truth, rtol=1e-5, atol=1e-5)
        assert np.allclose(small[name], whole[name], rtol=1e-6, atol=1e-6)
    assert (hausdorff >= chamfer - 1e-12).all()


def test_seed_only_draws_the_patches():
    rng = np.random.default_rng(1)
    bags = rng.normal(size=(6, 64, 4)).astype(np.float16)
    a = bd.bag_distances(bags, border=0, per_bag=16, seed=5)
    b = bd.bag_distances(bags, border=0, per_bag=16, seed=5)
    c = bd.bag_distances(bags, border=0, per_bag=16, seed=6)
    assert np.array_equal(a.chamfer, b.chamfer) and np.array_equal(a.hausdorff, b.hausdorff)
    assert not np.array_equal(a.chamfer, c.chamfer)
    assert bd.uses_seed(64, border=0, per_bag=16)
    assert not bd.uses_seed(64, border=1, per_bag=36)  # 6 x 6 interior: every patch compared
    assert len(bd.patch_positions(64, border=1, per_bag=36, seed=0)) == 36


def _groups(n_per_group=8, n_groups=3, seed=0):
    """Images of one shared background texture, each with 3 defect patches around its group's centre."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, 8)) * 4
    bags, truth = [], []
    for g in range(n_groups):
        for _ in range(n_per_group):
            bag = rng.normal(size=(36, 8)) * 0.3
            spots = rng.choice(36, 3, replace=False)
            bag[spots] = centres[g] + rng.normal(size=(3, 8)) * 0.3
            bags.append(bag)
            truth.append(g)
    return np.array(bags, dtype=np.float16), np.array(truth)


@pytest.mark.parametrize("clustering", bd.CLUSTERINGS)
def test_separated_groups_are_recovered(clustering):
    bags, truth = _groups()
    d = bd.bag_distances(bags, border=0, per_bag=36)
    for name in bd.BAG_BASELINES:
        labels = bd.cluster_distances(d[name], 3, clustering)
        assert clustering_scores(truth, labels)["ari"] == pytest.approx(1.0)
        assert np.array_equal(labels, bd.cluster_distances(d[name], 3, clustering))  # deterministic
    for name in bd.BAG_BASELINES:
        assert clustering_scores(truth, bd.bag_labels(d, 3, name))["ari"] == pytest.approx(1.0)


def test_cluster_distances_checks():
    d = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert bd.cluster_distances(d, 1, "spectral").tolist() == [0, 0]
    with pytest.raises(ValueError):
        bd.cluster_distances(d, 3, "average")
    with pytest.raises(ValueError):
        bd.cluster_distances(d, 2, "ward")
    with pytest.raises(ValueError):
        bd.bag_distances(np.zeros((0, 4, 2), dtype=np.float16))


def test_evaluate_cli_bag_baselines(tmp_path, capsys, one_thread):
    from anoclust.synthetic import make_labelled_folder

    data = make_labelled_folder(tmp_path / "tex", n_per_type=4, size=64, kind="texture",
                                classes=("stripes_h", "blotches", "pits"))
    out = tmp_path / "eval"
    # 128 px: a 16 x 16 grid whose 144 interior patches exceed PATCHES_PER_BAG, so the seed matters
    code, stdout, stderr = call_cli(capsys, "evaluate", str(data), "--weightings", "chamfer,hausdorff",
                                    "--seeds", "0,1", "--image-size", "128", "--out", str(out),
                                    "--cache", str(tmp_path / "cache"), "--quiet")
    assert code == 0, stderr
    rows = list(csv.DictReader(open(out / "results.csv", newline="")))
    assert [r["weighting"] for r in rows] == ["chamfer", "hausdorff"]
    for r in rows:
        assert r["dataset"] == "tex" and r["n_images"] == "12" and r["k"] == "3" and r["n_seeds"] == "2"
        assert 0.0 <= float(r["nmi"]) <= 1.0
    md = (out / "results.md").read_text()
    assert "| dataset | images | k | chamfer NMI / ARI / F1 | hausdorff NMI / ARI / F1 |" in md
    assert "| tex | 12 | 3 |" in md and "bags of raw patch features" in md
    # the names are checked, and the default list holds the baselines
    code, _, stderr = call_cli(capsys, "evaluate", str(data), "--weightings", "chamfer,euclid", "--out",
                               str(tmp_path / "o"))
    assert code == 2 and "euclid" in stderr and "hausdorff" in stderr
    from anoclust.cli import build_parser

    args = build_parser().parse_args(["evaluate", str(data), "--out", str(tmp_path / "o")])
    assert args.weightings[-2:] == ["chamfer", "hausdorff"]
