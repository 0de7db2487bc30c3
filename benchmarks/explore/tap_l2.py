"""Each tap's part of the default (whitened) embedding l2-normalised on its own, then the fine
tap's unit vector put beside the deep tap's at weight r: the deep tap describes the defect, the
fine tap's direction keeps the whole-image textures apart without its length dominating.

An exploration; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/tap_l2.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, compare_embeddings, l2

from anoclust.estimator import embedding_whitening, pool_bags
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()


def fine_beside_deep(emb: np.ndarray, ratios=(0.35, 0.5, 0.7, 1.0)) -> dict:
    """{"deep, l2": ..., "deep + r fine": ...} from a default (every tap) embedding."""
    fine, deep = l2(emb[:, :SPLIT]), l2(emb[:, SPLIT:])
    return {"deep, l2": deep} | {f"deep + {r} fine": np.concatenate([deep, r * fine], 1) for r in ratios}


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    w = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
    emb = pool_bags(e.bags, weighting, scores, CFG.tau, CFG.standardize, None, w)[0]
    return {"default": emb} | fine_beside_deep(emb)


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
