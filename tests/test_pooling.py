"""Pooling a bag into one embedding: weighted by the patch scores or averaged, and the choice
between the two (settings `pooling`, anoclust.fit.cluster_best)."""

import json

import numpy as np
import pytest

from anoclust import fit
from anoclust.metrics import clustering_scores
from anoclust.model import read_model, save_model
from anoclust.settings import Params
from anoclust.weighting.pooling import scored_average_weights
from anoclust.weighting.unsupervised import UnsupervisedWeighting

# A 2 x 2 grid (border 0 keeps every patch), two channels, no whitening: pooling is plain arithmetic.
PLAIN = Params(border=0, whiten=False, tau=0.5)


def plain_pool(bags, scores, pooling):
    w = UnsupervisedWeighting(PLAIN).fit(bags)
    return w.pool(bags, scores, pooling)


def test_scored_average_weights_hand_computed():
    w = scored_average_weights(np.array([[1.0, np.nan, 3.0, 2.0], [np.nan, 5.0, np.nan, np.nan]]))
    np.testing.assert_allclose(w, [[1 / 3, 0, 1 / 3, 1 / 3], [0, 1, 0, 0]])
    with pytest.raises(ValueError):
        scored_average_weights(np.array([[np.nan, np.nan]]))


def test_a_bag_with_one_outlying_patch():
    # scores (1, 1, 1, 3): standardised (-1, -1, -1, 3) / sqrt(3); at tau 0.5 the outlier's weight
    # is e^(8 / sqrt 3) / (e^(8 / sqrt 3) + 3) = 0.97128
    bags = np.array([[[0, 0], [0, 0], [0, 0], [4, 0]]] * 2, dtype=np.float32)
    scores = np.array([[1, 1, 1, 3]] * 2, dtype=np.float32)
    top = np.exp(8 / np.sqrt(3)) / (np.exp(8 / np.sqrt(3)) + 3)
    e, w = plain_pool(bags, scores, "weighted")
    np.testing.assert_allclose(w[0], [(1 - top) / 3] * 3 + [top], rtol=1e-5)
    np.testing.assert_allclose(e[0], [4 * top, 0], rtol=1e-5)
    e, w = plain_pool(bags, scores, "average")
    np.testing.assert_allclose(w[0], [0.25] * 4)
    np.testing.assert_allclose(e[0], [1, 0])


def test_a_bag_with_no_outlying_patch_pools_the_same_both_ways():
    bags = np.array([[[1, 2], [3, 2], [5, 0], [3, 4]]] * 2, dtype=np.float32)
    scores = np.full((2, 4), 2.0, dtype=np.float32)  # nothing stands out
    weighted, ww = plain_pool(bags, scores, "weighted")
    average, wa = plain_pool(bags, scores, "average")
    np.testing.assert_allclose(ww, wa)
    np.testing.assert_allclose(weighted[0], [3, 2])
    np.testing.assert_allclose(average, weighted)


def synthetic_bags(kind: str, n_per_type: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bags of 8 x 8 patches, 6 channels, two defect types.

    local: each image's patches scatter around its own part's mean, which varies a lot between
    images (parts differ), and one patch carries the defect, whose direction is the type; the
    average is dominated by the part. whole: every patch of an image carries the type's shift,
    with patch noise and no outlier; a few patches picked by noisy scores describe it worse
    than the average of all.
    """
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1], n_per_type)
    bags = np.empty((len(truth), 64, 6), dtype=np.float32)
    for i, t in enumerate(truth):
        if kind == "local":
            part = rng.normal(0, 2, 6)
            bags[i] = part + rng.normal(0, 1, (64, 6))
            row, col = rng.integers(1, 7, 2)  # inside the 1-patch ring the scores leave out
            bags[i, 8 * row + col] = part + 16 * np.eye(6)[t]
        else:
            bags[i] = 0.8 * np.eye(6)[t] + rng.normal(0, 1, (64, 6))
    return bags, truth


@pytest.mark.parametrize("kind, chosen", [("local", "weighted"), ("whole", "average")])
def test_auto_keeps_the_pooling_that_separates_the_clusters(kind, chosen):
    bags, truth = synthetic_bags(kind)
    params = Params(n_clusters=2, weighting="unsupervised")
    fitted = fit.fit_bags(bags, None, params)
    r = fitted.model.resolved
    assert r.pooling == chosen
    assert set(r.pooling_silhouettes) == {"weighted", "average"}
    assert max(r.pooling_silhouettes, key=r.pooling_silhouettes.get) == chosen
    assert clustering_scores(truth, fitted.labels)["nmi"] == 1.0
    # the other pooling, forced, clusters these sets worse
    other = {"weighted": "average", "average": "weighted"}[chosen]
    forced = fit.fit_bags(bags, None, Params(n_clusters=2, weighting="unsupervised", pooling=other))
    assert forced.model.resolved.pooling == other and forced.model.resolved.pooling_silhouettes is None
    assert clustering_scores(truth, forced.labels)["nmi"] < 0.5


def test_a_saved_model_pools_new_images_as_its_fit_chose(tmp_path):
    bags, truth = synthetic_bags("whole")
    fitted = fit.fit_bags(bags, None, Params(n_clusters=2, weighting="unsupervised"))
    assert fitted.model.resolved.pooling == "average"
    model = read_model(save_model(fitted.model, tmp_path / "m"))
    assert model.resolved.pooling == "average"
    new, new_truth = synthetic_bags("whole", n_per_type=5, seed=1)
    placed = fit.assign_bags(model, new)
    assert clustering_scores(new_truth, placed.labels)["nmi"] == 1.0

    # a model saved before the choice existed was always weighted
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    del meta["resolved"]["pooling"], meta["resolved"]["pooling_silhouettes"], meta["settings"]["aspect"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    old = read_model(tmp_path / "m")
    assert old.resolved.pooling == "weighted" and old.params.aspect == "squash"  # ... and squashed


def test_cli_records_the_pooling_and_the_report_shows_scores_when_it_averages(tmp_path, capsys):
    from anoclust.report import load_run
    from anoclust.synthetic import make_labelled_folder
    from conftest import call_cli

    data = tmp_path / "data"
    make_labelled_folder(data, n_per_type=4, size=96, kind="texture", classes=["blotches", "grain"])
    for pooling, heat_of in (("average", "patch scores"), ("weighted", "patch weights")):
        out = tmp_path / pooling
        code, printed, err = call_cli(capsys, "cluster", str(data), "--k", "2", "--image-size", "96",
                                      "--pooling", pooling, "--out", str(out), "--quiet", "--no-cache")
        assert code == 0, err
        config = json.loads((out / "config.json").read_text())
        assert "described by" not in printed  # forced: no choice made, nothing to report
        assert config["settings"]["pooling"] == pooling and config["resolved"]["pooling"] == pooling
        run = load_run(out)
        assert run.heat_of == heat_of
        assert f"heat map of {heat_of}" in (out / "report.html").read_text()
        # even weights would show no heat; the scores do
        assert (np.ptp(run.heat, axis=1) > 0).all()
        if pooling == "average":
            np.testing.assert_allclose(np.ptp(run.weights[:, run.weights[0] > 0], axis=1), 0, atol=1e-7)
    code, printed, err = call_cli(capsys, "cluster", str(data), "--k", "2", "--image-size", "96", "--out",
                                  str(tmp_path / "auto"), "--quiet", "--no-cache")
    assert code == 0, err
    chosen = json.loads((tmp_path / "auto" / "config.json").read_text())["resolved"]["pooling"]
    assert f"described by {chosen} pooling (cluster silhouette: weighted" in printed
