"""Off-the-shelf clustering of the weighted image embeddings (GUIDE 1.4)."""

from __future__ import annotations

import numpy as np

METHODS = ("ward", "average", "complete", "kmeans", "spectral")
NORMALIZATIONS = ("none", "l2", "whiten")


def normalize_embeddings(embeddings: np.ndarray, how: str = "none") -> np.ndarray:
    """Optional rescaling of the embeddings before clustering.

    l2: unit length per image, so only the direction of the feature vector matters.
    whiten: PCA whitening (components explaining 99% of the variance), so no few dominant
    channels decide the distances alone.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if how == "none":
        return x
    if how == "l2":
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    if how == "whiten":
        x = x - x.mean(0)
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        keep = max(1, int(np.searchsorted(np.cumsum(s**2) / max((s**2).sum(), 1e-12), 0.99) + 1))
        return u[:, :keep] * np.sqrt(len(x))
    raise ValueError(f"unknown normalisation {how!r}; choose one of {', '.join(NORMALIZATIONS)}")


def cluster_embeddings(
    embeddings: np.ndarray, n_clusters: int, method: str = "ward", random_state: int | None = 0
) -> np.ndarray:
    """Labels 0..k-1 for the rows of `embeddings`, numbered by decreasing cluster size."""
    x = np.asarray(embeddings, dtype=np.float64)
    if method in ("ward", "average", "complete"):
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
