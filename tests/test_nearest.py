"""The cheaper nearest-patch searches against the exact ones.

- bfloat16 candidates with an exact re-check (weighting.nearest.CandidateSearch, the reference
  score): where the nearest row is clearer than the bfloat16 error the result is the exact
  one; at near ties it is the exact distance of a row at most the documented bound farther;
  never below the truth. The unsupervised score's bfloat16 minima (no re-check): within the
  bound of the truth, unbiased.
- the normal threshold's leave-one-out without refitting (weighting.reference) against
  refitting once per reference, with and without whitening and bank thinning.
"""

import numpy as np
import pytest
import torch

from anoclust.normal_threshold import (NORMAL_PERCENTILE, leave_one_out_scores, refit_leave_one_out_scores,
                                       resolve_normal_threshold)
from anoclust.settings import Params
from anoclust.space import PatchSpace, Whitening, interior_mask
from anoclust.weighting import leave_one_out, nearest
from anoclust.weighting.nearest import CandidateSearch, exact_distance, resolve_search
from anoclust.weighting.leave_one_out import fold_whitenings, thinned_slots
from anoclust.weighting.reference import ReferenceWeighting, build_bank, reference_scores
from anoclust.weighting.unsupervised import sample_others, unsupervised_scores

U = 2.0**-8  # bfloat16's unit roundoff


def true_distances(queries, bank):
    return np.linalg.norm(queries.astype(np.float64)[:, None] - bank.astype(np.float64)[None], axis=-1)


def tie_bound(nearest_d, size):
    """The largest true distance the re-checked row may have (CandidateSearch's docstring):
    rounding moves rows by at most e = u * size, the products add relative u and 3e-5 size^2."""
    e = U * size
    return np.sqrt(((1 + U) * (nearest_d + e) ** 2 + 6e-5 * size**2) / (1 - U)) + e


def search_groups(queries, groups):
    """CandidateSearch over (G, r, d) groups, centred on the queries' mean: (index, re-checked distance)."""
    q = torch.from_numpy(queries)
    centre = q.mean(0)
    g, r, d = groups.shape
    search = CandidateSearch(len(queries), r, g, d)
    index, _ = search.nearest(search.augment_bank(torch.from_numpy(groups), centre), search.augment_queries(q - centre))
    chosen = torch.from_numpy(groups)[torch.arange(g)[:, None], index]
    return index.numpy(), exact_distance(q, chosen).numpy()


def test_clear_nearest_row_is_found_and_its_distance_is_exact():
    # Each query sits 0.1 from one row of each group; every other row is at least 1 away.
    rng = np.random.default_rng(0)
    groups = (rng.normal(size=(3, 50, 32)) * 4).astype(np.float32)
    picks = rng.integers(0, 50, size=(3, 20))
    queries = groups[0, picks[0]] + rng.normal(scale=0.1 / np.sqrt(32), size=(20, 32)).astype(np.float32)
    for g in (1, 2):  # the same query rows lie near row picks[0] of group 0 only; shift the others
        groups[g, picks[g]] = queries + rng.normal(scale=0.1 / np.sqrt(32), size=(20, 32)).astype(np.float32)
    index, dist = search_groups(queries, groups)
    truth = np.stack([true_distances(queries, grp) for grp in groups])  # (G, q, r)
    assert np.array_equal(index, truth.argmin(2))
    assert np.allclose(dist, truth.min(2), rtol=1e-5, atol=1e-6)


def test_near_ties_stay_within_the_bound_and_never_below_the_truth():
    rng = np.random.default_rng(1)
    groups = rng.normal(size=(4, 64, 48)).astype(np.float32)  # random rows: many near ties
    queries = rng.normal(size=(40, 48)).astype(np.float32)
    index, dist = search_groups(queries, groups)
    centre = queries.mean(0)
    size = np.linalg.norm(queries - centre, axis=1)[None] + np.linalg.norm(groups - centre, axis=2).max(1)[:, None]
    truth = np.stack([true_distances(queries, grp) for grp in groups]).min(2)
    assert (dist >= truth * (1 - 1e-6)).all()
    assert (dist <= tie_bound(truth, size)).all()
    assert (dist <= truth * (1 + 1e-5)).mean() > 0.5  # most rows are still the nearest


