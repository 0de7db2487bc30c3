"""Smoothing the patch-score map before the softmax (Gaussian, sigma 0.5 / 1 / 2 grid cells).

Anomaly maps are usually smoothed before use (PatchCore smooths its pixel map with a Gaussian):
a defect spans several neighbouring patches, while an isolated high score is more often noise.
On MTD the large, low-contrast `uneven` defects get little of the weight (mask_ceiling.py); a
smoothed map favours coherent regions. Left-out patches (the border ring) stay left out: the
smoothing is a normalised convolution over the scored patches only. An exploration
(docs/RESULTS.md, section 9), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/smooth.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.estimator import pool_bags
from anoclust.pipeline import ClusterSettings

TAU = ClusterSettings().tau


def smoothed(scores: np.ndarray, sigma: float) -> np.ndarray:
    n, m = scores.shape
    side = int(round(m**0.5))
    r = int(np.ceil(3 * sigma))
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel = torch.from_numpy(np.outer(g, g) / np.outer(g, g).sum()).float()[None, None]
    valid = torch.from_numpy(np.isfinite(scores)).float().view(n, 1, side, side)
    s = torch.from_numpy(np.nan_to_num(scores)).float().view(n, 1, side, side)
    num, den = F.conv2d(s * valid, kernel, padding=r), F.conv2d(valid, kernel, padding=r)
    out = (num / den.clamp_min(1e-12)).view(n, m).numpy()
    return np.where(np.isfinite(scores), out, np.nan)


def variants(e, space, scores, seed):
    w = sys.argv[1]
    out = {"sigma 0": pool_bags(e.bags, w, scores, TAU, True, None, space.whitening)[0]}
    for sigma in (0.5, 1.0, 2.0):
        out[f"sigma {sigma}"] = pool_bags(e.bags, w, smoothed(scores, sigma), TAU, True, None, space.whitening)[0]
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
