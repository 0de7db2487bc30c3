import numpy as np
import pytest

from anoclust.metrics import clustering_scores, contingency, matched_f1


def test_perfect_clustering_scores_one_under_relabelling():
    y = ["a", "a", "b", "b", "c", "c"]
    pred = [2, 2, 0, 0, 1, 1]
    s = clustering_scores(y, pred)
    assert s == pytest.approx({"nmi": 1.0, "ari": 1.0, "f1": 1.0})


def test_f1_hand_computed():
    # clusters: 0 -> {a, a, b}, 1 -> {b, b, c}; best matching 0->a (2), 1->b (2): 4 of 6 right.
    y = ["a", "a", "b", "b", "b", "c"]
    pred = [0, 0, 0, 1, 1, 1]
    assert matched_f1(y, pred) == pytest.approx(4 / 6)


def test_f1_more_clusters_than_classes_counts_unmatched_as_wrong():
    y = [0, 0, 0, 1]
    pred = [0, 1, 2, 3]
    # Two clusters can be matched: one image of class 0 and the class-1 image.
    assert matched_f1(y, pred) == pytest.approx(2 / 4)


def test_ari_and_nmi_hand_computed():
    # One cluster holding everything carries no information: NMI 0 and ARI 0.
    y = [0, 0, 1, 1]
    s = clustering_scores(y, [5, 5, 5, 5])
    assert s["nmi"] == pytest.approx(0.0)
    assert s["ari"] == pytest.approx(0.0)
    assert s["f1"] == pytest.approx(0.5)


def test_scores_invariant_to_relabelling():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    perm = np.array([3, 0, 2, 1])
    a = clustering_scores(y, pred)
    b = clustering_scores(y, perm[pred])
    c = clustering_scores(np.array(list("wxyz"))[y], pred)
    assert a == pytest.approx(b) and a == pytest.approx(c)


def test_contingency_counts():
    table, clusters, classes = contingency(["x", "y", "y"], [1, 1, 2])
    assert clusters.tolist() == [1, 2] and classes.tolist() == ["x", "y"]
    assert table.tolist() == [[1, 1], [0, 1]]
