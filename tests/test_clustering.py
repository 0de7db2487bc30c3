import numpy as np
import pytest

from anoclust.clustering import METHODS, cluster_embeddings, relabel_by_size
from anoclust.space import EmbeddingSpace
from anoclust.metrics import clustering_scores


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0]], dtype=float)
    y = np.repeat([0, 1, 2], [24, 18, 14])
    return centres[y] + rng.normal(scale=0.5, size=(len(y), 3)), y


@pytest.mark.parametrize("method", METHODS)
def test_every_method_recovers_separated_blobs(method):
    x, y = blobs()
    labels = cluster_embeddings(x, 3, method=method, random_state=0)
    assert clustering_scores(y, labels)["nmi"] == pytest.approx(1.0)
    # Clusters are numbered by size, largest first.
    assert np.bincount(labels).tolist() == [24, 18, 14]


def test_relabel_by_size():
    assert relabel_by_size(np.array([7, 3, 3, 7, 3, 1])).tolist() == [1, 0, 0, 1, 0, 2]


def normalize_embeddings(x, how, components=0):
    return EmbeddingSpace(how, x, components)(x)


def test_normalizations():
    x, _ = blobs()
    assert np.allclose(np.linalg.norm(normalize_embeddings(x, "l2"), axis=1), 1)
    w = normalize_embeddings(x, "whiten")
    assert np.allclose(np.cov(w.T, bias=True), np.eye(w.shape[1]), atol=1e-6)
    with pytest.raises(ValueError):
        normalize_embeddings(x, "bogus")


def test_principal_axes_kept_then_unit_length():
    # Variance 2 along the first axis, 0.5 along the second, none along the third.
    x = np.array([[2.0, 0, 0], [-2, 0, 0], [0, 1, 0], [0, -1, 0]])
    one = EmbeddingSpace("none", x, components=1)
    assert np.allclose(one(x), [[1], [-1], [0], [0]])  # the second axis's points fall on the centre
    assert np.allclose(one(np.array([[3.0, 5, 7]])), [[1]])  # new rows: the fitted axis, then unit length
    two = normalize_embeddings(x, "none", components=2)
    assert np.allclose(two, [[1, 0], [-1, 0], [0, 1], [0, -1]])
    # Whitened, every axis varies alike: the projection keeps the whitening's leading axes.
    w = normalize_embeddings(np.random.default_rng(0).normal(size=(50, 6)) * [5, 4, 3, 2, 1, 1], "whiten", 3)
    assert w.shape == (50, 3) and np.allclose(np.linalg.norm(w, axis=1), 1)


def test_kmeans_refined_moves_a_point_to_the_nearer_centre():
    from anoclust.clustering import kmeans_refined

    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    # centres 0.5 and 7.67: the point at 2 is nearer the first (1.5 against 5.67); then the
    # centres are 1 and 10.5 and nothing moves again.
    labels = kmeans_refined(x, np.array([0, 0, 1, 1, 1]))
    assert labels.tolist() in ([0, 0, 0, 1, 1], [1, 1, 1, 0, 0])


def within_ss(x, labels):
    return sum(((x[labels == c] - x[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels))


def test_ward_kmeans_never_has_more_within_cluster_spread_than_ward():
    rng = np.random.default_rng(3)
    improved = 0
    for _ in range(10):
        x = rng.normal(size=(60, 2))  # no clear clusters: Ward's greedy merges are often not optimal
        ward, polished = (cluster_embeddings(x, 4, m) for m in ("ward", "ward_kmeans"))
        assert within_ss(x, polished) <= within_ss(x, ward) + 1e-9
        improved += within_ss(x, polished) < within_ss(x, ward) - 1e-9
    assert improved > 0
