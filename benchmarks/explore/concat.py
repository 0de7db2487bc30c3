"""The weighted embedding with the average-pooled embedding appended (share beta of its spread).

Each half is divided by its overall spread across the set, then the average-pooled half is
multiplied by beta = 0.25 / 0.5 / 1: where the defect covers the whole image (`texture`), the
average-pooled half carries the class; where it is small (MTD), the weighted half does. An
exploration (docs/RESULTS.md, section 9), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/concat.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, spread_scaled

from anoclust.estimator import pool_bags
from anoclust.pipeline import ClusterSettings

TAU = ClusterSettings().tau


def variants(e, space, scores, seed):
    weighted = spread_scaled(pool_bags(e.bags, sys.argv[1], scores, TAU, True, None, space.whitening)[0])
    uniform = spread_scaled(pool_bags(e.bags, "uniform", None, TAU, True, None, space.whitening)[0])
    out = {"weighted": weighted, "uniform": uniform}
    for beta in (0.25, 0.5, 1.0):
        out[f"beta {beta}"] = np.concatenate([weighted, beta * uniform], 1)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
