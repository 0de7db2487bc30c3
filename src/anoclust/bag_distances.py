"""Multiple-instance baselines: distances between images' patch bags, then clustering on them.

The paper (Sohn et al., "Anomaly Clustering", WACV 2023) compares its weighted-average embedding
with clustering on distances between the images' bags of patch features. Two such distances:

- chamfer: the mean over each bag's patches of the distance to the nearest patch of the other
  bag, averaged over the two directions;
- Hausdorff: the largest of those nearest-patch distances, over both directions.

Both are symmetric, zero between identical bags and on the diagonal. They use the raw patch
features (every tap, no whitening: the paper's baselines) and, like the weightings, no patch of
the border ring (`space.scored_mask`; with aspect "keep" the ring patches at the end of each bag).

Cost. Every pair of images compares every patch of one with every patch of the other:
N^2 M^2 D / 2 multiply-adds (each pair once), 1.7e14 on NEU (N = 1,800, M = 900 interior
patches, D = 128), about 40 minutes per seed at the rate measured below on two cores. Each bag
is therefore cut to PATCHES_PER_BAG patches, at grid positions drawn once with the seed and
shared by every image (so the distance between two images depends only on those two images and
the seed, up to float32 rounding, not on their rows or on the set; identical images stay at 0):
N^2 P^2 D / 2 multiply-adds, 1.6e11 on MTD (2.3 s), 3.4e12 on NEU (47 s). Both directions of a
pair come from one product. The products run in float32 over blocks of images whose distance
block is about nearest.BLOCK_ELEMENTS, on Python threads (nearest.in_threads); memory is the
subsample (N P D floats, 118 MB for NEU) plus the N x N results, never a whole patch-by-patch
matrix.

Clustering (k given; CLUSTERING). Both distances go to spectral clustering on the affinity
exp(-d^2 / (2 median^2)), not to average linkage. On these matrices a few images lie far from
all others (one odd patch is enough for Hausdorff, a few for chamfer); average linkage spends
clusters on them and leaves one cluster with most of the images (83-95% with Hausdorff, 41-92%
with chamfer on the study sets), while the Gaussian affinity saturates beyond the median
distance, so outliers cannot claim clusters of their own. Measured on the four real study sets
(docs/RESULTS.md, "Multiple-instance baselines"): for Hausdorff, spectral is better on every set
and metric; for chamfer the NMI sums tie (1.23 spectral, 1.25 average linkage) while spectral
wins ARI (0.84 against 0.62) and F1 (1.79 against 1.53). Neither clustering uses a random seed
(QR label assignment, a fixed start for the eigen solver): the seed only draws the patch
positions, so given the seed the labels are deterministic.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

from .space import scored_positions
from .weighting.nearest import BLOCK_ELEMENTS, as_tensor, in_threads

# Patches compared per bag. The cost grows with its square (N^2 P^2 D / 2 multiply-adds): with
# 128, MTD's 392 images take 2.3 s and NEU's 1,800 take 47 s per seed on two cores; all 900
# interior patches would take (900 / 128)^2 = 49 times as long.
PATCHES_PER_BAG = 128

BAG_BASELINES = ("chamfer", "hausdorff")
# Which clustering each baseline's distance matrix goes to (module docstring).
CLUSTERING = {"chamfer": "spectral", "hausdorff": "spectral"}
CLUSTERINGS = ("average", "spectral")

# A nearest-patch squared distance below this share of the two patches' squared norms is
# recomputed from the differences: there the matrix product's float32 rounding (about 1e-6 of the
# squared norms) would matter, the square root magnifying it. Identical patches then give 0.
NEAR = 2.0**-10
# Images whose subsampled patches are gathered from the bags at a time (bounds the float32 copy
# of memory-mapped float16 bags).
GATHER_IMAGES = 256


@dataclass(frozen=True)
class BagDistances:
    """(N, N) float64 symmetric matrices, zero diagonal."""

    chamfer: np.ndarray
    hausdorff: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in BAG_BASELINES:
            raise KeyError(name)
        return getattr(self, name)


def patch_positions(n_patches: int, border: int, per_bag: int = PATCHES_PER_BAG, seed: int = 0,
                    aspect: str = "squash") -> np.ndarray:
    """The bag positions compared in every bag: all interior positions if there are at most
    per_bag of them, else per_bag of them drawn with the seed (sorted). A square image's
    keep-mode bag starts with its interior in squash mode's order, so both modes compare the
    same patches of it."""
    interior = scored_positions(n_patches, border, aspect)
    if len(interior) <= per_bag:
        return interior
    return np.sort(np.random.default_rng(seed).choice(interior, per_bag, replace=False))


def uses_seed(n_patches: int, border: int, per_bag: int = PATCHES_PER_BAG, aspect: str = "squash") -> bool:
    """Whether the seed can change the distances (only through the subsample)."""
    return len(scored_positions(n_patches, border, aspect)) > per_bag


def bag_distances(bags: np.ndarray, border: int = 3, per_bag: int = PATCHES_PER_BAG, seed: int = 0,
                  n_threads: int | None = None, aspect: str = "squash") -> BagDistances:
    """Chamfer and Hausdorff distances between all pairs of (N, M, D) bags (in memory or
    memory-mapped), over the patches at `patch_positions(M, border, per_bag, seed, aspect)`.

    The result depends on the bags and the seed only, not on the number of threads (every
    block of image pairs is computed the same way whichever thread takes it).
    """
    n, m, d = bags.shape
    pos = patch_positions(m, border, per_bag, seed, aspect)
    p = len(pos)
    if n == 0 or p == 0:
        raise ValueError("bag distances need at least one image and one patch outside the border ring")
    x = np.empty((n, p, d), dtype=np.float32)
    for s in range(0, n, GATHER_IMAGES):
        x[s : s + GATHER_IMAGES] = np.asarray(bags[s : s + GATHER_IMAGES][:, pos], dtype=np.float32)
    # Centred on the mean patch: distances do not change, the products' rounding shrinks.
    x -= x.reshape(-1, d).mean(0, dtype=np.float64).astype(np.float32)
    feats = as_tensor(x)
    sq = torch.linalg.vector_norm(feats, dim=2).square_()  # (n, p)
    top = sq.amax(1)  # (n,) each image's largest squared norm, for the NEAR test

    # directed[i, j]: over i's patches, the distance to the nearest patch of j (mean, max)
    mean_dir = np.zeros((n, n), dtype=np.float64)
    max_dir = np.zeros((n, n), dtype=np.float64)
    side = max(1, math.isqrt(BLOCK_ELEMENTS) // p)  # images per block: the block is (side p)^2
    starts = list(range(0, n, side))
    pairs = [(a, b) for ia, a in enumerate(starts) for b in starts[ia:]]
    local = threading.local()

    def work(items: np.ndarray) -> None:
        if not hasattr(local, "buf"):
            local.buf = torch.empty((side * p) ** 2)
        for item in items:
            a, b = pairs[item]
            ia, ib = slice(a, min(a + side, n)), slice(b, min(b + side, n))
            na, nb = ia.stop - a, ib.stop - b
            q, r = feats[ia], feats[ib]  # (na, p, d), (nb, p, d)
            dist = local.buf[: na * p * nb * p].view(na * p, nb * p)
            torch.addmm(sq[ib].reshape(-1), q.reshape(-1, d), r.reshape(-1, d).T, alpha=-2.0, out=dist)
            dist.add_(sq[ia].reshape(-1, 1))
            # a -> b: each patch of an image in a, nearest patch of each image in b; b -> a likewise
            ab = torch.amin(dist.view(na, p, nb, p), 3).clamp_min_(0)  # (na, p, nb)
            ba = torch.amin(dist.view(na, p, nb, p), 1).clamp_min_(0)  # (na, nb, p)
            _recheck(ab, q, r, sq[ia].unsqueeze(2) + top[ib].view(1, 1, -1), a == b)
            _recheck(ba.permute(1, 2, 0), r, q, sq[ib].unsqueeze(2) + top[ia].view(1, 1, -1), a == b)
            ab.sqrt_()
            ba.sqrt_()
            mean_dir[ia, ib] = ab.mean(1).numpy()
            max_dir[ia, ib] = ab.amax(1).numpy()
            mean_dir[ib, ia] = ba.mean(2).T.numpy()
            max_dir[ib, ia] = ba.amax(2).T.numpy()

    in_threads(len(pairs), work, n_threads)
    chamfer = (mean_dir + mean_dir.T) / 2.0
    hausdorff = np.maximum(max_dir, max_dir.T)
    np.fill_diagonal(chamfer, 0.0)
    np.fill_diagonal(hausdorff, 0.0)
    return BagDistances(chamfer, hausdorff)


def _recheck(mins: torch.Tensor, q: torch.Tensor, r: torch.Tensor, scale: torch.Tensor, same_block: bool) -> None:
    """Recompute in place, from the differences, the squared minima mins[i, s, j] (patch s of
    query image i, nearest patch of bank image j) below NEAR of `scale` (the squared norms);
    an image against itself is skipped (its diagonal is 0 by definition)."""
    near = mins < NEAR * scale
    if same_block:
        near &= ~torch.eye(q.shape[0], dtype=torch.bool).unsqueeze(1)
    where = torch.nonzero(near)
    for chunk in torch.split(where, 256):  # 256 x p x d floats at a time
        i, s, j = chunk.unbind(1)
        diff = r[j] - q[i, s].unsqueeze(1)  # (c, p, d)
        mins[i, s, j] = torch.linalg.vector_norm(diff, dim=2).square_().amin(1)


def cluster_distances(dist: np.ndarray, k: int, clustering: str) -> np.ndarray:
    """Labels 0..k-1 of N items from their (N, N) distance matrix.

    "average": average linkage (agglomerative, precomputed distances). "spectral": spectral
    clustering of the affinity exp(-d^2 / (2 s^2)), s the median distance between distinct
    items, labels by the QR assignment of the eigenvectors (no k-means restarts), the eigen
    solver started from a fixed vector: deterministic.
    """
    dist = np.asarray(dist, dtype=np.float64)
    n = len(dist)
    if clustering not in CLUSTERINGS:
        raise ValueError(f"unknown clustering {clustering!r}; choose one of {', '.join(CLUSTERINGS)}")
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} clusters of {n} items")
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    if clustering == "average":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average")
        return model.fit_predict(dist).astype(np.int64)
    from sklearn.cluster import SpectralClustering

    off = dist[np.triu_indices(n, 1)]
    scale = float(np.median(off)) if len(off) else 1.0
    if scale <= 0:
        scale = float(off.max()) or 1.0
    affinity = np.exp(-np.square(dist) / (2.0 * scale * scale))
    model = SpectralClustering(n_clusters=k, affinity="precomputed", assign_labels="cluster_qr", random_state=0)
    return model.fit_predict(affinity).astype(np.int64)


def bag_labels(distances: BagDistances, k: int, baseline: str) -> np.ndarray:
    """A baseline's labels: its distance matrix clustered as CLUSTERING says."""
    return cluster_distances(distances[baseline], k, CLUSTERING[baseline])