def test_groups_padded_to_a_square_never_choose_padding():
    rng = np.random.default_rng(2)
    groups = rng.normal(size=(2, 7, 16)).astype(np.float32) + 5.0  # 7 rows: padded to 3 x 3
    queries = np.zeros((5, 16), dtype=np.float32)
    index, _ = search_groups(queries, groups)
    assert index.max() < 7


def test_search_choice():
    assert resolve_search("exact", 10_000, 128) == "exact"
    assert resolve_search("bf16", 4, 2) == "bf16"
    assert resolve_search("auto", 10, 128) == "exact"  # too small to pay
    with pytest.raises(ValueError):
        resolve_search("fp8", 900, 128)


def clustered_bags(n=10, side=10, d=32, seed=3):
    """Bags whose patches repeat across images with small noise: clear nearest patches."""
    rng = np.random.default_rng(seed)
    parts = rng.normal(size=(side * side, d)) * 3
    bags = parts[None] + rng.normal(scale=0.05, size=(n, side * side, d))
    bags[2, 44] += 8.0  # one unusual patch, inside any border ring
    return bags.astype(np.float16)


def brute_unsupervised(bags, n_sampled, seed, keep):
    """The unsupervised score in float64 from every pair of kept patches."""
    kept = bags[:, keep].astype(np.float64)
    out = np.full(bags.shape[:2], np.nan)
    for i in range(len(bags)):
        others = sample_others(len(bags), i, n_sampled, seed)
        out[i, keep] = np.mean([true_distances(kept[i], kept[j]).min(1) for j in others], axis=0)
    return out


def unsupervised_bound(bags, keep):
    """A bound on |bf16 score - true score| per patch: each image's minimum moves by at most
    (the CandidateSearch bound) e + u d + sqrt(3e-5) size, taken with every norm at its largest."""
    kept = bags[:, keep].astype(np.float64)
    centred = kept - kept.mean(1, keepdims=True)
    size = 2 * np.linalg.norm(centred, axis=2).max() + np.abs(kept.mean(1)).max() * 2
    return U * size, np.sqrt(6e-5) * size


@pytest.mark.parametrize("border", [0, 1])
def test_unsupervised_bf16_is_within_its_bound_of_the_truth(border):
    bags = clustered_bags()
    keep = interior_mask(bags.shape[1], border)
    truth = brute_unsupervised(bags, 4, 0, keep)
    exact = unsupervised_scores(bags, 4, 0, space=PatchSpace(keep), search="exact")
    fast = unsupervised_scores(bags, 4, 0, space=PatchSpace(keep), search="bf16")
    assert np.array_equal(np.isnan(truth), np.isnan(fast))
    e, c = unsupervised_bound(bags, keep)
    # Here the nearest patches are 0.3 apart, the parts 17 from their image's mean: bfloat16's
    # rounding of the parts is then several percent of the distances (the float32 re-check of
    # the reference score has no such limit).
    assert (np.abs(fast - truth)[:, keep] <= e + U * truth[:, keep] + c).all()
    assert np.allclose(exact, truth, rtol=1e-3, equal_nan=True)
    assert np.nanargmax(fast[2]) == 44


def test_unsupervised_bf16_error_is_small_on_random_bags():
    rng = np.random.default_rng(4)
    bags = rng.normal(size=(8, 64, 32)).astype(np.float16)
    exact = unsupervised_scores(bags, 3, 0, search="exact")
    fast = unsupervised_scores(bags, 3, 0, search="bf16")
    e, c = unsupervised_bound(bags, np.ones(64, dtype=bool))
    assert (np.abs(fast - exact) <= e + U * exact + c).all()
    assert np.abs(fast / exact - 1).max() < 1e-2  # the bound is about 5% here; typical errors are far below
    assert abs(np.mean(fast / exact - 1)) < 1e-3  # no bias


