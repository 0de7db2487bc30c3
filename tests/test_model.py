import json

import numpy as np
import pytest

from anoclust.errors import AnoclustError
from anoclust.estimator import AnomalyClustering, load_model
from anoclust.labels import NORMAL


def defect_bags(types, n_per=12, m=16, d=8, seed=0):
    """Shared noisy background; one strong patch per image whose direction is its type."""
    rng = np.random.default_rng(seed)
    bags, y = [], []
    for t in types:
        for _ in range(n_per):
            bag = rng.normal(scale=0.3, size=(m, d))
            bag[rng.integers(m)] += 4.0 * np.eye(d)[t]
            bags.append(bag)
            y.append(t)
    return np.array(bags, dtype=np.float32), np.array(y)


def normal_bags(n=6, m=16, d=8, seed=9):
    return np.random.default_rng(seed).normal(scale=0.3, size=(n, m, d)).astype(np.float32)


@pytest.mark.parametrize("weighting", ["reference", "unsupervised"])
def test_fitted_images_come_back_to_their_own_clusters(weighting):
    bags, _ = defect_bags([0, 1, 2])
    est = AnomalyClustering(n_clusters=3, weighting=weighting, tau=0.1).fit(bags, normal=normal_bags())
    result = est.assign(bags)
    assert (result.labels == est.labels_).mean() >= 0.95
    assert result.unknown.mean() <= 0.1


@pytest.mark.parametrize("weighting", ["reference", "unsupervised"])
def test_held_out_defect_type_is_mostly_unknown(weighting):
    bags, _ = defect_bags([0, 1, 2], n_per=30)  # 99th percentiles need more than a dozen members
    est = AnomalyClustering(n_clusters=3, weighting=weighting, tau=0.1).fit(bags, normal=normal_bags())
    new, _ = defect_bags([5], seed=3)
    assert est.assign(new).unknown.mean() >= 0.8
    seen, _ = defect_bags([1], seed=4, n_per=30)  # new images of a known type mostly are not
    assert est.assign(seen).unknown.mean() <= 0.15


def test_unknown_test_sees_the_directions_the_projection_drops(tmp_path):
    # One patch per image, so uniform pooling returns the rows: two clusters along the first
    # axis, spread a little along the second; the third never varies.
    rng = np.random.default_rng(0)
    side = np.repeat([1.0, -1.0], 20)
    x = np.stack([side * 3, rng.normal(scale=0.1, size=40), np.zeros(40)], 1)
    est = AnomalyClustering(n_clusters=2, weighting="uniform", normalize="none", n_components=1).fit(x[:, None, :])
    # A new image off the first cluster only along the third axis: the one kept axis cannot
    # tell it from the cluster, the space before the projection can.
    new = np.array([[[3.0, 0.0, 0.0]], [[3.0, 0.0, 2.0]]])
    assert np.allclose(est.model_.space(new[:, 0]), [[1], [1]])
    est.save(tmp_path / "model")
    for model in (est, load_model(tmp_path / "model")):
        assert model.assign(new).unknown.tolist() == [False, True]


def test_save_load_round_trip_without_pickle(tmp_path):
    bags, _ = defect_bags([0, 1, 2])
    est = AnomalyClustering(weighting="reference", tau=0.1, normalize="whiten").fit(bags, normal=normal_bags())
    est.save(tmp_path / "model")
    np.load(tmp_path / "model" / "model.npz", allow_pickle=False).close()
    back = load_model(tmp_path / "model")
    assert back.get_params()["normalize"] == "whiten" and back.n_clusters_ == est.n_clusters_
    new, _ = defect_bags([0, 2, 6], n_per=4, seed=5)
    a, b = est.assign(new), back.assign(new)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.unknown, b.unknown)
    assert np.allclose(a.distances, b.distances, rtol=1e-4)


