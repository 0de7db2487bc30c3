import numpy as np
import pytest
from sklearn.base import clone

from anoclust.errors import AnoclustError
from anoclust.estimator import AnomalyClustering, load_model
from anoclust.weighting.residual import DENSE_MATCH


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


def test_auto_weighting_is_unsupervised_without_normals():
    est = AnomalyClustering(n_clusters=3).fit(synthetic_bags()[0])
    assert est.weighting_ == "unsupervised" and est.method_ == "ward"


def test_init_only_stores_params_and_clone_works():
    est = AnomalyClustering(n_clusters=-3, method="nope")  # validation waits for fit
    assert clone(est).get_params()["n_clusters"] == -3
    with pytest.raises(AnoclustError, match="n_clusters"):
        est.fit(synthetic_bags()[0])


@pytest.mark.parametrize("bad, match", [
    (dict(method="wardd"), "method"), (dict(tau=float("inf")), "tau"), (dict(random_state=-1), "random_state"),
    (dict(n_components=2.5), "n_components"), (dict(normal_threshold=float("nan")), "normal_threshold"),
    (dict(backbone="vgg"), "backbone"), (dict(image_size=5000), "image_size"),
])
def test_parameters_are_checked_before_any_image_is_read(bad, match, tmp_path):
    never_read = [str(tmp_path / "missing.png")]  # reading it would report it skipped, not raise
    with pytest.raises(AnoclustError, match=match):
        AnomalyClustering(n_clusters=2, **bad).fit(never_read)


def test_unknown_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="position_norm"):
        AnomalyClustering(position_norm=True)


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


def test_auto_embedding_by_weighting_and_layout():
    rng = np.random.default_rng(0)
    bags = rng.normal(size=(12, 16, 128)).astype(np.float32)  # laid out as mobilenet_v2's taps (32 + 96)
    normal = rng.normal(size=(3, 16, 128)).astype(np.float32)

    def resolved(bags, **kw):
        est = AnomalyClustering(n_clusters=2, n_sampled=4, **kw).fit(bags, normal=normal if kw.get("weighting") == "reference" else None)
        return est.normalize_, est.embed_from_, est.embeddings_.shape[1]

    assert resolved(bags, weighting="reference", pooling="weighted") == ("l2", 32, 96)
    assert resolved(bags, weighting="reference", pooling="residual") == ("none", 0, 128)
    assert resolved(bags, weighting="reference", normalize="none", embed_taps="all") == ("none", 0, 128)
    assert resolved(bags, weighting="uniform") == ("none", 0, 128)
    assert resolved(bags, weighting="uniform", normalize="whiten", embed_taps="deepest") == ("whiten", 32, 96)
    # bags of another layout: auto keeps every tap unnormalised, deepest is refused
    other = bags[:, :, :6].copy()
    normal = normal[:, :, :6].copy()
    assert resolved(other, weighting="reference") == ("none", 0, 6)
    with pytest.raises(AnoclustError, match="--embed-taps all"):
        resolved(other, weighting="reference", embed_taps="deepest")


def test_auto_components_four_per_cluster_with_scores_within_the_embeddings_rank():
    bags = np.random.default_rng(0).normal(size=(12, 16, 8)).astype(np.float32)

    def components(n_clusters=2, **kw):
        return AnomalyClustering(n_clusters=n_clusters, n_sampled=4, **kw).fit(bags).n_components_

    assert components(weighting="unsupervised") == 8
    assert components(weighting="uniform") == 0  # the paper's baselines keep every axis
    assert components(3, weighting="unsupervised") == 8  # at most D ...
    assert components(3, weighting="unsupervised", n_components=20) == 8
    assert components(3, weighting="max", n_components=5) == 5
    assert AnomalyClustering(n_clusters=2, n_sampled=4).fit(bags[:6]).n_components_ == 5  # ... and N - 1
    est = AnomalyClustering(n_clusters=2, weighting="unsupervised", n_sampled=4).fit(bags)
    assert est.cluster_centers_.shape == (2, 8)
    assert np.allclose(np.linalg.norm(est.model_.space(est.embeddings_), axis=1), 1)


def test_auto_method_polishes_ward_with_kmeans_only_with_normals():
    bags = np.random.default_rng(0).normal(size=(12, 16, 8)).astype(np.float32)
    normal = bags[:3] + 0.1
    with_normals = AnomalyClustering(n_clusters=2, weighting="reference").fit(bags, normal=normal)
    assert with_normals.method_ == "ward_kmeans"
    lead = "residual" if with_normals.normal_match_ <= DENSE_MATCH else "weighted"
    assert next(iter(with_normals.pooling_silhouettes_)) == lead  # what led the pooling choice, and why
    for w in ("unsupervised", "uniform", "max"):
        assert AnomalyClustering(n_clusters=2, weighting=w, n_sampled=4).fit(bags).method_ == "ward"
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
    back = load_model(tmp_path / "model")
    assert (back.normalize_, back.embed_from_, back.method_) == ("l2", 32, "ward_kmeans")
    a, b = est.assign(bags), back.assign(bags)
    assert np.array_equal(a.labels, est.labels_) and np.array_equal(a.labels, b.labels)
    assert np.allclose(a.distances, b.distances, rtol=1e-4)
