import numpy as np
import pytest

from anoclust.weighting.pooling import max_pool, score_peak, softmax_weights, weighted_average
from anoclust.weighting.reference import build_bank, reference_scores
from anoclust.weighting.unsupervised import sample_others, unsupervised_scores


def brute_unsupervised(bags):
    n = len(bags)
    out = np.zeros(bags.shape[:2])
    for i in range(n):
        for j in range(n):
            if i != j:
                d = np.linalg.norm(bags[i][:, None, :] - bags[j][None, :, :], axis=2)
                out[i] += d.min(1)
    return out / (n - 1)


def test_unsupervised_exact_matches_brute_force():
    rng = np.random.default_rng(0)
    bags = rng.normal(size=(5, 7, 3)).astype(np.float32)
    got = unsupervised_scores(bags, n_sampled=10, random_state=0)
    assert np.allclose(got, brute_unsupervised(bags), atol=1e-4)


def test_unsupervised_hand_computed():
    # Two images, one patch each, at distance 5: each patch's score is 5.
    bags = np.array([[[0.0, 0.0]], [[3.0, 4.0]]], dtype=np.float32)
    assert np.allclose(unsupervised_scores(bags, 32, 0), 5.0)


def test_rare_patch_scores_highest():
    rng = np.random.default_rng(1)
    bags = rng.normal(scale=0.1, size=(10, 16, 4)).astype(np.float32)
    bags[3, 5] += 5.0  # a defect patch no other image has
    s = unsupervised_scores(bags, n_sampled=4, random_state=0)
    assert s[3].argmax() == 5


def test_sampling_is_per_image_and_excludes_self():
    for i in range(6):
        picks = sample_others(50, i, 8, random_state=3)
        assert len(set(picks)) == 8 and i not in picks and picks.max() < 50
        assert np.array_equal(picks, sample_others(50, i, 8, random_state=3))
    assert np.array_equal(sample_others(4, 2, 32, 0), [0, 1, 3])


def test_sharded_scores_equal_whole():
    rng = np.random.default_rng(2)
    bags = rng.normal(size=(12, 5, 3)).astype(np.float32)
    whole = unsupervised_scores(bags, n_sampled=4, random_state=7)
    part = unsupervised_scores(bags, n_sampled=4, random_state=7, indices=np.array([3, 9]))
    assert np.allclose(whole[[3, 9]], part)


def test_reference_scores_hand_computed():
    bags = np.array([[[0.0, 0.0], [6.0, 8.0]]], dtype=np.float32)
    normals = np.array([[[0.0, 1.0], [10.0, 10.0]]], dtype=np.float32)
    s = reference_scores(bags, build_bank(normals, 100, 0))
    assert np.allclose(s, [[1.0, np.hypot(4, 2)]], atol=1e-5)


def test_bank_thinning_is_seeded_and_bounded():
    normals = np.random.default_rng(0).normal(size=(10, 20, 3))
    a = build_bank(normals, max_patches=50, random_state=1)
    assert a.shape == (50, 3)
    assert np.array_equal(a, build_bank(normals, max_patches=50, random_state=1))


def test_softmax_weights_properties():
    s = np.array([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]])
    w = softmax_weights(s, tau=1.0, standardize=False)
    assert np.allclose(w.sum(1), 1) and np.allclose(w[1], 1 / 3)
    e = np.exp([0.0, 1.0, 2.0])
    assert np.allclose(w[0], e / e.sum())
    assert np.allclose(softmax_weights(s, tau=np.inf), 1 / 3)
    # Small tau approaches the arg-max; standardising makes the weights scale-free.
    assert softmax_weights(s, tau=1e-3)[0].argmax() == 2
    assert np.allclose(softmax_weights(s * 100, 0.5, True), softmax_weights(s, 0.5, True), atol=1e-6)
    with pytest.raises(ValueError):
        softmax_weights(s, tau=0)


def test_weighted_average_and_max_pool():
    bags = np.array([[[1.0, 0.0], [3.0, 4.0]]], dtype=np.float32)
    assert np.allclose(weighted_average(bags, np.array([[0.25, 0.75]])), [[2.5, 3.0]])
    pooled, w = max_pool(bags)
    assert np.allclose(pooled, [[3.0, 4.0]]) and np.allclose(w, [[0.0, 1.0]])


def test_score_peak_is_the_median_of_each_images_largest_standardised_score():
    scores = np.array([
        [0.0, 0.0, 0.0, 0.0, 10.0, np.nan],  # mean 2, std 4: largest (10 - 2) / 4 = 2
        [1.0, 3.0, 1.0, 3.0, 1.0, 3.0],  # mean 2, std 1: 1
        [0.0, 0.0, 0.0, 5.0, 5.0, 0.0],  # mean 5/3, std 2.357: 1.414
    ])
    assert score_peak(scores) == pytest.approx(np.sqrt(2), rel=1e-6)
