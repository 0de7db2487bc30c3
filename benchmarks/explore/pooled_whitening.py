"""Whitening the unsupervised weighting's embeddings by the set's own patches.

Without normal images the reference weighting's whitening is not available. Two stand-ins,
fitted on up to 100,000 of the set's patches and applied to the pooled embeddings only (the
patch scores stay as they are): "total", the covariance of the patches as they are; "within",
the covariance of the patches around their own image's mean (patch_space.within_image_whitening),
each with the shrinkages given. "none" is the unsupervised default before docs/RESULTS.md
section 11. An exploration (section 11); its result became the default.

    PYTHONPATH=src python benchmarks/explore/pooled_whitening.py 0.3,0.5,0.7,0.8
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.estimator import pool_bags
from anoclust.patch_space import Whitening, within_image_whitening
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
SHRINKAGES = [float(v) for v in sys.argv[1].split(",")]


def variants(e, space, scores, seed):
    def pooled(whitening):
        return pool_bags(e.bags, "unsupervised", scores, CFG.tau, True, None, whitening)[0]

    flat = e.bags.reshape(-1, e.bags.shape[2])
    rng = np.random.default_rng(seed)
    sample = np.asarray(flat[np.sort(rng.choice(len(flat), min(CFG.max_bank, len(flat)), replace=False))], np.float32)
    out = {"none": pooled(None)}
    for shrinkage in SHRINKAGES:
        out[f"total {shrinkage}"] = pooled(Whitening.fit(sample, shrinkage=shrinkage))
        out[f"within {shrinkage}"] = pooled(within_image_whitening(e.bags, CFG.max_bank, seed, shrinkage))
    return out


if __name__ == "__main__":
    compare_embeddings("unsupervised", variants)
