import numpy as np
import pytest

from anoclust.errors import AnoclustError
from anoclust.estimator import AnomalyClustering
from anoclust.choose_k import K_CRITERIA, choose_k


def blobs(k, n_per=15, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(k, d))
    return np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres]), np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_default_criterion_finds_separated_groups(k):
    x, _ = blobs(k)
    chosen, diag = choose_k(x, k_max=10)
    assert chosen == k
    assert diag["criterion"] == "knee" and diag["ks"] == list(range(2, 11))


@pytest.mark.parametrize("criterion", K_CRITERIA)
def test_every_criterion_finds_four_separated_groups(criterion):
    x, _ = blobs(4, n_per=10)
    k, diag = choose_k(x, k_max=6, criterion=criterion)
    assert k == 4 and len(diag["values"]) == 5


def test_partitions_of_ward_kmeans_are_the_polished_tree_cuts():
    from anoclust.clustering import cluster_embeddings
    from anoclust.metrics import clustering_scores
    from anoclust.choose_k import _partitions

    x = np.random.default_rng(1).normal(size=(50, 3))  # no clear groups: the polish moves points
    parts = _partitions(x, range(2, 6), "ward_kmeans", 0)
    for k, labels in parts.items():
        direct = cluster_embeddings(x, k, "ward_kmeans", 0)
        assert clustering_scores(direct, labels)["ari"] == pytest.approx(1.0)


def test_six_groups_and_tiny_sets():
    x, _ = blobs(6)
    assert choose_k(x, k_max=10, criterion="eigengap")[0] == 6
    assert choose_k(x[:2], k_max=20)[0] == 1  # two images: nothing to compare
    with pytest.raises(ValueError):
        choose_k(x, criterion="nope")


def test_estimator_auto_is_the_default_and_sets_n_clusters():
    x, y = blobs(4, n_per=12, d=6)
    bags = np.repeat(x[:, None, :], 4, axis=1).astype(np.float32)  # identical patches: embedding = x
    est = AnomalyClustering(weighting="uniform").fit(bags)
    assert est.n_clusters == "auto" and est.n_clusters_ == 4
    assert est.k_diagnostics_["criterion"] == "knee"
    with pytest.raises(AnoclustError, match="k_max"):
        AnomalyClustering(weighting="uniform", k_max=1).fit(bags)
