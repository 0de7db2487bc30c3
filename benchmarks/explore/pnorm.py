"""Embedding normalisations at the default settings: none, l2, power 0.5 / 0.75, centred l2,
l2 + log-norm, and truncation to the leading 8 / 16 / 32 principal components (alone or after l2).

An exploration (docs/RESULTS.md, section 8), not part of the tool; the five study sets of
studyset.py in /tmp/exp/studywork, features from the cache in /tmp/anoclust-cache. Prints
full-set NMI and the mean NMI over 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/pnorm.py reference   # or unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.estimator import pool_bags
from anoclust.pipeline import ClusterSettings

TAU = ClusterSettings().tau


def normalisations(e):
    n = np.linalg.norm(e, axis=1, keepdims=True) + 1e-12
    out = {"none": e, "l2": e / n}
    for p in [0.5, 0.75]:
        out[f"pow{p}"] = e / n**p
    c = e - e.mean(0)
    nc = np.linalg.norm(c, axis=1, keepdims=True) + 1e-12
    out["center_l2"] = c / nc
    ln = np.log(n)  # l2 with the set-standardised log of the norm appended as one coordinate
    z = (ln - ln.mean()) / (ln.std() + 1e-12)
    for b in [0.25, 0.5, 1.0]:
        out[f"l2+lognorm{b}"] = np.concatenate([e / n, b * z], 1)
    for p in [8, 16, 32]:  # the leading principal components, without and after l2
        out[f"pca{p}"] = pca(e, p)
        out[f"l2+pca{p}"] = pca(e / n, p)
    return out


def pca(x, p):
    c = x - x.mean(0)
    u, s, _ = np.linalg.svd(c, full_matrices=False)
    return u[:, :p] * s[:p]


def variants(e, space, scores, seed):
    return normalisations(pool_bags(e.bags, sys.argv[1], scores, TAU, True, None, space.whitening)[0])


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
