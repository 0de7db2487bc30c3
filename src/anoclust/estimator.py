"""The scikit-learn style estimator that ties patch bags, weighting and clustering together."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from .clustering import METHODS, NORMALIZATIONS, cluster_embeddings, normalize_embeddings
from .errors import AnoclustError
from .weighting import (
    WEIGHTINGS,
    build_bank,
    max_pool,
    position_normalise,
    reference_scores,
    softmax_weights,
    unsupervised_scores,
    weighted_average,
)

PathsOrBags = Sequence[str | os.PathLike] | np.ndarray


def resolve_weighting(weighting: str, has_normals: bool) -> str:
    """'auto' means reference weighting when normal images exist, unsupervised otherwise."""
    if weighting == "auto":
        return "reference" if has_normals else "unsupervised"
    if weighting not in WEIGHTINGS:
        raise AnoclustError(f"unknown weighting {weighting!r}: choose one of auto, {', '.join(WEIGHTINGS)}")
    if weighting == "reference" and not has_normals:
        raise AnoclustError(
            "reference weighting needs normal images: pass --normal DIR|LIST (or use --weighting unsupervised)"
        )
    return weighting


def patch_scores(
    bags: np.ndarray,
    weighting: str,
    normal_bags: np.ndarray | None = None,
    n_sampled: int = 32,
    max_bank: int = 100_000,
    random_state: int | None = 0,
) -> np.ndarray | None:
    """Per-patch anomaly scores (N, M) of a weighting; None for uniform and max pooling."""
    if weighting == "unsupervised":
        return unsupervised_scores(bags, n_sampled=n_sampled, random_state=random_state)
    if weighting == "reference":
        return reference_scores(bags, build_bank(normal_bags, max_bank, random_state))
    return None


def pool_bags(
    bags: np.ndarray,
    weighting: str,
    scores: np.ndarray | None,
    tau: float,
    standardize: bool,
    position_norm: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (N, D), weights (N, M)) for a weighting and its scores."""
    if weighting == "max":
        return max_pool(bags)
    if weighting == "uniform":
        weights = np.full(bags.shape[:2], 1.0 / bags.shape[1], dtype=np.float32)
    else:
        if position_norm:
            scores = position_normalise(scores)
        weights = softmax_weights(scores, tau=tau, standardize=standardize)
    return weighted_average(bags, weights), weights