def test_bf16_scores_do_not_depend_on_threads_or_shards():
    rng = np.random.default_rng(5)
    bags = rng.normal(size=(9, 64, 32)).astype(np.float16)
    one = unsupervised_scores(bags, 3, 0, n_threads=1, search="bf16")
    two = unsupervised_scores(bags, 3, 0, n_threads=2, search="bf16")
    part = unsupervised_scores(bags, 3, 0, indices=np.array([7, 2]), n_threads=2, search="bf16")
    assert np.array_equal(one, two) and np.array_equal(one[[7, 2]], part)
    bank = rng.normal(size=(3000, 32)).astype(np.float32)  # two groups of 48 x 48, the second padded
    ref_one = reference_scores(bags, bank, n_threads=1, search="bf16")
    assert np.array_equal(ref_one, reference_scores(bags, bank, n_threads=2, search="bf16"))
    assert np.array_equal(ref_one[3:5], reference_scores(bags[3:5], bank, n_threads=2, search="bf16"))


def test_reference_bf16_against_exact():
    rng = np.random.default_rng(6)
    normals = rng.normal(size=(30, 100, 32)).astype(np.float16)  # 3,000-row bank: two groups
    bags = normals[:4].astype(np.float32) + rng.normal(scale=0.01, size=(4, 100, 32)).astype(np.float32)
    bags[1, 7] += 6.0
    bank = build_bank(normals, 100_000, 0)
    w = Whitening.fit(bank)
    space = PatchSpace(interior_mask(100, 1), w)
    keep = space.keep
    truth = np.full(bags.shape[:2], np.nan)
    for i, bag in enumerate(bags):
        truth[i, keep] = true_distances(w(bag[keep]), w(bank)).min(1)
    exact = reference_scores(bags, bank, space=space, search="exact")
    fast = reference_scores(bags, bank, space=space, search="bf16")
    # each patch has a clear twin in the bank: the same row, measured directly (closer to the
    # float64 truth than the float32 products, which lose digits at such small distances)
    assert np.allclose(fast, truth, rtol=1e-5, equal_nan=True)
    assert np.allclose(exact, truth, rtol=1e-2, equal_nan=True)
    other = rng.normal(size=(3, 100, 32)).astype(np.float32)  # no twins: near ties everywhere
    exact, fast = (reference_scores(other, bank, search=s) for s in ("exact", "bf16"))
    assert (fast >= exact * (1 - 1e-5)).all() and (fast <= exact * 1.02).all()


# ---- the normal threshold's leave-one-out ------------------------------------------------------


def references(n, side, d, seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 3.0, size=d)  # unequal variances: the whitening matters
    return (rng.normal(size=(n, side * side, d)) * scale + rng.normal(size=d)).astype(np.float16)


@pytest.mark.parametrize(
    "n, side, d, max_bank, whiten, border",
    [
        (6, 8, 5, 100_000, True, 1),  # nothing thinned
        (7, 8, 6, 150, True, 1),  # whitening patches and bank thinned
        (5, 8, 4, 100, False, 1),  # bank thinned, no whitening
        (9, 16, 32, 800, True, 2),  # large enough for the bfloat16 stages to matter
        (2, 8, 3, 100_000, True, 0),  # two references: each fold has one
    ],
)
def test_leave_one_out_equals_refitting(monkeypatch, n, side, d, max_bank, whiten, border):
    monkeypatch.setattr(nearest, "SEARCH", "exact")  # the refit's own scores exact, not within bfloat16's bound
    normals = references(n, side, d, seed=n + d)
    w = ReferenceWeighting(Params(max_bank=max_bank, whiten=whiten, border=border))
    fast, refit = leave_one_out_scores(w, normals), refit_leave_one_out_scores(w, normals)
    assert np.allclose(fast, refit, rtol=1e-4, atol=0)
    assert resolve_normal_threshold("auto", w, normals) == pytest.approx(np.percentile(refit, NORMAL_PERCENTILE),
                                                                         rel=1e-4)


