"""Softmax weights mixed with uniform weights over the scored patches (share 0 / 0.1 / 0.2 / 0.3).

An exploration (docs/RESULTS.md, section 8), not part of the tool; the five study sets of
studyset.py in /tmp/exp/studywork, features from the cache in /tmp/anoclust-cache. Prints
full-set NMI and the mean NMI over 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/mix2.py unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.pipeline import ClusterSettings
from anoclust.weighting import softmax_weights, weighted_average

TAU = ClusterSettings().tau


def variants(e, space, scores, seed):
    whiten = space.whitening or (lambda x: x)
    scored = np.isfinite(scores)
    uniform = (scored / scored.sum(1, keepdims=True)).astype(np.float32)
    alpha = softmax_weights(scores, TAU)
    return {f"mix {lam}": whiten(weighted_average(e.bags, ((1 - lam) * alpha + lam * uniform).astype(np.float32)))
            for lam in (0.0, 0.1, 0.2, 0.3)}


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
