"""Patch scores and patch weights (GUIDE 1.2-1.3).

A score s_im says how unusual patch m of image i is; weights alpha_i = softmax(s_i / tau) turn
the bag of patches into one embedding e_i = sum_m alpha_im z_im. All distance work is done as
matrix products on bounded chunks, so memory never grows with N squared.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from .patch_space import PatchSpace

WEIGHTINGS = ("uniform", "max", "unsupervised", "reference")

# Distance blocks are computed into preallocated buffers of about this many float32 elements
# (4 MiB): small enough to stay in cache for the minimum that follows the matrix product, large
# enough for the product to run near the machine's matrix-multiply rate (docs/PERFORMANCE.md).
_BLOCK_ELEMENTS = 2**20


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


@contextmanager
def _single_threaded_torch():
    """Let each worker thread run its own single-threaded products.

    Many small independent products scale better over Python threads (torch releases the GIL)
    than over torch's own threads, whose per-product barriers stall when the cores are shared.
    torch's thread count is process-wide: it is restored on exit.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _in_threads(n_items: int, work, n_threads: int | None) -> None:
    """Run work(chunk_of_item_indices) over 0..n_items-1 on n_threads threads."""
    n_threads = max(1, min(n_threads or torch.get_num_threads(), n_items))
    # Small chunks balance the load when another process holds one of the cores for a while.
    chunks = [np.arange(s, min(s + 4, n_items)) for s in range(0, n_items, 4)]
    with _single_threaded_torch():
        if n_threads == 1:
            for c in chunks:
                work(c)
            return
        with ThreadPoolExecutor(n_threads) as pool:
            for f in [pool.submit(work, c) for c in chunks]:
                f.result()


class _NearestInBlocks:
    """Squared distance from each query row to its nearest row of a bank, bank block by block.

    ||q - b||^2 = ||b||^2 - 2 q.b + ||q||^2: one matrix product per block with ||b||^2 added
    by the product itself, a minimum over the block, and ||q||^2 added after the minimum
    because it is the same for every bank row. The buffers are reused across calls.
    """

    def __init__(self, n_queries: int, block_rows: int):
        self.buf = torch.empty(n_queries * block_rows)
        self.mins = torch.empty(n_queries * block_rows)

    def products(self, query: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor) -> torch.Tensor:
        """-2 q.b + ||b||^2 for all pairs: (n_queries, len(bank))."""
        out = self.buf[: query.shape[0] * bank.shape[0]].view(query.shape[0], bank.shape[0])
        return torch.addmm(bank_sq, query, bank.T, alpha=-2.0, out=out)

    def group_minimum(self, dist: torch.Tensor, groups: int) -> torch.Tensor:
        """Minimum within each of `groups` equal column groups: (n_queries, groups)."""
        q = dist.shape[0]
        out = self.mins[: q * groups].view(q, groups)
        return torch.amin(dist.view(q, groups, -1), 2, out=out)


