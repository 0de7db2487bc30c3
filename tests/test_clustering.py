import numpy as np
import pytest

from anoclust.clustering import METHODS, cluster_embeddings, normalize_embeddings, relabel_by_size
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


def test_normalizations():
    x, _ = blobs()
    assert np.allclose(np.linalg.norm(normalize_embeddings(x, "l2"), axis=1), 1)
    w = normalize_embeddings(x, "whiten")
    assert np.allclose(np.cov(w.T, bias=True), np.eye(w.shape[1]), atol=1e-6)
    with pytest.raises(ValueError):
        normalize_embeddings(x, "bogus")
