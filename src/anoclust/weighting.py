"""Patch scores and patch weights (GUIDE 1.2-1.3).

A score s_im says how unusual patch m of image i is; weights alpha_i = softmax(s_i / tau) turn
the bag of patches into one embedding e_i = sum_m alpha_im z_im. All distance work is done as
matrix products on bounded chunks, so memory never grows with N squared.
"""

from __future__ import annotations

import numpy as np
import torch

WEIGHTINGS = ("uniform", "max", "unsupervised", "reference")

# Size of one distance block (float32 elements); 2**25 is 128 MiB.
_BLOCK_ELEMENTS = 2**25


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _min_sq_dist(queries: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor) -> torch.Tensor:
    """Squared distance from each query row to its nearest bank row, in bank blocks."""
    q_sq = (queries * queries).sum(1)
    best = torch.full((queries.shape[0],), float("inf"))
    step = max(1, _BLOCK_ELEMENTS // max(1, queries.shape[0]))
    for start in range(0, bank.shape[0], step):
        # ||q||^2 is the same for every bank row, so it is added after the minimum.
        d = torch.addmm(bank_sq[start : start + step], queries, bank[start : start + step].T, alpha=-2.0)
        best = torch.minimum(best, d.min(1).values)
    return (best + q_sq).clamp_min_(0)


def sample_others(n_images: int, index: int, n_sampled: int, random_state: int | None) -> np.ndarray:
    """Indices of the other images image `index` is compared with.

    Each image draws from its own seed (random_state, index), so the draw does not depend on
    which shard or process scores the image. K >= N - 1 uses every other image: exact.
    """
    others = n_images - 1
    if n_sampled >= others:
        picks = np.arange(others)
    else:
        seed = [0 if random_state is None else int(random_state), index]
        picks = np.sort(np.random.default_rng(seed).choice(others, n_sampled, replace=False))
    return picks + (picks >= index)


def unsupervised_scores(
    bags: np.ndarray,
    n_sampled: int = 32,
    random_state: int | None = 0,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """s_im = mean over other images j of min_n ||z_im - z_jn||, estimated from K sampled j.

    bags: (N, M, D). indices: score only these images (for sharding); all by default.
    Returns (len(indices), M) float32.
    """
    n, m, d = bags.shape
    if n < 2:
        raise ValueError("the unsupervised score needs at least two images")
    indices = np.arange(n) if indices is None else np.asarray(indices)
    out = np.empty((len(indices), m), dtype=np.float32)
    for row, i in enumerate(indices):
        others = sample_others(n, int(i), n_sampled, random_state)
        query = _as_tensor(bags[i])
        total = torch.zeros(m)
        # A handful of reference images per product keeps each block near _BLOCK_ELEMENTS.
        per_block = max(1, _BLOCK_ELEMENTS // (m * m))
        for start in range(0, len(others), per_block):
            group = others[start : start + per_block]
            bank = _as_tensor(bags[group]).reshape(-1, d)
            bank_sq = (bank * bank).sum(1)
            dist = torch.addmm(bank_sq, query, bank.T, alpha=-2.0).view(m, len(group), m)
            nearest = dist.min(2).values + (query * query).sum(1, keepdim=True)
            total += nearest.clamp_min_(0).sqrt_().sum(1)
        out[row] = (total / len(others)).numpy()
    return out


def build_bank(normal_bags: np.ndarray, max_patches: int = 100_000, random_state: int | None = 0) -> np.ndarray:
    """Stack the normal images' patches into one bank, randomly thinned to max_patches.

    Thinning bounds the cost of scoring (it is linear in the bank size); the draw is seeded.
    """
    bank = np.asarray(normal_bags, dtype=np.float32).reshape(-1, normal_bags.shape[-1])
    if len(bank) > max_patches:
        rng = np.random.default_rng(0 if random_state is None else random_state)
        bank = bank[np.sort(rng.choice(len(bank), max_patches, replace=False))]
    return bank


def reference_scores(bags: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """s_im = min over the normal bank of ||z_im - z|| (the PatchCore anomaly score)."""
    n, m, d = bags.shape
    bank_t = _as_tensor(bank)
    bank_sq = (bank_t * bank_t).sum(1)
    out = np.empty((n, m), dtype=np.float32)
    per_chunk = max(1, 4096 // m)
    for start in range(0, n, per_chunk):
        q = _as_tensor(bags[start : start + per_chunk]).reshape(-1, d)
        out[start : start + per_chunk] = _min_sq_dist(q, bank_t, bank_sq).sqrt_().view(-1, m).numpy()
    return out


def position_normalise(scores: np.ndarray) -> np.ndarray:
    """Score each patch relative to the same grid position in the other images of the set.

    s_im -> (s_im - median_i s_im) / MAD_m. Patches that are unusual in every image at one
    position (image borders, where the network sees its zero padding and crops end) stop
    dominating the weights, while a defect, which sits at that position in few images, keeps a
    high score. Needs bags on one common grid, which the fixed-size resize gives.
    """
    s = np.asarray(scores, dtype=np.float64)
    med = np.median(s, axis=0, keepdims=True)
    mad = np.median(np.abs(s - med), axis=0, keepdims=True)
    # a floor relative to the typical spread keeps near-constant positions from exploding
    return ((s - med) / (mad + 0.05 * mad.mean() + 1e-12)).astype(np.float32)


def softmax_weights(scores: np.ndarray, tau: float, standardize: bool = True) -> np.ndarray:
    """alpha = softmax(s / tau) over each image's patches.

    standardize=True first rescales each image's scores to zero mean and unit spread, so tau
    means the same on every dataset and every image whatever the scale of its distances.
    tau = inf gives uniform weights (average pooling).
    """
    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(tau):
        return np.full(s.shape, 1.0 / s.shape[1], dtype=np.float32)
    if tau <= 0:
        raise ValueError("tau must be positive")
    if standardize:
        s = (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-12)
    z = s / tau
    z -= z.max(1, keepdims=True)
    w = np.exp(z)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def weighted_average(bags: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """e_i = sum_m alpha_im z_im for every image: (N, M, D), (N, M) -> (N, D)."""
    return np.einsum("nm,nmd->nd", weights, bags, dtype=np.float32, casting="unsafe")


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
