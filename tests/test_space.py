import numpy as np
import pytest

from anoclust.space import PatchSpace, Whitening, interior_mask, within_image_whitening
from anoclust.weighting.pooling import softmax_weights
from anoclust.weighting.reference import build_bank, reference_scores
from anoclust.weighting.unsupervised import unsupervised_scores


def test_interior_mask_hand_computed():
    # 8 x 8 grid, one ring: the 6 x 6 centre is kept.
    expected = np.zeros((8, 8), dtype=bool)
    expected[1:7, 1:7] = True
    assert np.array_equal(interior_mask(64, 1), expected.ravel())
    assert interior_mask(64, 0).all()
    # The ring never takes more than an eighth of the side: border 5 on 8 x 8 is one ring,
    # and a 4 x 4 grid keeps every patch.
    assert np.array_equal(interior_mask(64, 5), expected.ravel())
    assert interior_mask(16, 2).all()
    with pytest.raises(ValueError):
        interior_mask(12, 1)


def test_whitening_makes_normal_covariance_the_identity():
    rng = np.random.default_rng(0)
    mix = np.array([[3.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, 0.0, 0.1]])
    x = rng.normal(size=(20000, 3)) @ mix + [5.0, -2.0, 1.0]
    w = Whitening.fit(x, shrinkage=0.0)
    y = w(x)
    assert np.allclose(y.mean(0), 0.0, atol=1e-3)
    assert np.allclose(np.cov(y, rowvar=False), np.eye(3), atol=1e-2)
    # Shrinkage towards a scaled identity bounds the gain of the direction normals barely use.
    shrunk = Whitening.fit(x, shrinkage=0.5)
    assert np.abs(np.linalg.eigvalsh(shrunk.matrix)).max() < np.abs(np.linalg.eigvalsh(w.matrix)).max()


def test_within_image_whitening_hand_computed():
    # 4 images of 4 patches in 2-D: the images differ along x (offsets 0, 10, 20, 30) and their
    # patches vary only along y (+1, -1, +1, -1). Around each image's mean the 16 patches have
    # covariance diag(0, 16/15) (ddof 1); shrinkage 0.5 towards trace/2 = 8/15 gives
    # diag(4/15, 12/15), so the map scales x by sqrt(15/4) and y by sqrt(15/12): the direction
    # in which the images differ is not damped, the within-image one is.
    y = np.array([1.0, -1.0, 1.0, -1.0])
    bags = np.stack([np.stack([np.full(4, 10.0 * i), y], 1) for i in range(4)]).astype(np.float32)
    w = within_image_whitening(bags, max_patches=100, random_state=0, shrinkage=0.5)
    assert np.allclose(w.mean, 0.0, atol=1e-6)
    assert np.allclose(w.matrix, np.diag([np.sqrt(15 / 4), np.sqrt(15 / 12)]), atol=1e-5)


def test_whitening_commutes_with_weighted_averages():
    rng = np.random.default_rng(1)
    w = Whitening.fit(rng.normal(size=(500, 4)))
    bag = rng.normal(size=(6, 4)).astype(np.float32)
    alpha = rng.dirichlet(np.ones(6)).astype(np.float32)
    assert np.allclose(w(alpha @ bag), alpha @ w(bag), atol=1e-5)


def test_left_out_patches_are_not_scored_and_not_matched():
    # Grid 8 x 8 with one ring left out; patch 9 (row 1, column 1) is the first interior one.
    keep = interior_mask(64, 1)
    bags = np.zeros((1, 64, 2), dtype=np.float32)
    bags[0, 9] = [3.0, 4.0]
    normals = np.zeros((1, 64, 2), dtype=np.float32)
    normals[0, 0] = [3.0, 4.0]  # a ring patch equal to the query's: must not count as a match
    s = reference_scores(bags, build_bank(normals, 10_000, 0, space=PatchSpace(keep)), space=PatchSpace(keep))
    assert np.isnan(s[0, ~keep]).all()
    expected = np.zeros(64)
    expected[9] = 5.0
    assert np.allclose(s[0, keep], expected[keep])


def test_unsupervised_with_border_matches_brute_force_on_interior():
    rng = np.random.default_rng(2)
    bags = rng.normal(size=(4, 64, 3)).astype(np.float32)
    keep = interior_mask(64, 1)
    got = unsupervised_scores(bags, n_sampled=10, random_state=0, space=PatchSpace(keep))
    inner = unsupervised_scores(np.ascontiguousarray(bags[:, keep]), n_sampled=10, random_state=0)
    assert np.allclose(got[:, keep], inner, atol=1e-5)
    assert np.isnan(got[:, ~keep]).all()


def test_reference_scores_in_whitened_space():
    normals = np.random.default_rng(3).normal(size=(2, 50, 2)).astype(np.float32) * [10.0, 0.1]
    w = Whitening.fit(normals.reshape(-1, 2), shrinkage=0.0)
    bags = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]], dtype=np.float32)
    s = reference_scores(bags, build_bank(normals, 10_000, 0), space=PatchSpace(None, w))
    # A step along the axis normals barely vary on is the unusual one.
    assert s[0, 2] > 3 * s[0, 1]
    bank = w(build_bank(normals, 10_000, 0))
    direct = np.sqrt(((w(bags[0])[:, None] - bank[None]) ** 2).sum(-1)).min(1)
    assert np.allclose(s[0], direct, atol=1e-3)


def test_softmax_gives_unscored_patches_no_weight():
    s = np.array([[np.nan, 0.0, 1.0, 2.0]])
    w = softmax_weights(s, tau=1.0, standardize=False)
    assert w[0, 0] == 0.0 and np.isclose(w.sum(), 1.0)
    e = np.exp([0.0, 1.0, 2.0])
    assert np.allclose(w[0, 1:], e / e.sum())
    # Standardisation ignores the unscored patch: same weights as for the scored ones alone.
    assert np.allclose(softmax_weights(s, 1.0)[0, 1:], softmax_weights(s[:, 1:], 1.0)[0])
