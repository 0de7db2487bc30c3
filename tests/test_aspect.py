"""Aspect-preserving input (--aspect keep): the grid per image, the bag's layout (interior, then
ring), the cache, scoring that leaves the ring out, and the whole path through the CLI (run
folder, report heat maps, saved model, assign)."""

import base64
import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from anoclust.features.aggregate import aggregate_patches
from anoclust.features.aspect import arrange_bags, bag_layout, choose_grid, input_shape, interior_count, ring_width
from conftest import call_cli

# ---- the grid choice, by hand -------------------------------------------------------------------


def test_square_image_gets_the_square_interior():
    # 288 px at stride 8: a 36 x 36 grid, a ring of 3, T = 30 x 30
    assert (ring_width(36, 3), interior_count(36, 3)) == (3, 900)
    assert choose_grid(288, 288, 900, 3) == (30, 30)
    assert choose_grid(103, 103, 900, 3) == (30, 30)


def test_a_16_to_1_strip():
    # Landscape pairs of 900 near ratio 16 with the ring: (4, 225) -> 231/10 = 23.1,
    # (5, 180) -> 186/11 = 16.9, (6, 150) -> 156/12 = 13.0; |ln(16.9/16)| = 0.055 is the least.
    assert choose_grid(64, 1024, 900, 3) == (5, 180)
    assert input_shape((5, 180), 3, 8) == (88, 1488)


def test_tall_images_get_the_transposed_grid():
    assert choose_grid(1024, 64, 900, 3) == (180, 5)
    for h, w in [(100, 632), (50, 400), (96, 512), (300, 310)]:
        assert choose_grid(w, h, 900, 3) == choose_grid(h, w, 900, 3)[::-1]


def test_small_grids_and_no_ring():
    # 64 px: an 8 x 8 grid, ring min(3, 8 // 8) = 1, T = 36; a 4:1 image: (2, 18) -> 20/4 = 5,
    # (3, 12) -> 14/5 = 2.8; |ln(5/4)| = 0.22 < |ln(4/2.8)| = 0.36
    assert (ring_width(8, 3), interior_count(8, 3)) == (1, 36)
    assert choose_grid(32, 128, 36, 1) == (2, 18)
    # no ring: the grid itself has the aspect; 4:1 of 16 patches is exactly (2, 8)
    assert choose_grid(50, 200, 16, 0) == (2, 8)
    with pytest.raises(ValueError):
        choose_grid(0, 10, 16, 0)


def test_layout_puts_the_interior_first_then_ring_patches_evenly():
    # a 2 x 3 interior with a ring of 1: a 4 x 5 grid; interior positions 6, 7, 8, 11, 12, 13
    # and the 14 ring positions 0-5, 9, 10, 14-19 in row-major order
    ring = [0, 1, 2, 3, 4, 5, 9, 10, 14, 15, 16, 17, 18, 19]
    assert bag_layout(2, 3, 1, 14).tolist() == [6, 7, 8, 11, 12, 13] + ring  # all of the ring
    # 7 of 14: every second one
    assert bag_layout(2, 3, 1, 7).tolist() == [6, 7, 8, 11, 12, 13] + ring[::2]
    assert bag_layout(2, 3, 0, 0).tolist() == list(range(6))
    with pytest.raises(ValueError):
        bag_layout(2, 3, 1, 15)
    bags = torch.arange(2 * 20 * 3, dtype=torch.float32).view(2, 20, 3)
    assert torch.equal(arrange_bags(bags, 4, 5, 1, 7), bags[:, [6, 7, 8, 11, 12, 13] + ring[::2]])
    with pytest.raises(ValueError):
        arrange_bags(bags, 3, 5, 1, 7)


def test_a_longer_grid_always_has_ring_enough():
    # ih + iw >= 2 sqrt(T): every grid the choice can make carries at least the square's ring
    for side, border in [(36, 3), (8, 3), (16, 2)]:
        r, t = ring_width(side, border), interior_count(side, border)
        for h, w in [(64, 1024), (100, 632), (1024, 64), (300, 310), (1, 5000)]:
            rows, cols = choose_grid(h, w, t, r)
            assert len(bag_layout(rows, cols, r, side * side - t)) == side * side


