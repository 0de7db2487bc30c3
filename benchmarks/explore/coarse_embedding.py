"""Describe the defect by the coarse tap alone, whitened on its own, with and without l2
(docs/RESULTS.md, section 14).

The patch scores (where the defect is) keep both taps; the embedding (what the defect looks
like) is pooled from features.13 only and whitened by a map fitted on features.13 alone: the
normals' features.13 patches (reference weighting) or their within-image variation
(unsupervised). "sliced" takes features.13's coordinates of the default (jointly whitened)
embedding instead; "+ r features.6" puts the fine tap back beside it, each half divided by
its spread, before l2.

An exploration; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/coarse_embedding.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import SPLIT, compare_embeddings, l2, spread_scaled

from anoclust.estimator import embedding_whitening, patch_space, pool_bags
from anoclust.patch_space import within_image_whitening
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()


def own_whitening(weighting: str, bags: np.ndarray, normal_bags, seed: int):
    if weighting == "reference":
        return patch_space(bags.shape[1], weighting, normal_bags, CFG.border, CFG.whiten, CFG.max_bank, seed).whitening
    return within_image_whitening(bags, CFG.max_bank, seed)


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    pool = lambda b, w: pool_bags(b, weighting, scores, CFG.tau, CFG.standardize, None, w)[0]
    default = pool(e.bags, embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed))
    fine, coarse = e.bags[..., :SPLIT], e.bags[..., SPLIT:]
    normals = (lambda part: None) if e.normal_bags is None else (lambda part: e.normal_bags[..., part])
    high = pool(coarse, own_whitening(weighting, coarse, normals(slice(SPLIT, None)), seed))
    low = pool(fine, own_whitening(weighting, fine, normals(slice(None, SPLIT)), seed))
    out = {"default": default, "default, l2": l2(default),
           "features.13 sliced, l2": l2(default[:, SPLIT:]),
           "features.13": high, "features.13, l2": l2(high)}
    for r in (0.25, 0.5):
        out[f"features.13 + {r} features.6, l2"] = l2(np.concatenate([spread_scaled(high), r * spread_scaled(low)], 1))
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