def _min_sq_dist(queries: torch.Tensor, bank: torch.Tensor, bank_sq: torch.Tensor) -> torch.Tensor:
    """Squared distance from each query row to its nearest bank row, in bank blocks."""
    q = queries.shape[0]
    step = max(1, _BLOCK_ELEMENTS // max(1, q))
    blocks = _NearestInBlocks(q, min(step, bank.shape[0]))
    best = torch.full((q,), float("inf"))
    for start in range(0, bank.shape[0], step):
        d = blocks.products(queries, bank[start : start + step], bank_sq[start : start + step])
        best = torch.minimum(best, blocks.group_minimum(d, 1)[:, 0])
    return (best + (queries * queries).sum(1)).clamp_min_(0)


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


def unsupervised_flops(n_images: int, n_patches: int, dim: int, n_sampled: int) -> float:
    """Floating-point operations of the distance products of `unsupervised_scores`."""
    k = min(n_sampled, n_images - 1)
    return 2.0 * n_patches * k * n_patches * dim * n_images


def unsupervised_scores(
    bags: np.ndarray,
    n_sampled: int = 32,
    random_state: int | None = 0,
    indices: np.ndarray | None = None,
    n_threads: int | None = None,
    space: PatchSpace | None = None,
) -> np.ndarray:
    """s_im = mean over other images j of min_n ||z_im - z_jn||, estimated from K sampled j.

    bags: (N, M, D), in memory or memory-mapped. indices: score only these images (for
    sharding); all by default. Each image's result depends only on the bags, its index and
    random_state, not on the sharding or the number of threads (n_threads; default: torch's).
    space: which patches are scored and matched, and the map applied first (patch_space.py);
    patches left out get NaN. Returns (len(indices), M) float32.
    """
    n, m_all, d = bags.shape
    if n < 2:
        raise ValueError("the unsupervised score needs at least two images")
    space = space or PatchSpace()
    prepare = _preparer(space)
    indices = np.arange(n) if indices is None else np.asarray(indices)
    out = np.full((len(indices), m_all), np.nan, dtype=np.float32)
    cols = slice(None) if space.keep is None else np.flatnonzero(space.keep)
    m = m_all if space.keep is None else int(np.count_nonzero(space.keep))
    # A few other images per product keep each distance block near _BLOCK_ELEMENTS.
    per_block = max(1, _BLOCK_ELEMENTS // (m * m))

    def work(rows: np.ndarray) -> None:
        blocks = _NearestInBlocks(m, per_block * m)
        # Reused float32 buffers: torch converts float16 into them several times faster than
        # numpy converts into fresh arrays.
        query = torch.empty(m, d)
        bank = torch.empty(min(n_sampled, n - 1), m, d)
        for row in rows:
            i = int(indices[row])
            others = sample_others(n, i, n_sampled, random_state)
            query.copy_(torch.from_numpy(prepare(bags[i])))
            for slot, j in enumerate(others):
                bank[slot].copy_(torch.from_numpy(prepare(bags[j])))
            bank_sq = torch.linalg.vector_norm(bank, dim=2).square_()
            query_sq = torch.linalg.vector_norm(query, dim=1).square_().unsqueeze_(1)
            total = torch.zeros(m)
            for start in range(0, len(others), per_block):
                g = min(per_block, len(others) - start)
                dist = blocks.products(query, bank[start : start + g].view(-1, d), bank_sq[start : start + g].view(-1))
                total += (blocks.group_minimum(dist, g) + query_sq).clamp_min_(0).sqrt_().sum(1)
            out[row, cols] = (total / len(others)).numpy()

    _in_threads(len(indices), work, n_threads)
    return out


def build_bank(
    normal_bags: np.ndarray, max_patches: int = 100_000, random_state: int | None = 0, space: PatchSpace | None = None
) -> np.ndarray:
    """Stack the normal images' (kept) patches into one bank, randomly thinned to max_patches.

    Thinning bounds the cost of scoring (it is linear in the bank size); the draw is seeded.
    The bank stays in the features' own space: reference_scores applies the space's map.
    """
    kept = (space or PatchSpace()).kept(np.asarray(normal_bags))
    bank = np.asarray(kept, dtype=np.float32).reshape(-1, normal_bags.shape[-1])
    if len(bank) > max_patches:
        rng = np.random.default_rng(0 if random_state is None else random_state)
        bank = bank[np.sort(rng.choice(len(bank), max_patches, replace=False))]
    return bank


def _preparer(space: PatchSpace):
    """One bag (M, D) -> its kept patches as float32, mapped by the space's whitening."""
    whiten = space.whitening

    def prepare(bag: np.ndarray) -> np.ndarray:
        kept = np.asarray(space.kept(np.asarray(bag)), dtype=np.float32)
        return kept if whiten is None else whiten(kept)

    return prepare


def reference_scores(
    bags: np.ndarray, bank: np.ndarray, n_threads: int | None = None, space: PatchSpace | None = None
) -> np.ndarray:
    """s_im = min over the normal bank of ||z_im - z|| (the PatchCore anomaly score).

    space: which patches are scored and the map applied to them and to the bank first
    (patch_space.py); patches left out get NaN.
    """
    n, m, d = bags.shape
    space = space or PatchSpace()
    prepare = _preparer(space)
    bank_t = _as_tensor(bank if space.whitening is None else space.whitening(bank))
    bank_sq = (bank_t * bank_t).sum(1)
    out = np.full((n, m), np.nan, dtype=np.float32)
    cols = slice(None) if space.keep is None else np.flatnonzero(space.keep)

    def work(rows: np.ndarray) -> None:
        for i in rows:
            out[i, cols] = _min_sq_dist(_as_tensor(prepare(bags[i])), bank_t, bank_sq).sqrt_().numpy()

    _in_threads(n, work, n_threads)
    return out


def position_statistics(scores: np.ndarray) -> np.ndarray:
    """(2, M): the median and spread of the scores at each grid position over a set of images."""
    s = np.asarray(scores, dtype=np.float64)
    with warnings.catch_warnings():  # positions that are never scored (border ring) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(s, axis=0)
        mad = np.nanmedian(np.abs(s - med), axis=0)
    # a floor relative to the typical spread keeps near-constant positions from exploding
    return np.stack([med, mad + 0.05 * np.nanmean(mad) + 1e-12])


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


def position_normalise(scores: np.ndarray, stats: np.ndarray | None = None) -> np.ndarray:
    """Score each patch relative to the same grid position in the images of a set.

    s_im -> (s_im - median_i s_im) / MAD_m, with the statistics of `scores` themselves or, for
    new images, the fitted set's `stats` (position_statistics). Patches that are unusual in
    every image at one position (image borders, where the network sees its zero padding and
    crops end) stop dominating the weights, while a defect, which sits at that position in few
    images, keeps a high score. Needs bags on one common grid, which the fixed-size resize gives.
    """
    med, scale = position_statistics(scores) if stats is None else stats
    return ((np.asarray(scores, dtype=np.float64) - med) / scale).astype(np.float32)


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