def test_aggregation_of_a_non_square_map_is_row_major():
    shallow = torch.zeros(1, 1, 6, 10)
    shallow[0, 0, 2, 7] = 9.0
    bags = aggregate_patches([shallow, torch.ones(1, 2, 3, 5)], neighbourhood=1)
    assert bags.shape == (1, 60, 3)
    assert bags[0, 2 * 10 + 7, 0] == 9.0 and bags[0, :, 0].sum() == 9.0


def test_decoder_takes_a_shape_from_the_oriented_size(tmp_path):
    from anoclust.inputs.decode import load_image

    p = tmp_path / "turned.jpg"
    im = Image.new("RGB", (120, 40), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 120 x 40, shown 40 wide x 120 tall
    im.save(p, exif=exif.tobytes())
    seen = []

    def size(w, h):
        seen.append((w, h))
        return 48, 16

    assert load_image(p, size).shape == (3, 48, 16)
    assert seen == [(40, 120)]


# ---- extraction ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strips(tmp_path_factory):
    from anoclust.synthetic import make_strip_folder

    root = tmp_path_factory.mktemp("strips")
    # three shapes: 8:1 and 4:1 landscape, and a 5:1 portrait strip
    shapes = ((32, 256), (48, 192), (200, 40))
    make_strip_folder(root / "in", n_per_type=3, shapes=shapes, classes=("spot", "crack", "dots"),
                      normal_root=root / "normal", n_normal=4)
    return root


def _extractor(cache=None, aspect="keep"):
    from anoclust.features.extract import EmbeddingConfig, PatchExtractor

    return PatchExtractor(EmbeddingConfig(image_size=64, aspect=aspect), cache_dir=cache, batch_size=4)


def _paths(strips):
    return sorted(str(p) for p in (strips / "in").rglob("*.png"))


def test_grids_are_recorded_per_image_and_bags_do_not_depend_on_batch_mates(strips, tmp_path, one_thread):
    paths = _paths(strips)
    ex = _extractor(tmp_path / "c").extract(paths)
    assert ex.bags.shape[:2] == (9, 64) and ex.ring == 1
    want = {(256, 32): (1, 36), (192, 48): (2, 18), (40, 200): (18, 2)}  # (width, height) -> grid
    for p, grid in zip(paths, ex.grids):
        assert tuple(grid) == want[Image.open(p).size]
    alone = _extractor().extract([paths[4]])
    assert np.array_equal(alone.bags[0], ex.bags[4]) and tuple(alone.grids[0]) == tuple(ex.grids[4])
    # from the cache: the same bags, and the grids come back with them
    again = _extractor(tmp_path / "c").extract(paths)
    assert np.array_equal(again.bags, ex.bags) and np.array_equal(again.grids, ex.grids)


def test_dask_shard_extracts_as_locally(strips, one_thread):
    from anoclust import distributed

    paths = _paths(strips)[:4]
    local = _extractor().extract(paths)
    n, rows, bags, grids, skipped = distributed._extract_shard(paths, _extractor().config, None, 4, True)
    assert n == 4 and not skipped
    assert np.array_equal(bags, local.bags) and np.array_equal(grids, local.grids)


def test_a_squash_cache_entry_is_never_used_in_keep_mode(strips, tmp_path, one_thread):
    paths = _paths(strips)[:3]
    cache = tmp_path / "c"
    squash = _extractor(cache, "squash")
    squash.extract(paths)
    keep = _extractor(cache, "keep")
    assert squash.model_id != keep.model_id and "keep" not in squash.model_id
    got = keep.extract(paths)
    assert len(list(cache.rglob("*.bag"))) == 6  # nothing reused: each mode wrote its own entries
    assert got.bags.shape[1] == squash.extract(paths).bags.shape[1] == 64
    assert keep.n_interior == 36


# ---- through the CLI ----------------------------------------------------------------------------


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_cluster_report_and_assign_in_keep_mode(strips, tmp_path, capsys, one_thread):
    from anoclust.report import load_run

    data, normal, cache = str(strips / "in"), str(strips / "normal"), str(tmp_path / "c")
    common = ["--k", "3", "--image-size", "64", "--cache", cache, "--quiet"]
    code, out, err = call_cli(capsys, "cluster", data, "--out", str(tmp_path / "squash"), "--aspect", "squash",
                              *common)
    assert code == 0, err
    assert "aspect" not in out
    n_squash = len(list((tmp_path / "c").rglob("*.bag")))
    # the default, --aspect auto, keeps these strips' shapes (8:1, 4:1 and 5:1)
    code, out, err = call_cli(capsys, "cluster", data, "--normal", normal, "--out", str(tmp_path / "run"),
                              "--save-model", str(tmp_path / "model"), *common)
    assert code == 0, err
    assert "each image kept its aspect ratio" in out
    # 9 images + 4 normals extracted again in keep mode: no squash entry reused
    assert len(list((tmp_path / "c").rglob("*.bag"))) == n_squash + 13

    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["aspect"] == "auto" and config["resolved"]["aspect"] == "keep"
    with np.load(run / "embeddings.npz") as npz:
        grid, ring, weights, paths = npz["grid"], int(npz["ring"]), npz["weights"], list(npz["paths"])
    assert grid.shape == (9, 2) and ring == 1 and weights.shape == (9, 64)
    assert (weights[:, 36:] == 0).all()  # the ring patches are never weighted
    assert (grid.prod(1) == 36).all() and len({tuple(g) for g in grid}) == 3
    assert all(np.isfinite(float(r["max_patch_score"])) for r in _rows(run / "assignments.csv"))

    # the report: one heat map per image on its own grid, a transparent margin where the ring was
    loaded = load_run(run)
    assert np.array_equal(loaded.grids, grid) and loaded.ring == 1
    html = (run / "report.html").read_text()
    heats = [uri for uri in html.split('class="heat" src="')[1:]]
    assert len(heats) == 9
    sizes = set()
    for uri in heats:
        im = Image.open(io.BytesIO(base64.b64decode(uri.split('"')[0].split(",", 1)[1])))
        a = np.asarray(im.convert("RGBA"))
        sizes.add(im.size)
        assert (a[0, :, 3] == 0).all() and (a[:, -1, 3] == 0).all()
    assert sizes == {(cols + 2, rows + 2) for rows, cols in {tuple(g) for g in grid}}
    code, _, err = call_cli(capsys, "report", str(run))
    assert code == 0, err

    # the saved model extracts new images the same way: the same scores, from the same cache entries
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["settings"]["aspect"] == "keep" and meta["patch_shape"][0] == 64
    code, _, err = call_cli(capsys, "assign", str(tmp_path / "model"), data, "--out", str(tmp_path / "new"),
                            "--cache", cache, "--quiet")
    assert code == 0, err
    assert len(list((tmp_path / "c").rglob("*.bag"))) == n_squash + 13
    fitted = {r["path"]: float(r["max_patch_score"]) for r in _rows(run / "assignments.csv")}
    placed = {r["path"]: float(r["max_patch_score"]) for r in _rows(tmp_path / "new" / "assignments.csv")}
    assert placed.keys() == fitted.keys()
    assert all(placed[p] == pytest.approx(fitted[p], rel=1e-5) for p in fitted)
    assert set(map(str, paths)) == set(fitted)


def test_a_run_folder_whose_grids_differ_in_size_is_refused(tmp_path, capsys):
    from anoclust.outputs import write_csv, write_json, write_npz

    folder = tmp_path / "run"
    folder.mkdir()
    write_csv(folder / "assignments.csv", ["path", "cluster"], [["a.png", "0"], ["b.png", "1"]])
    write_json(folder / "config.json", {"settings": {}, "resolved": {}})
    w = np.full((2, 6), 1 / 6, np.float32)
    write_npz(folder / "embeddings.npz", paths=np.array(["a.png", "b.png"]), labels=np.array([0, 1]),
              embeddings=np.eye(2, dtype=np.float32), weights=w, scores=w, grid=np.array([[2, 3], [1, 5]]),
              ring=np.int64(1))
    code, _, err = call_cli(capsys, "report", str(folder))
    assert code == 2 and err.count("\n") == 1 and "different sizes" in err
    write_npz(folder / "embeddings.npz", paths=np.array(["a.png", "b.png"]), labels=np.array([0, 1]),
              embeddings=np.eye(2, dtype=np.float32), weights=w, scores=w, grid=np.array([[2, 3], [6, 1]]),
              ring=np.int64(-1))
    code, _, err = call_cli(capsys, "report", str(folder))
    assert code == 2 and "ring" in err


def _image(path, width, height):
    Image.new("RGB", (width, height), (90, 120, 150)).save(path)
    return path


@pytest.mark.parametrize("shapes, expected", [
    ([(400, 100), (100, 400), (300, 300)], "keep"),  # median ratio 4: far enough from square
    ([(399, 100), (400, 100), (300, 300)], "squash"),  # median 3.99, shapes varied
    ([(300, 200), (200, 300), (310, 200)], "keep"),  # one shape (1.5 to 1.55, either way up)
    ([(300, 200), (300, 200), (330, 200)], "squash"),  # 1.5 and 1.65: varied
    ([(230, 200), (230, 200)], "squash"),  # one shape, but 1.15: nearly square
    ([(240, 200), (240, 200)], "keep"),  # 1.2
    ([(64, 64)], "squash"),
])
def test_aspect_auto_keeps_the_shape_of_sets_of_long_images(tmp_path, shapes, expected):
    from anoclust.features.aspect import resolve_aspect
    from anoclust.settings import Params

    paths = [_image(tmp_path / f"{i}.png", w, h) for i, (w, h) in enumerate(shapes)]
    assert resolve_aspect(Params(), paths).aspect == expected
    (tmp_path / "broken.png").write_bytes(b"not an image")  # left out, not fatal
    assert resolve_aspect(Params(), paths + [tmp_path / "broken.png"]).aspect == expected
    assert resolve_aspect(Params(aspect="squash"), paths).aspect == "squash"  # a set value is kept


def test_extraction_refuses_an_unresolved_aspect():
    from anoclust.features.extract import EmbeddingConfig
    from anoclust.settings import Params

    with pytest.raises(ValueError, match="resolve"):
        EmbeddingConfig.of(Params(aspect="auto"))


def test_the_estimator_resolves_the_aspect_from_the_images(strips, tmp_path, one_thread):
    from anoclust import AnomalyClustering

    est = AnomalyClustering(n_clusters=3, image_size=64, cache_dir=None).fit(_paths(strips))
    assert est.model_.params.aspect == "keep" and est.aspect == "auto"
    bags = np.random.default_rng(0).normal(size=(9, 64, 8)).astype(np.float16)
    assert AnomalyClustering(n_clusters=3).fit(bags).model_.params.aspect == "squash"


@pytest.mark.slow
def test_evaluate_runs_in_keep_mode(strips, tmp_path, capsys, one_thread):
    code, _, err = call_cli(capsys, "evaluate", str(strips / "in"), "--normal", str(strips / "normal"), "--aspect",
                            "keep", "--image-size", "64", "--seeds", "0", "--no-cache", "--quiet",
                            "--out", str(tmp_path / "eval"))
    assert code == 0, err
    rows = _rows(tmp_path / "eval" / "results.csv")
    assert {"uniform", "reference", "chamfer"} <= {r["weighting"] for r in rows}
    assert "aspect keep" in (tmp_path / "eval" / "results.md").read_text()


@pytest.mark.dask
@pytest.mark.slow
def test_dask_engine_extracts_keep_mode_as_locally(strips, tmp_path, monkeypatch):
    pytest.importorskip("distributed", reason="Dask is not installed (pip install 'anoclust[dask]')")
    from anoclust import distributed
    from anoclust.inputs.listing import read_input
    from anoclust.job import RunOptions, run_clustering
    from anoclust.settings import Params

    images = read_input(strips / "in")
    monkeypatch.setattr(distributed, "EXTRACT_SHARD", 4)  # several shards per worker
    params = Params(n_clusters=3, weighting="unsupervised", n_sampled=4, image_size=64, aspect="keep")
    local = run_clustering(images, params, RunOptions(quiet=True))
    with distributed.open_engine(2, None, str(tmp_path)) as engine:
        remote = run_clustering(images, params, RunOptions(quiet=True), engine=engine)
    assert np.array_equal(remote.grids, local.grids) and remote.ring == local.ring == 1
    # NaN: the ring patches are not scored
    assert np.array_equal(remote.fit.scores, local.fit.scores, equal_nan=True)
    assert np.array_equal(remote.fit.labels, local.fit.labels)


# ---- the ring patches: the same as squash mode's for a square image, never scored --------------


def test_a_square_image_has_squash_modes_patches_interior_first(tmp_path, one_thread):
    from anoclust.space import interior_mask

    rng = np.random.default_rng(0)
    path = tmp_path / "square.png"
    Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)).save(path)
    keep = _extractor(aspect="keep").extract([str(path)])
    squash = _extractor(aspect="squash").extract([str(path)])
    k, q = keep.bags[0], squash.bags[0]
    assert k.shape == q.shape == (64, k.shape[1]) and tuple(keep.grids[0]) == (6, 6)
    # the same set of patches (rows), only the order differs
    assert sorted(map(bytes, k)) == sorted(map(bytes, q))
    # the first T rows are squash mode's interior, row by row
    assert np.array_equal(k[:36], q[interior_mask(64, 3)])


