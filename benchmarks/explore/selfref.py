"""Self-referenced scoring without normals: the set's low-score patches as a cross-fitted bank.

An exploration (docs/RESULTS.md, section 8), not part of the tool; the five study sets of
studyset.py in /tmp/exp/studywork, features from the cache in /tmp/anoclust-cache. Prints
full-set NMI and the mean NMI over 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/selfref.py 50 0.1,0   # quantile, whitening shrinkages (0: none)
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, cross_fitted_scores

from anoclust.estimator import pool_bags
from anoclust.patch_space import PatchSpace, Whitening
from anoclust.pipeline import ClusterSettings

TAU = ClusterSettings().tau
QS = [float(q) for q in sys.argv[1].split(",")]
SH = [float(x) for x in sys.argv[2].split(",")]


def variants(e, space, s, seed):
    n = len(e.bags)
    embs = {"unsup": pool_bags(e.bags, "unsupervised", s, TAU, True, None, None)[0]}
    fold = np.random.default_rng(seed).permutation(n) % 2
    for q in QS:
        low = np.isfinite(s) & (s <= np.nanpercentile(s, q))
        rng = np.random.default_rng(seed)
        for shrink in SH:
            every = e.bags[low].astype(np.float32)
            if len(every) > 60000:
                every = every[rng.choice(len(every), 60000, replace=False)]
            wh = Whitening.fit(every, shrinkage=shrink) if shrink else None
            S2 = cross_fitted_scores(e.bags, low, fold, PatchSpace(space.keep, wh), rng)
            embs[f"self q{q} shrink{shrink}"] = pool_bags(e.bags, "unsupervised", S2, TAU, True, None, wh)[0]
    return embs


if __name__ == "__main__":
    compare_embeddings("unsupervised", variants)
