"""Two more variants of the section-15 reference default (deepest tap, l2, Ward + k-means):
a share c of the image's average-pooled (whitened) deepest-tap embedding taken away before l2,
and patch weights from the reference scores plus a share of the unsupervised scores (each
standardised within its image). An exploration; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/deep_extras.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, compare_embeddings, l2

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()


def standardised(s: np.ndarray) -> np.ndarray:
    return (s - np.nanmean(s, 1, keepdims=True)) / (np.nanstd(s, 1, keepdims=True) + 1e-12)


def variants(e, space, scores, seed):
    k = len(set(e.truth))
    deep = lambda weighting, s: pool_bags(e.bags, weighting, s, CFG.tau, CFG.standardize, None,
                                          space.whitening)[0][:, SPLIT:]
    weighted, mean = deep("reference", scores), deep("uniform", None)
    x = {f"minus {c} of the image mean": l2(weighted - c * mean) for c in (0.0, 0.25, 0.5, 0.75)}
    unsupervised_space = patch_space(e.bags.shape[1], "unsupervised", None, CFG.border, CFG.whiten, CFG.max_bank, seed)
    u = standardised(patch_scores(e.bags, "unsupervised", None, CFG.n_sampled, CFG.max_bank, seed, unsupervised_space))
    for share in (0.5, 1.0):
        x[f"+ {share} unsupervised score"] = l2(deep("reference", (standardised(scores) + share * u).astype(np.float32)))
    return {name: (lambda r, v=v: cluster_embeddings(v[r], k, "ward_kmeans", seed)) for name, v in x.items()}


if __name__ == "__main__":
    compare_embeddings("reference", variants)
