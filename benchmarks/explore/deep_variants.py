"""Variants of the reference embedding around the section-14 default: the whitening's
shrinkage (sliced from the joint map, or features.13's own map) and tau, all l2-normalised.

An exploration; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/deep_variants.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, compare_embeddings, l2

from anoclust.estimator import pool_bags
from anoclust.patch_space import Whitening
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import build_bank

CFG = ClusterSettings()


def normal_patches(e, cols: slice) -> np.ndarray:
    """The patches the default whitening is fitted on (border ring included), some columns."""
    return build_bank(e.normal_bags, CFG.max_bank, 0)[:, cols]


def variants(e, space, scores, seed):
    pool = lambda b, w, tau=CFG.tau: pool_bags(b, "reference", scores, tau, CFG.standardize, None, w)[0]
    out = {"default": l2(pool(e.bags, space.whitening)[:, SPLIT:])}
    for tau in (0.25, 1.0):
        out[f"tau {tau}"] = l2(pool(e.bags, space.whitening, tau)[:, SPLIT:])
    for s in (0.03, 0.3):
        w = Whitening.fit(normal_patches(e, slice(None)), shrinkage=s)
        out[f"joint shrink {s}"] = l2(pool(e.bags, w)[:, SPLIT:])
    for s in (0.1, 0.3, 0.6):
        w = Whitening.fit(normal_patches(e, slice(SPLIT, None)), shrinkage=s)
        out[f"own shrink {s}"] = l2(pool(e.bags[..., SPLIT:], w))
    return out


if __name__ == "__main__":
    compare_embeddings("reference", variants)