@pytest.mark.parametrize("side_rows", [16, 49])
def test_leave_one_out_through_bfloat16_groups(monkeypatch, side_rows):
    """Groups small enough that the bounds and the exact step go through the bfloat16 group
    search (at the default size these small sets only take the float32 ends)."""
    monkeypatch.setattr(leave_one_out, "SIDE_ROWS", side_rows)
    monkeypatch.setattr(nearest, "SEARCH", "exact")
    normals = references(9, 16, 32, seed=5)
    w = ReferenceWeighting(Params(max_bank=800, border=2))
    fast, refit = leave_one_out_scores(w, normals), refit_leave_one_out_scores(w, normals)
    assert np.allclose(fast, refit, rtol=1e-4, atol=0)
    assert resolve_normal_threshold("auto", w, normals) == pytest.approx(np.percentile(refit, NORMAL_PERCENTILE),
                                                                         rel=1e-4)


def test_distance_above_bounds_the_rows_behind_a_product():
    rng = np.random.default_rng(3)
    bank = torch.from_numpy(rng.normal(size=(1, 64, 16)).astype(np.float32) * 4)
    queries = torch.from_numpy(rng.normal(size=(50, 16)).astype(np.float32) * 4)
    search = CandidateSearch(50, 64, 1, 16)
    least = search.minimum(search.augment_bank(bank, torch.zeros(16)), search.augment_queries(queries))[0]
    truth = true_distances(queries.numpy(), bank[0].numpy()).min(1)
    size = np.linalg.norm(queries.numpy(), axis=1) + np.linalg.norm(bank[0].numpy(), axis=1).max()
    above = leave_one_out._distance_above(least.numpy().astype(np.float64), size)
    assert (above >= truth).all()
    assert (above <= truth + 4 * U * size).all()  # and not loose by more than the rounding


@pytest.mark.parametrize("rows", [1, 255, 256, 700])
def test_entries_at_most_a_bound_are_found_block_by_block(rows):
    rng = np.random.default_rng(rows)
    bits = torch.from_numpy(rng.integers(0, 30000, size=(rows, 5)).astype(np.int16))
    minima = leave_one_out._block_minima(bits)
    for bound in (torch.amin(bits, 0), torch.full((5,), 300, dtype=torch.int16), torch.zeros(5, dtype=torch.int16)):
        which, at = leave_one_out._at_most(bits, bound, minima)
        rr, cc = np.nonzero((bits <= bound).numpy())
        assert sorted(zip(at, which)) == sorted(zip(rr, cc))
        assert (np.diff(at) >= 0).all()  # rows ascending: the first row of a column comes first


def test_fold_whitening_equals_refitting_without_the_reference():
    normals = references(5, 8, 4, seed=7)
    for max_bank in (100_000, 90):  # all patches, then thinned
        folds = fold_whitenings(normals, max_bank, 0)
        for i, fold in enumerate(folds):
            refit = Whitening.fit(build_bank(np.delete(normals, i, axis=0), max_bank, 0))
            assert np.allclose(fold.matrix, refit.matrix, rtol=1e-5, atol=1e-6)
            assert np.allclose(fold.mean, refit.mean, rtol=1e-5, atol=1e-6)


def test_thinned_slots_are_build_banks_draw():
    normals = np.arange(4 * 9 * 1, dtype=np.float32).reshape(4, 9, 1)  # patch values = their positions
    slots = thinned_slots(4, 9, 20, 3)
    kept = build_bank(normals, 20, 3)[:, 0]
    assert np.array_equal(kept, np.concatenate([s * 9 + pos for s, pos in enumerate(slots)]))
    assert all(len(s) == 9 for s in thinned_slots(4, 9, 100, 3))


def test_search_setting_is_module_wide(monkeypatch):
    monkeypatch.setattr(nearest, "SEARCH", "exact")
    assert resolve_search(None, 10_000, 128) == "exact"
