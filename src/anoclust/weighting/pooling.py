"""From patch scores to patch weights and from weights to one embedding per image (GUIDE 1.2).

A score s_im says how unusual patch m of image i is; weights alpha_i = softmax(s_i / tau) turn
the bag of patches into one embedding e_i = sum_m alpha_im z_im.
"""

from __future__ import annotations

import warnings

import numpy as np

def score_peak(scores: np.ndarray) -> float:
    """Median over images of the largest patch score in standard deviations above its image's mean.

    With a local defect the largest score stands far out; without one (a defect texture over
    the whole image, or no defect) it is the largest of a few hundred noisy scores, about 3.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (nothing scored) give NaN
        return float(np.nanmedian(np.nanmax(standardised_rows(scores), 1)))


def standardised_rows(scores: np.ndarray) -> np.ndarray:
    """Each image's scores at zero mean and unit spread over its scored (non-NaN) patches."""
    s = np.asarray(scores, dtype=np.float64)
    return (s - np.nanmean(s, 1, keepdims=True)) / (np.nanstd(s, 1, keepdims=True) + 1e-12)


def softmax_weights(scores: np.ndarray, tau: float, standardize: bool = True) -> np.ndarray:
    """alpha = softmax(s / tau) over each image's patches.

    standardize=True first rescales each image's scores to zero mean and unit spread, so tau
    means the same on every dataset and every image whatever the scale of its distances.
    tau = inf gives uniform weights (average pooling). NaN scores (patches not scored, such as
    the border ring) get weight zero and take no part in the standardisation.
    """
    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(tau):
        return np.full(s.shape, 1.0 / s.shape[1], dtype=np.float32)
    if tau <= 0:
        raise ValueError("tau must be positive")
    scored = ~np.isnan(s)
    if not scored.any(1).all():
        raise ValueError("every image needs at least one scored patch")
    if standardize:
        s = standardised_rows(s)
    z = s / tau
    z -= np.nanmax(z, 1, keepdims=True)
    w = np.where(scored, np.exp(np.where(scored, z, 0.0)), 0.0)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def scored_average_weights(scores: np.ndarray) -> np.ndarray:
    """Equal weights over each image's scored (non-NaN) patches: average pooling of the patches
    the scores look at, for defects that cover the whole image (anoclust.fit.describe)."""
    scored = ~np.isnan(np.asarray(scores))
    if not scored.any(1).all():
        raise ValueError("every image needs at least one scored patch")
    return (scored / scored.sum(1, keepdims=True)).astype(np.float32)


def weighted_average(bags: np.ndarray, weights: np.ndarray, chunk: int = 256) -> np.ndarray:
    """e_i = sum_m alpha_im z_im for every image: (N, M, D), (N, M) -> (N, D).

    In chunks of images, so float16 (possibly memory-mapped) bags are never converted whole.
    """
    out = np.empty((bags.shape[0], bags.shape[2]), dtype=np.float32)
    for s in range(0, len(out), chunk):
        w, b = weights[s : s + chunk], bags[s : s + chunk]
        out[s : s + chunk] = np.einsum("nm,nmd->nd", w, b, dtype=np.float32, casting="unsafe")
    return out


def max_pool(bags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel-wise max over patches, the usual max-pooling baseline.

    There is no single weight per patch here, so the returned weights are the share of channels
    in which each patch holds the maximum (what a heat map of "where max pooling looks" shows).
    """
    n, m, d = bags.shape
    pooled = bags.max(1).astype(np.float32)
    winners = bags.argmax(1)
    weights = np.zeros((n, m), dtype=np.float32)
    np.add.at(weights, (np.repeat(np.arange(n), d), winners.ravel()), 1.0 / d)
    return pooled, weights
