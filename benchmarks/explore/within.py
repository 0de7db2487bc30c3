"""Whitening by within-image patch variation, for the unsupervised weighting (no normals).

The covariance of patches around their own image's mean (all scored patches, or only those with
unsupervised scores below the median) is used to whiten before the unsupervised score and
before the self-referenced score of selfref.py. An exploration (docs/RESULTS.md, section 8),
not part of the tool; synthetic study sets only unless `mtd` is named.

    PYTHONPATH=src python benchmarks/explore/within.py texture,variable,local,demo
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, cross_fitted_scores

from anoclust.estimator import pool_bags
from anoclust.patch_space import PatchSpace, Whitening
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import unsupervised_scores

CFG = ClusterSettings()


def variants(e, space, s, seed):
    rng = np.random.default_rng(seed)
    n = len(e.bags)
    embs = {"unsup": pool_bags(e.bags, "unsupervised", s, CFG.tau, True, None, None)[0]}
    keep = space.keep
    X = e.bags[:, keep].astype(np.float32)  # (n, m, d)
    low = s[:, keep] <= np.nanpercentile(s, 50)
    # within-image residuals of all kept patches / of the low-score ones
    R_all = (X - X.mean(1, keepdims=True)).reshape(-1, X.shape[-1])
    mu_low = np.stack([x[m].mean(0) if m.any() else x.mean(0) for x, m in zip(X, low)])
    R_low = (X - mu_low[:, None])[low]
    for name, R in [("all", R_all), ("low", R_low)]:
        if len(R) > 100000:
            R = R[rng.choice(len(R), 100000, replace=False)]
        wh = Whitening.fit(R)
        within = PatchSpace(keep, wh)
        # A: unsupervised scores in the within-whitened space
        sA = unsupervised_scores(e.bags, n_sampled=CFG.n_sampled, random_state=seed, space=within)
        embs[f"unsup+within_{name}"] = pool_bags(e.bags, "unsupervised", sA, CFG.tau, True, None, wh)[0]
        # B: self-referenced bank (cross-fitted low-score patches) in that space
        fold = rng.permutation(n) % 2
        lowfull = np.isfinite(s) & (s <= np.nanpercentile(s, 50))
        S2 = cross_fitted_scores(e.bags, lowfull, fold, within, rng)
        embs[f"selfref+within_{name}"] = pool_bags(e.bags, "unsupervised", S2, CFG.tau, True, None, wh)[0]
    return embs


if __name__ == "__main__":
    compare_embeddings("unsupervised", variants, only=sys.argv[1].split(",") if len(sys.argv) > 1 else None)
