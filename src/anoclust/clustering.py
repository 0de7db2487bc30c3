"""Off-the-shelf clustering of the weighted image embeddings (GUIDE 1.4)."""

from __future__ import annotations

import numpy as np

from .settings import METHODS

# Exact Ward keeps N^2 / 2 pairwise distances (100 MB at 5,000 images, 10 GB at 50,000) and its
# time grows with N^2. Above EXACT_WARD_MAX images `ward` runs in two stages: k-means into
# TWO_STAGE_CENTROIDS centroids, then Ward on the centroids weighted by their sizes
# (docs/PERFORMANCE.md compares it with exact Ward). The other linkages always run exactly.
EXACT_WARD_MAX = 5000
TWO_STAGE_CENTROIDS = 1000


def cluster_embeddings(
    embeddings: np.ndarray, n_clusters: int, method: str = "ward", random_state: int | None = 0
) -> np.ndarray:
    """Labels 0..k-1 for the rows of `embeddings`, numbered by decreasing cluster size."""
    x = np.asarray(embeddings, dtype=np.float64)
    if method == "ward_kmeans":
        labels = kmeans_refined(x, cluster_embeddings(x, n_clusters, "ward", random_state))
    elif method == "ward" and len(x) > EXACT_WARD_MAX:
        labels = two_stage_ward(x, n_clusters, TWO_STAGE_CENTROIDS, random_state)
    elif method in ("ward", "average", "complete"):
        from sklearn.cluster import AgglomerativeClustering

        labels = AgglomerativeClustering(n_clusters=n_clusters, linkage=method).fit_predict(x)
    elif method == "kmeans":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state).fit_predict(x)
    elif method == "spectral":
        from sklearn.cluster import SpectralClustering

        labels = SpectralClustering(
            n_clusters=n_clusters,
            affinity="nearest_neighbors",
            n_neighbors=min(10, len(x) - 1),
            assign_labels="cluster_qr",
            random_state=random_state,
        ).fit_predict(x)
    else:
        raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    return relabel_by_size(labels)


def kmeans_refined(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Lloyd's k-means started from the centroids of `labels` (deterministic).

    Ward merges greedily and never undoes a merge, so an image joined to a group early stays
    there even when another group's centre ends up nearer; the k-means steps move it. Both
    minimise the same within-cluster sum of squares, so this only polishes Ward's partition
    (docs/DESIGN.md).
    """
    from sklearn.cluster import KMeans

    ids = np.unique(labels)
    centres = np.stack([x[labels == c].mean(0) for c in ids])
    return KMeans(n_clusters=len(ids), init=centres, n_init=1, random_state=0).fit_predict(x)


def two_stage_ward(
    x: np.ndarray, n_clusters: int, n_centroids: int = TWO_STAGE_CENTROIDS, random_state: int | None = 0
) -> np.ndarray:
    """Ward clustering of many points through k-means centroids: memory O(N + C^2), not O(N^2).

    Each centroid stands for its points: Ward's merge cost n_a n_b / (n_a + n_b) ||c_a - c_b||^2
    depends only on sizes and means, so weighting the centroids by their sizes reproduces what
    exact Ward would do if it had first merged each k-means cell.
    """
    from sklearn.cluster import KMeans

    x = np.asarray(x, dtype=np.float64)
    if len(x) <= n_centroids:
        return weighted_ward(x, np.ones(len(x)), n_clusters)
    # Random initialisation: k-means++ seeding of a thousand centres costs ten times the fit
    # itself, and over-segmenting this finely leaves little for a careful seeding to improve.
    km = KMeans(n_clusters=n_centroids, init="random", n_init=1, random_state=random_state).fit(x)
    cells, cell_of = np.unique(km.labels_, return_inverse=True)  # drops empty cells
    sizes = np.bincount(cell_of).astype(np.float64)
    return weighted_ward(km.cluster_centers_[cells], sizes, n_clusters)[cell_of]


def weighted_ward(points: np.ndarray, sizes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Ward agglomeration of points that stand for `sizes` observations each; labels 0..k-1.

    Keeps the full matrix of Ward distances 2 n_a n_b / (n_a + n_b) ||c_a - c_b||^2 (for single
    points: the squared distance) and updates it with the Lance-Williams formula after each
    merge; O(C^2) memory and O(C^3) time, meant for a few thousand points at most.
    """
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    if not 1 <= n_clusters <= n:
        raise ValueError(f"cannot form {n_clusters} clusters from {n} points")
    size = np.asarray(sizes, dtype=np.float64).copy()
    sq = (p * p).sum(1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * p @ p.T, 0.0)
    dist *= 2.0 * np.outer(size, size) / (size[:, None] + size[None, :])
    np.fill_diagonal(dist, np.inf)
    owner = np.arange(n)  # the surviving cluster each point belongs to
    for _ in range(n - n_clusters):
        i, j = divmod(int(np.argmin(dist)), n)
        merged = ((size[i] + size) * dist[i] + (size[j] + size) * dist[j] - size * dist[i, j]) / (
            size[i] + size[j] + size
        )
        dist[i, :] = dist[:, i] = merged
        dist[j, :] = dist[:, j] = np.inf
        dist[i, i] = np.inf
        size[i] += size[j]
        owner[owner == j] = i
    return np.unique(owner, return_inverse=True)[1]


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 from largest to smallest (ties by first appearance)."""
    labels = np.asarray(labels)
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(len(uniq), dtype=np.int64)
    mapping[order] = np.arange(len(uniq))
    return mapping[np.searchsorted(uniq, labels)]


def cluster_centres(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean embedding of each cluster 0..k-1."""
    k = int(labels.max()) + 1
    return np.stack([embeddings[labels == c].mean(0) for c in range(k)])
