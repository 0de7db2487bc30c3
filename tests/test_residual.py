"""Residual pooling: each image's top patches minus their nearest normal patches (anoclust.weighting.residual),
and its place among the descriptions pooling "auto" chooses from."""

import numpy as np
import pytest
import torch

from anoclust import fit
from anoclust.errors import AnoclustError
from anoclust.metrics import clustering_scores
from anoclust.model import read_model, save_model
from anoclust.settings import Params
from anoclust.space import PatchSpace, Whitening
from anoclust.weighting import residual
from anoclust.weighting.reference import ReferenceWeighting
from anoclust.weighting.residual import DENSE_MATCH, NearestRows, match_ratio, residual_average

BANK = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
# one image, three patches; the third has no weight
BAGS = np.array([[[1, 0], [10, 1], [5, 5]]], dtype=np.float32)
WEIGHTS = np.array([[0.6, 0.2, 0.0]], dtype=np.float32)


def test_one_neighbour_hand_computed():
    # patch 0's nearest is (0, 0): difference (1, 0); patch 1's is (10, 0): (0, 1).
    # Top two weights renormalised: 0.75 and 0.25 -> (0.75, 0.25)
    e = residual_average(BAGS, WEIGHTS, BANK, None, n_patches=2, n_neighbours=1)
    np.testing.assert_allclose(e, [[0.75, 0.25]], atol=1e-6)
    # only the top patch: its own difference
    np.testing.assert_allclose(residual_average(BAGS, WEIGHTS, BANK, None, n_patches=1, n_neighbours=1), [[1, 0]],
                               atol=1e-6)


def test_neighbours_are_averaged_hand_computed():
    # patch 0's two nearest: (0, 0) and (10, 0), mean (5, 0): difference (-4, 0);
    # patch 1's: (10, 0) and (0, 0) (distance 10.05 against 13.5), mean (5, 0): (5, 1)
    e = residual_average(BAGS, WEIGHTS, BANK, None, n_patches=2, n_neighbours=2)
    np.testing.assert_allclose(e, [[0.75 * -4 + 0.25 * 5, 0.25]], atol=1e-6)


def test_differences_are_taken_in_the_whitened_space():
    # a whitening that scales the first axis by 2 and has a mean: the mean cancels
    w = Whitening(np.array([3.0, -1.0], dtype=np.float32), np.diag([2.0, 1.0]).astype(np.float32))
    e = residual_average(BAGS, WEIGHTS, BANK, w, n_patches=2, n_neighbours=1)
    np.testing.assert_allclose(e, [[1.5, 0.25]], atol=1e-6)


@pytest.mark.parametrize("search", ["exact", "bf16"])
@pytest.mark.parametrize("group, block", [(1, 2), (4, 8), (9, 27), (4, 64), (64, 64)])
def test_nearest_rows_over_bank_blocks_and_groups_equals_brute_force(monkeypatch, group, block, search):
    monkeypatch.setattr(residual, "GROUP_ROWS", group)
    monkeypatch.setattr(residual, "BANK_ROWS", block)
    g = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(30, 5, generator=g), torch.randn(37, 5, generator=g)
    # the k nearest often share a group when groups are large; a clustered bank makes sure
    bank[:8] = queries[0] + 0.01 * torch.randn(8, 5, generator=g)
    found = NearestRows(bank, search)(queries, 3)
    expected = torch.cdist(queries, bank).topk(3, largest=False).indices
    assert torch.equal(found, expected)
    small = NearestRows(bank[:2], search)(queries, 3)  # fewer bank rows than neighbours
    assert torch.equal(small, torch.cdist(queries, bank[:2]).topk(2, largest=False).indices)


def test_match_ratio_hand_computed():
    # three images of two patches on a line: A {0, 10}, B {1, 13}, C {3, 20}. Each patch against
    # the other images' four: nearest / lower median = A 1/3, 3/7; B 1/2, 3/7; C 2/3, 7/10, whose
    # lower median is 3/7. A patch's own image never counts (B's 13 is not 1's neighbour).
    normals = np.array([[[0], [10]], [[1], [13]], [[3], [20]]], dtype=np.float32)
    assert match_ratio(normals, PatchSpace(), 100) == pytest.approx(3 / 7)
    assert match_ratio(normals[:1], PatchSpace(), 100) is None  # one image: nothing to match
    # only the first images holding about max_patches patches: A and B, every ratio 1
    assert match_ratio(normals, PatchSpace(), 4) == pytest.approx(1.0)


def test_the_residual_leads_only_where_normal_patches_match_closely():
    rng = np.random.default_rng(0)
    parts = 10 * rng.normal(size=(3, 64))
    alike = (parts[rng.integers(3, size=(20, 1))] + rng.normal(0, 0.5, (20, 36, 64))).astype(np.float32)
    unalike = rng.normal(size=(20, 36, 64)).astype(np.float32)  # no patch has a counterpart
    for normals, leads in ((alike, "residual"), (unalike, "weighted")):
        w = ReferenceWeighting(Params(border=1)).fit(None, normals)
        assert (w.normal_match <= DENSE_MATCH) == (leads == "residual")
        assert w.auto_poolings()[0] == leads and sorted(w.auto_poolings()) == sorted(w.poolings)
    # a forced pooling has nothing to lead: the ratio is not measured
    assert ReferenceWeighting(Params(border=1, pooling="weighted")).fit(None, alike).normal_match is None