class AnomalyClustering(ClusterMixin, BaseEstimator):
    """Group defect images into clusters of defect types (Sohn et al., WACV 2023).

    `fit` takes image paths, or precomputed patch bags of shape (N, M, D). `normal` (paths or
    bags) are defect-free reference images for the `reference` weighting.

    Learned: labels_ (N,), embeddings_ (N, D), weights_ (N, M), scores_ (N, M; NaN for uniform
    and max pooling), n_clusters_, weighting_. When paths are given, images that cannot be read
    get label -1 and NaN rows, and are listed in skipped_ as (path, reason).
    """

    def __init__(
        self,
        n_clusters: int = 5,
        weighting: str = "auto",
        tau: float = 1.0,
        standardize: bool = True,
        position_norm: bool = False,
        n_sampled: int = 32,
        method: str = "ward",
        normalize: str = "none",
        backbone: str = "mobilenet_v2",
        weights: str | None = None,
        image_size: int = 224,
        max_bank: int = 100_000,
        cache_dir: str | None = None,
        random_state: int | None = 0,
    ):
        self.n_clusters = n_clusters
        self.weighting = weighting
        self.tau = tau
        self.standardize = standardize
        self.position_norm = position_norm
        self.n_sampled = n_sampled
        self.method = method
        self.normalize = normalize
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.max_bank = max_bank
        self.cache_dir = cache_dir
        self.random_state = random_state

    def _extractor(self):
        from .extract import EmbeddingConfig, PatchExtractor

        config = EmbeddingConfig(self.backbone, None, self.image_size, self.weights)
        return PatchExtractor(config, cache_dir=self.cache_dir)

    def _bags(self, X: PathsOrBags, what: str) -> tuple[np.ndarray, np.ndarray, list]:
        """(bags of the readable items, their indices in X, skipped (path, reason))."""
        if isinstance(X, np.ndarray) and X.ndim == 3:
            return X, np.arange(len(X)), []
        if isinstance(X, np.ndarray) or isinstance(X, (str, os.PathLike)):
            raise AnoclustError(f"{what} must be a list of image paths or an (N, M, D) array of patch bags")
        ex = self._extractor().extract(list(X), desc=what)
        return ex.bags, ex.ok, ex.skipped

    def _validate(self, n_images: int) -> None:
        if self.method not in METHODS:
            raise AnoclustError(f"unknown clustering method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.normalize not in NORMALIZATIONS:
            raise AnoclustError(f"unknown normalisation {self.normalize!r}: choose one of {', '.join(NORMALIZATIONS)}")
        if not (isinstance(self.n_clusters, (int, np.integer)) and self.n_clusters >= 1):
            raise AnoclustError(f"n_clusters must be a positive whole number, got {self.n_clusters!r}")
        if n_images < max(2, self.n_clusters):
            raise AnoclustError(
                f"{n_images} readable image(s) cannot form {self.n_clusters} clusters: "
                "add images or lower the number of clusters (--k)"
            )
        if not self.tau > 0:
            raise AnoclustError(f"tau must be positive, got {self.tau}")
        if self.n_sampled < 1:
            raise AnoclustError(f"n_sampled must be at least 1, got {self.n_sampled}")

    def fit(self, X: PathsOrBags, y=None, normal: PathsOrBags | None = None) -> "AnomalyClustering":
        bags, ok, skipped = self._bags(X, "images")
        self._validate(len(bags))
        normal_bags = None
        if normal is not None and len(normal) > 0:
            normal_bags, _, normal_skipped = self._bags(normal, "normal images")
            skipped = skipped + normal_skipped
            if len(normal_bags) == 0:
                normal_bags = None
        if normal_bags is not None and normal_bags.shape[1:] != bags.shape[1:]:
            raise AnoclustError("normal images' patch bags differ in shape from the images': use the same settings")
        self.weighting_ = resolve_weighting(self.weighting, normal_bags is not None)

        scores = patch_scores(bags, self.weighting_, normal_bags, self.n_sampled, self.max_bank, self.random_state)
        embeddings, weights = pool_bags(
            bags, self.weighting_, scores, self.tau, self.standardize, self.position_norm
        )
        labels = cluster_embeddings(
            normalize_embeddings(embeddings, self.normalize), int(self.n_clusters), self.method, self.random_state
        )

        n, (m, d) = len(X), bags.shape[1:]
        self.labels_ = np.full(n, -1, dtype=np.int64)
        self.labels_[ok] = labels
        self.embeddings_ = np.full((n, d), np.nan, dtype=np.float32)
        self.embeddings_[ok] = embeddings
        self.weights_ = np.full((n, m), np.nan, dtype=np.float32)
        self.weights_[ok] = weights
        self.scores_ = np.full((n, m), np.nan, dtype=np.float32)
        if scores is not None:
            self.scores_[ok] = scores
        self.n_clusters_ = int(labels.max()) + 1
        self.skipped_ = skipped
        return self

    def fit_predict(self, X: PathsOrBags, y=None, normal: PathsOrBags | None = None) -> np.ndarray:
        return self.fit(X, y, normal=normal).labels_


def anomaly_clustering(
    X: PathsOrBags, n_clusters: int = 5, normal: PathsOrBags | None = None, **params
) -> tuple[np.ndarray, np.ndarray]:
    """Function form of AnomalyClustering: returns (labels, embeddings)."""
    est = AnomalyClustering(n_clusters=n_clusters, **params).fit(X, normal=normal)
    return est.labels_, est.embeddings_
