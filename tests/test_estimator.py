import numpy as np
import pytest
from sklearn.base import clone

from anoclust.errors import AnoclustError
from anoclust.estimator import AnomalyClustering, anomaly_clustering


def synthetic_bags(seed=0, n_per=10, m=16, d=6):
    """Bags whose background is shared and whose one defect patch decides the class."""
    rng = np.random.default_rng(seed)
    defects = np.eye(d)[:3] * 4.0
    bags, y = [], []
    for c in range(3):
        for _ in range(n_per):
            bag = rng.normal(scale=0.3, size=(m, d))
            bag[rng.integers(m)] += defects[c]
            bags.append(bag)
            y.append(c)
    return np.array(bags, dtype=np.float32), np.array(y)


@pytest.mark.parametrize("weighting", ["unsupervised", "reference"])
def test_weighting_finds_defect_types_where_average_pooling_fails(weighting):
    bags, y = synthetic_bags()
    normal = np.random.default_rng(1).normal(scale=0.3, size=(5, 16, 6)).astype(np.float32)
    est = AnomalyClustering(n_clusters=3, weighting=weighting, tau=0.1).fit(bags, normal=normal)
    from anoclust.metrics import clustering_scores

    assert clustering_scores(y, est.labels_)["nmi"] > 0.95
    assert est.weights_.shape == (30, 16) and np.allclose(est.weights_.sum(1), 1, atol=1e-5)
    assert est.embeddings_.shape == (30, 6) and est.n_clusters_ == 3
    assert est.scores_.shape == (30, 16)
    assert est.weighting_ == weighting


def test_auto_weighting_and_function_twin():
    bags, _ = synthetic_bags()
    est = AnomalyClustering(n_clusters=3).fit(bags)
    assert est.weighting_ == "unsupervised"
    labels, emb = anomaly_clustering(bags, n_clusters=3)
    assert np.array_equal(labels, est.labels_) and np.allclose(emb, est.embeddings_)
    assert np.array_equal(est.fit_predict(bags), labels)


def test_init_only_stores_params_and_clone_works():
    est = AnomalyClustering(n_clusters=-3, method="nope")  # validation waits for fit
    assert clone(est).get_params()["n_clusters"] == -3
    with pytest.raises(AnoclustError):
        est.fit(synthetic_bags()[0])


def test_reference_without_normals_is_an_error():
    with pytest.raises(AnoclustError, match="needs normal images"):
        AnomalyClustering(n_clusters=3, weighting="reference").fit(synthetic_bags()[0])


def test_uniform_is_average_pooling():
    bags, _ = synthetic_bags()
    est = AnomalyClustering(n_clusters=3, weighting="uniform").fit(bags)
    assert np.allclose(est.embeddings_, bags.mean(1), atol=1e-5)
    assert np.isnan(est.scores_).all()


def test_fit_on_paths_skips_unreadable(mvtec_category, tmp_path):
    paths = sorted((mvtec_category / "test").rglob("*.png"))[:9]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    est = AnomalyClustering(n_clusters=2, weighting="unsupervised").fit([*paths, bad])
    assert est.labels_[-1] == -1 and np.isnan(est.embeddings_[-1]).all()
    assert (est.labels_[:-1] >= 0).all()
    assert [p for p, _ in est.skipped_] == [str(bad)]


def test_resolve_embedding_by_weighting_and_layout():
    from anoclust.estimator import resolve_embedding

    # mobilenet_v2's default taps: features.6 (32 channels) then features.13 (96)
    assert resolve_embedding("auto", "auto", "reference", "mobilenet_v2", 128) == ("l2", 32)
    assert resolve_embedding("auto", "auto", "unsupervised", "mobilenet_v2", 128) == ("none", 0)
    assert resolve_embedding("none", "all", "reference", "mobilenet_v2", 128) == ("none", 0)
    assert resolve_embedding("whiten", "deepest", "uniform", "mobilenet_v2", 128) == ("whiten", 32)
    # without normals the deepest tap only where the scores find local defects
    assert resolve_embedding("auto", "auto", "unsupervised", "mobilenet_v2", 128, peak=5.0) == ("l2", 32)
    assert resolve_embedding("auto", "auto", "unsupervised", "mobilenet_v2", 128, peak=4.0) == ("none", 0)
    assert resolve_embedding("auto", "auto", "uniform", "mobilenet_v2", 128, peak=5.0) == ("none", 0)
    assert resolve_embedding("none", "all", "unsupervised", "mobilenet_v2", 128, peak=5.0) == ("none", 0)
    # bags of another layout: auto keeps every tap unnormalised, deepest is refused
    assert resolve_embedding("auto", "auto", "reference", "mobilenet_v2", 6) == ("none", 0)
    with pytest.raises(AnoclustError, match="--embed-taps all"):
        resolve_embedding("auto", "deepest", "reference", "mobilenet_v2", 6)