def part_bags(n_per_type: int, seed: int, normal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Bags of 8 x 8 patches, 6 channels. Every image shows one of four parts, each with its own
    strong appearance (shared by the normal images); a defect image has three patches moved from
    its part by a weak shift, whose direction is the defect type. Pooled as they are, the parts
    dominate the description; their differences from the nearest normal patches are the shift."""
    rng = np.random.default_rng(seed)
    parts = 12 * np.random.default_rng(99).normal(size=(4, 6))
    truth = np.repeat([0, 1], n_per_type)
    bags = np.empty((len(truth), 64, 6), dtype=np.float32)
    for i, t in enumerate(truth):
        bags[i] = parts[rng.integers(4)] + rng.normal(0, 0.3, (64, 6))
        if not normal:
            for cell in rng.choice([9 + 8 * r + c for r in range(6) for c in range(6)], 3, replace=False):
                bags[i, cell] += 4 * np.eye(6)[t]
    return bags, truth


def test_auto_chooses_the_residual_when_parts_dominate_and_a_saved_model_follows(tmp_path):
    bags, truth = part_bags(15, seed=0)
    normals, _ = part_bags(20, seed=1, normal=True)
    params = Params(n_clusters=2, weighting="reference", border=1)
    fitted = fit.fit_bags(bags, normals, params)
    r = fitted.model.resolved
    assert list(r.pooling_silhouettes) == ["residual", "weighted", "average"]  # the normals match closely
    assert r.normal_match <= DENSE_MATCH
    assert r.pooling == "residual" and (r.embed_taps, r.normalize) == ("all", "none")
    assert clustering_scores(truth, fitted.labels)["nmi"] == 1.0
    weighted = fit.fit_bags(bags, normals, Params(n_clusters=2, weighting="reference", border=1, pooling="weighted"))
    assert clustering_scores(truth, weighted.labels)["nmi"] < 0.5

    model = read_model(save_model(fitted.model, tmp_path / "m"))
    assert model.resolved.pooling == "residual" and model.resolved.normal_match == r.normal_match
    new, new_truth = part_bags(5, seed=2)
    placed = fit.assign_bags(model, new)
    assert clustering_scores(new_truth, placed.labels)["nmi"] == 1.0


def test_residual_pooling_needs_normal_images(tmp_path, capsys):
    bags, _ = part_bags(5, seed=0)
    with pytest.raises(AnoclustError, match="--pooling residual needs normal images"):
        fit.fit_bags(bags, None, Params(n_clusters=2, weighting="unsupervised", pooling="residual"))
    # the CLI says so before extracting anything, in one line
    from anoclust.synthetic import make_labelled_folder
    from conftest import call_cli

    make_labelled_folder(tmp_path / "data", n_per_type=2, size=64)
    for extra, says in (([], "pass --normal"), (["--weighting", "unsupervised"], "needs the reference weighting")):
        code, _, err = call_cli(capsys, "cluster", str(tmp_path / "data"), "--pooling", "residual", *extra,
                                "--out", str(tmp_path / "out"))
        assert code == 2 and err.count("\n") == 1 and "--pooling residual" in err and says in err
    assert not (tmp_path / "out").exists()


def test_evaluate_leaves_out_the_weightings_that_cannot_pool_residual():
    from anoclust.evaluation import Dataset, Embedded, evaluate_embedded

    bags, truth = part_bags(10, seed=0)
    normals, _ = part_bags(10, seed=1, normal=True)
    data = Embedded(Dataset("parts", "folder", None), bags, [str(t) for t in truth], normals)
    params = Params(border=1, pooling="residual")
    rows = evaluate_embedded(data, params, ["uniform", "unsupervised", "reference"])
    assert [r["weighting"] for r in rows] == ["uniform", "reference"]
    assert rows[1]["nmi"] == 1.0


def test_cli_residual_pooling_end_to_end(tmp_path, capsys):
    import csv
    import json

    from anoclust.synthetic import make_labelled_folder
    from conftest import call_cli

    data, normals = tmp_path / "data", tmp_path / "normals"
    make_labelled_folder(data, n_per_type=4, size=96, classes=["scratch", "spot"], normal_root=normals, n_normal=6)
    run, model = tmp_path / "run", tmp_path / "model"
    code, printed, err = call_cli(capsys, "cluster", str(data), "--normal", str(normals), "--k", "2",
                                  "--image-size", "96", "--pooling", "residual", "--save-model", str(model),
                                  "--out", str(run), "--quiet", "--no-cache")
    assert code == 0, err
    assert "NMI 1.000" in printed
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    assert (resolved["pooling"], resolved["embed_taps"], resolved["normalize"]) == ("residual", "all", "none")
    assert json.loads((model / "model.json").read_text())["resolved"]["pooling"] == "residual"
    code, _, err = call_cli(capsys, "assign", str(model), str(data), "--out", str(tmp_path / "new"), "--quiet",
                            "--no-cache")
    assert code == 0, err

    def clusters(folder):
        with open(folder / "assignments.csv", newline="") as f:
            return {r["path"]: r["cluster"] for r in csv.DictReader(f)}

    assert clusters(tmp_path / "new") == clusters(run)  # the fitted images go back to their own clusters
