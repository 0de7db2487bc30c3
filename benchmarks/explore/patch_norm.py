"""Unit-length patch features (cosine matching) instead of the raw ones.

Many anomaly detectors compare patches by cosine similarity. Here each patch feature is scaled
to unit length before scoring, either as one 128-number vector ("patch l2") or per tap, the 32
numbers of features.6 and the 96 of features.13 each ("tap l2"). "pool normalised": the
normalised patches are scored, whitened and pooled as the default does with the raw ones;
"weights only": their scores weight the raw patches, pooled as the default. An exploration
(docs/RESULTS.md, section 12), not part of the tool; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/patch_norm.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.estimator import embedding_whitening, patch_scores, patch_space, pool_bags
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()
FIRST_TAP = 32  # channels of features.6; the remaining 96 are features.13


def unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)


def patch_l2(bags: np.ndarray) -> np.ndarray:
    return unit(bags.astype(np.float32))


def tap_l2(bags: np.ndarray) -> np.ndarray:
    b = bags.astype(np.float32)
    return np.concatenate([unit(b[..., :FIRST_TAP]), unit(b[..., FIRST_TAP:])], -1)


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    assert e.bags.shape[-1] == 128, "written for the default taps (features.6 + features.13)"

    def pooled(bags, s, sp):
        whitening = embedding_whitening(sp, weighting, bags, CFG.whiten, CFG.max_bank, seed)
        return pool_bags(bags, weighting, s, CFG.tau, CFG.standardize, None, whitening)[0]

    out = {"default": pooled(e.bags, scores, space)}
    for name, scale in (("patch l2", patch_l2), ("tap l2", tap_l2)):
        bags = scale(e.bags)
        normals = None if e.normal_bags is None else scale(e.normal_bags)
        sp = patch_space(bags.shape[1], weighting, normals, CFG.border, CFG.whiten, CFG.max_bank, seed)
        s = patch_scores(bags, weighting, normals, CFG.n_sampled, CFG.max_bank, seed, sp)
        out[f"{name} (pool normalised)"] = pooled(bags, s, sp)
        out[f"{name} (weights only)"] = pooled(e.bags, s, space)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