def _bags_with_other_rings(seed: int, n: int = 6, m: int = 64, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Two stacks of bags whose first T = 36 patches agree and whose last 28 (the ring) differ."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, m, d)).astype(np.float16)
    b = a.copy()
    b[:, 36:] = rng.normal(3.0, 2.0, size=(n, m - 36, d)).astype(np.float16)
    return a, b


@pytest.mark.parametrize("name", ["unsupervised", "reference"])
def test_scoring_and_pooling_leave_the_ring_patches_out(name, one_thread):
    from anoclust.settings import Params
    from anoclust.weighting import make_weighting

    params = Params(weighting=name, aspect="keep", whiten=False, n_sampled=3, border=3)
    bags, other_bags = _bags_with_other_rings(1)
    normals, other_normals = _bags_with_other_rings(2, n=4)
    results = []
    for b, nb in [(bags, normals), (other_bags, other_normals)]:
        w = make_weighting(name, params, True).fit(b, nb)
        scores = w.scores(b)
        embeddings, weights = w.pool(b, scores)
        results.append((scores, embeddings, weights, w.new_scores(b[:2])))
    (s1, e1, w1, n1), (s2, e2, w2, n2) = results
    assert np.isnan(s1[:, 36:]).all() and np.isfinite(s1[:, :36]).all()
    assert (w1[:, 36:] == 0).all() and np.allclose(w1.sum(1), 1)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_allclose(e1, e2, rtol=1e-6)  # the weighted sums meet the ring with weight 0
    np.testing.assert_array_equal(n1, n2)


def test_leave_one_out_and_bag_distances_leave_the_ring_patches_out(one_thread):
    import anoclust.bag_distances as bd
    from anoclust.settings import Params
    from anoclust.weighting import make_weighting
    from anoclust.weighting.leave_one_out import leave_one_out_scores

    params = Params(weighting="reference", aspect="keep", whiten=False, border=3)
    normals, other = _bags_with_other_rings(3, n=4)
    loo = [leave_one_out_scores(make_weighting("reference", params, True).fit(None, nb), nb)
           for nb in (normals, other)]
    np.testing.assert_array_equal(loo[0], loo[1])
    assert bd.patch_positions(64, 3, per_bag=100, aspect="keep").tolist() == list(range(36))
    d1, d2 = (bd.bag_distances(b, 3, per_bag=100, aspect="keep") for b in (normals, other))
    np.testing.assert_array_equal(d1.chamfer, d2.chamfer)
    np.testing.assert_array_equal(d1.hausdorff, d2.hausdorff)