def test_resolve_components_four_per_cluster_with_scores_within_the_embeddings_rank():
    from anoclust.estimator import resolve_components

    assert resolve_components("auto", "reference", 5, (392, 96)) == 20
    assert resolve_components("auto", "unsupervised", 3, (60, 128)) == 12
    assert resolve_components("auto", "uniform", 5, (392, 96)) == 0  # the paper's baselines keep every axis
    assert resolve_components("auto", "unsupervised", 3, (10, 128)) == 9  # at most N - 1 ...
    assert resolve_components(30, "uniform", 3, (100, 16)) == 16  # ... and D
    assert resolve_components(0, "reference", 5, (392, 96)) == 0
    bags = np.random.default_rng(0).normal(size=(12, 16, 8)).astype(np.float32)
    for bad in (-1, "some", 2.5, True):
        with pytest.raises(AnoclustError, match="n_components"):
            AnomalyClustering(n_clusters=2, weighting="unsupervised", n_components=bad).fit(bags)
    est = AnomalyClustering(n_clusters=2, weighting="unsupervised").fit(bags)
    assert est.n_components_ == 8 and est.cluster_centers_.shape == (2, 8)
    assert np.allclose(np.linalg.norm(est.embedding_space_(est.embeddings_), axis=1), 1)


def test_auto_method_polishes_ward_with_kmeans_only_with_normals():
    from anoclust.estimator import resolve_method

    assert resolve_method("auto", "reference") == "ward_kmeans"
    assert [resolve_method("auto", w) for w in ("unsupervised", "uniform", "max")] == ["ward"] * 3
    assert resolve_method("kmeans", "reference") == "kmeans"
    bags = np.random.default_rng(0).normal(size=(12, 16, 8)).astype(np.float32)
    assert AnomalyClustering(n_clusters=2, weighting="unsupervised", n_sampled=4).fit(bags).method_ == "ward"
    assert AnomalyClustering(n_clusters=2, weighting="uniform", method="average").fit(bags).method_ == "average"


def test_unsupervised_uses_the_deepest_tap_only_when_its_scores_find_local_defects():
    rng = np.random.default_rng(0)
    flat = rng.normal(size=(20, 64, 128)).astype(np.float32)  # every patch alike: no local defect
    spiky = flat.copy()
    for i in range(len(spiky)):  # one patch per image far from everything else
        spiky[i, 27, 32 + i % 3] += 25.0
    kw = dict(n_clusters=2, weighting="unsupervised", n_sampled=4, border=0)
    low, high = AnomalyClustering(**kw).fit(flat), AnomalyClustering(**kw).fit(spiky)
    assert low.score_peak_ < 4.5 <= high.score_peak_
    assert (low.normalize_, low.embed_from_) == ("none", 0)
    assert (high.normalize_, high.embed_from_) == ("l2", 32) and high.embeddings_.shape == (20, 96)


def test_reference_describes_the_defect_by_the_deepest_tap_l2_normalised(tmp_path):
    # 128-channel bags laid out as mobilenet_v2's taps; the type is written into the deep part
    rng = np.random.default_rng(0)
    bags = rng.normal(scale=0.3, size=(24, 16, 128)).astype(np.float32)
    y = np.repeat([0, 1, 2], 8)
    for i, c in enumerate(y):
        bags[i, rng.integers(16), 32 + c] += 4.0
    normal = rng.normal(scale=0.3, size=(5, 16, 128)).astype(np.float32)
    est = AnomalyClustering(n_clusters=3, weighting="reference", tau=0.1, border=0).fit(bags, normal=normal)
    full = AnomalyClustering(n_clusters=3, weighting="reference", tau=0.1, border=0, embed_taps="all",
                             normalize="none").fit(bags, normal=normal)
    assert (est.normalize_, est.embed_from_) == ("l2", 32) and est.embeddings_.shape == (24, 96)
    assert (est.method_, full.method_) == ("ward_kmeans", "ward_kmeans")
    # the kept columns are the deep tap's part of the full (whitened) embedding
    assert np.allclose(est.embeddings_, full.embeddings_[:, 32:], atol=1e-5)
    assert (np.linalg.norm(est.cluster_centers_, axis=1) <= 1 + 1e-6).all()  # means of unit vectors
    from anoclust.metrics import clustering_scores

    assert clustering_scores(y, est.labels_)["nmi"] > 0.95
    est.save(tmp_path / "model")
    back = AnomalyClustering.load(tmp_path / "model")
    assert (back.normalize_, back.embed_from_, back.method_) == ("l2", 32, "ward_kmeans")
    a, b = est.assign(bags), back.assign(bags)
    assert np.array_equal(a.labels, est.labels_) and np.array_equal(a.labels, b.labels)
    assert np.allclose(a.distances, b.distances, rtol=1e-4)
