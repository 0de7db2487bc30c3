"""Removing the directions in which the images' backgrounds differ from the defect embeddings.

On MTD an image's nearest neighbour shares its tile more than its defect (mask_ceiling.py), so
the embeddings carry tile identity as well as defect type. Here each image also gets a
background embedding (the uniform mean of its scored patches with the lower half of its
scores); the top r principal directions of the set's background embeddings are projected out
of the defect embeddings before Ward, r = 4, 8, 16, 32 (of 128), with and without l2. An
exploration (docs/RESULTS.md, section 9), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/nuisance.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.clustering import normalize_embeddings
from anoclust.estimator import pool_bags
from anoclust.pipeline import ClusterSettings

TAU = ClusterSettings().tau


def background(bags: np.ndarray, scores: np.ndarray, whitening) -> np.ndarray:
    low = np.isfinite(scores) & (scores <= np.nanmedian(scores, axis=1, keepdims=True))
    x = np.einsum("nm,nmd->nd", low / low.sum(1, keepdims=True), bags.astype(np.float32))
    return x if whitening is None else whitening(x)


def project_out(x: np.ndarray, b: np.ndarray, r: int) -> np.ndarray:
    _, _, vt = np.linalg.svd(b - b.mean(0), full_matrices=False)
    v = vt[:r].T
    return x - (x - x.mean(0)) @ v @ v.T


def variants(e, space, scores, seed):
    x0 = pool_bags(e.bags, sys.argv[1], scores, TAU, True, None, space.whitening)[0]
    b = background(e.bags, scores, space.whitening)
    out = {}
    for r in (0, 4, 8, 16, 32):
        xr = project_out(x0, b, r) if r else x0
        for h in ("none", "l2"):
            out[f"r{r} {h}"] = normalize_embeddings(xr, h)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
