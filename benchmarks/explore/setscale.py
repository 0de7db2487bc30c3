"""Standardising the patch scores by a spread of the whole set instead of each image's own.

The default divides each image's scores by their own standard deviation, so every image gets
equally peaked weights, whether or not it has a patch that stands out. Dividing instead by one
spread for the whole set (the median or the root mean square of the images' standard
deviations, or the standard deviation of all scores of the set) lets images whose scores are
flat, such as whole-image defect textures, keep nearly uniform weights while images with an
outlying patch stay peaked. tau 0.5 and 1. An exploration (docs/RESULTS.md, section 9), not
part of the tool.

    PYTHONPATH=src python benchmarks/explore/setscale.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.estimator import pool_bags


def set_scaled_weights(s: np.ndarray, tau: float, how: str) -> np.ndarray:
    per_image = np.nanstd(s, axis=1)
    spread = {"median": np.median(per_image), "rms": np.sqrt(np.mean(per_image**2)), "total": np.nanstd(s)}[how]
    z = (s - np.nanmax(s, axis=1, keepdims=True)) / (tau * spread)
    w = np.where(np.isnan(z), 0.0, np.exp(z))
    return w / w.sum(1, keepdims=True)


def variants(e, space, scores, seed):
    s = scores.astype(np.float64)
    z = e.bags.astype(np.float32) if space.whitening is None else space.whitening(e.bags)
    out = {"uniform": pool_bags(e.bags, "uniform", None, 1.0, True, None, space.whitening)[0]}
    for tau in (0.5, 1.0):
        out[f"per-image tau {tau}"] = pool_bags(e.bags, sys.argv[1], scores, tau, True, None, space.whitening)[0]
        for how in ("median", "rms", "total"):
            out[f"{how} tau {tau}"] = np.einsum("nm,nmd->nd", set_scaled_weights(s, tau, how), z)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