def test_unsupervised_embeddings_whitened_within_images_and_kept_by_saved_models(tmp_path):
    from anoclust.ordering import canonical_order
    from anoclust.space import within_image_whitening

    bags, _ = defect_bags([0, 1, 2])
    plain = AnomalyClustering(n_clusters=3, weighting="unsupervised", tau=0.1, whiten=False).fit(bags)
    est = AnomalyClustering(n_clusters=3, weighting="unsupervised", tau=0.1).fit(bags)
    # Same scores and weights; the embeddings are the plain ones mapped by the whitening fitted
    # on the bags' within-image variation (in the estimator's canonical row order).
    assert np.allclose(est.weights_, plain.weights_)
    w = within_image_whitening(bags[canonical_order(bags)], 100_000, random_state=0)
    assert np.allclose(est.embeddings_, w(plain.embeddings_), atol=1e-4)
    est.save(tmp_path / "model")
    back = load_model(tmp_path / "model")
    new, _ = defect_bags([0, 2], n_per=4, seed=5)
    a, b = est.assign(new), back.assign(new)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.distances, b.distances, rtol=1e-4)
    # New images are embedded in the same whitened space: the fitted images, assigned again,
    # lie as far from their centres as they did in the fit.
    again = est.assign(bags)
    assert np.array_equal(again.labels, est.labels_)
    model = est.model_
    fitted = np.linalg.norm(model.space.normalized(est.embeddings_) - model.novelty_centers[est.labels_], axis=1)
    assert np.allclose(np.median(again.distances), np.median(fitted), rtol=0.25)


def test_incompatible_model_folders_are_refused(tmp_path):
    bags, _ = defect_bags([0, 1])
    AnomalyClustering(weighting="uniform").fit(bags).save(tmp_path / "m")
    with pytest.raises(AnoclustError, match="fitted with backbone mobilenet_v2, not resnet18"):
        load_model(tmp_path / "m", backbone="resnet18")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(AnoclustError, match="format version 99"):
        load_model(tmp_path / "m")
    with pytest.raises(AnoclustError, match="not an anoclust model folder"):
        load_model(tmp_path)
    with pytest.raises(AnoclustError, match="do not fit the model"):
        AnomalyClustering(weighting="uniform").fit(bags).assign(bags[:, :, :4])


def test_other_backbone_weights_are_refused(tmp_path, mvtec_category):
    paths = sorted((mvtec_category / "test").rglob("*.png"))[:6]
    est = AnomalyClustering(n_clusters=2, weighting="uniform").fit(paths)
    est.model_.weights_sha256 = "0" * 64  # as if fitted with another weights file
    with pytest.raises(AnoclustError, match="differ from the model's"):
        est.assign(paths[:2])


def test_normal_threshold_sets_low_scoring_images_apart():
    bags, _ = defect_bags([0, 1, 2])
    plain = normal_bags(n=8, seed=11)
    est = AnomalyClustering(n_clusters=3, weighting="reference", tau=0.1, normal_threshold="auto")
    est.fit(np.concatenate([bags, plain]), normal=normal_bags(n=8))
    assert (est.labels_[-8:] == NORMAL).mean() >= 0.75 and est.normals_[-8:].mean() >= 0.75
    assert (est.labels_[:-8] >= 0).all() and est.n_clusters_ == 3
    assert (est.predict(plain) == NORMAL).mean() >= 0.75
    with pytest.raises(AnoclustError, match="needs the reference weighting"):
        AnomalyClustering(weighting="unsupervised", normal_threshold="auto").fit(bags)
    with pytest.raises(AnoclustError, match="needs normal reference images"):
        AnomalyClustering(normal_threshold="auto").fit(bags)


def test_one_image_at_a_time_lands_where_it_landed_among_all(tmp_path):
    bags, _ = defect_bags([0, 1, 2])
    est = AnomalyClustering(n_clusters=3, weighting="reference", tau=0.5).fit(bags, normal=normal_bags())
    one_by_one = np.concatenate([est.predict(bags[i : i + 1]) for i in range(0, len(bags), 7)])
    assert np.array_equal(one_by_one, est.labels_[::7])


def test_models_of_the_old_format_are_refused_with_how_to_refit(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({
        "format": "anoclust-model", "format_version": 4, "anoclust_version": "0.1.0",
        "params": {"position_norm": True}}))
    with pytest.raises(AnoclustError, match=r"position-norm.*refit it with `anoclust fit INPUT --out"):
        load_model(folder)
