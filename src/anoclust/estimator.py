"""The scikit-learn style estimator that ties patch bags, weighting and clustering together."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from .backbones import deepest_tap_channels
from .clustering import METHODS, NORMALIZATIONS, EmbeddingSpace, cluster_centres, cluster_embeddings, normalize_embeddings
from .errors import AnoclustError
from .images import DEFAULT_IMAGE_SIZE
from .model_selection import choose_k
from .normals import resolve_normal_threshold
from .ordering import canonical_order, take_rows
from .patch_space import PatchSpace, Whitening, interior_mask, within_image_whitening
from .prediction import calibrate_thresholds, centre_distances, new_patch_scores, scoring_state
from .weighting import (
    WEIGHTINGS,
    build_bank,
    max_pool,
    position_normalise,
    position_statistics,
    reference_scores,
    score_peak,
    softmax_weights,
    unsupervised_scores,
    weighted_average,
)

PathsOrBags = Sequence[str | os.PathLike] | np.ndarray

# labels_ of images that are not clustered: unreadable, or set apart as normal.
UNREADABLE, NORMAL = -1, -2


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


def patch_space(
    n_patches: int,
    weighting: str,
    normal_bags: np.ndarray | None,
    border: int = 3,
    whiten: bool = True,
    max_bank: int = 100_000,
    random_state: int | None = 0,
) -> PatchSpace:
    """The patches a weighting scores and the map applied before distances (patch_space.py).

    Whitening is fitted on the (seeded-thinned) normal patches, so only reference weighting has
    it. The border ring is part of the fit: the directions in which the crop's edges and the
    padding make patches vary are then discounted in the interior as well, which measured
    clearly better on MTD than a fit on the interior alone (docs/RESULTS.md)."""
    keep = interior_mask(n_patches, border)
    whitening = None
    if whiten and weighting == "reference" and normal_bags is not None:
        whitening = Whitening.fit(build_bank(normal_bags, max_bank, random_state))
    return PatchSpace(keep, whitening)


def embedding_whitening(
    space: PatchSpace, weighting: str, bags: np.ndarray, whiten: bool = True, max_bank: int = 100_000,
    random_state: int | None = 0,
) -> Whitening | None:
    """The map applied to the pooled embeddings: the patch space's whitening by the normals
    (reference weighting), or the whitening by within-image variation (unsupervised weighting;
    patch_space.py); None for uniform and max pooling or with whiten=False."""
    if space.whitening is not None:
        return space.whitening
    if whiten and weighting == "unsupervised":
        return within_image_whitening(bags, max_bank, random_state)
    return None


def patch_scores(
    bags: np.ndarray,
    weighting: str,
    normal_bags: np.ndarray | None = None,
    n_sampled: int = 32,
    max_bank: int = 100_000,
    random_state: int | None = 0,
    space: PatchSpace | None = None,
) -> np.ndarray | None:
    """Per-patch anomaly scores (N, M) of a weighting; None for uniform and max pooling.

    NaN marks patches the space leaves out."""
    if weighting == "unsupervised":
        return unsupervised_scores(bags, n_sampled=n_sampled, random_state=random_state, space=space)
    if weighting == "reference":
        return reference_scores(bags, build_bank(normal_bags, max_bank, random_state, space), space=space)
    return None


def pool_bags(
    bags: np.ndarray,
    weighting: str,
    scores: np.ndarray | None,
    tau: float,
    standardize: bool,
    position_stats: np.ndarray | None = None,
    whitening: Whitening | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (N, D), weights (N, M)) for a weighting and its scores.

    position_stats: the fitted set's per-position score statistics (position_statistics) when
    scores are position-normalised; None leaves the scores as they are. whitening: the patch
    space's map; the embeddings are put into the space the scores were measured in."""
    if weighting == "max":
        return max_pool(bags)
    if weighting == "uniform":
        weights = np.full(bags.shape[:2], 1.0 / bags.shape[1], dtype=np.float32)
    else:
        if position_stats is not None:
            scores = position_normalise(scores, position_stats)
        weights = softmax_weights(scores, tau=tau, standardize=standardize)
    embeddings = weighted_average(bags, weights)
    return (embeddings if whitening is None else whitening(embeddings)), weights


EMBED_TAPS = ("auto", "all", "deepest")


# Without normals the deepest tap describes the defect only when the set's score_peak is at
# least this: its local defects stand out. Whole-image defect textures score 3.6-4.0 and lose
# with the deepest tap; sets of small local defects score 4.9-5.5 (docs/RESULTS.md, section 16).
LOCAL_PEAK = 4.5


def resolve_embedding(
    normalize: str, embed_taps: str, weighting: str, backbone: str, dim: int, peak: float | None = None
) -> tuple[str, int]:
    """(normalisation, first embedding column kept) for a fit; "auto" settings resolved.

    With the reference weighting "auto" describes the defect by the deepest tap's part of the
    whitened embedding, l2-normalised: the scores still use every tap (fine detail helps find
    the defect), but in the description the fine tap and the embedding's length carry more of
    the parts' own variation than of the defect type (docs/RESULTS.md, section 14). With the
    unsupervised weighting it does so only when the scores find local defects (peak, the set's
    weighting.score_peak, at least LOCAL_PEAK; section 16). Otherwise, and for bags not laid out
    as the backbone's default taps, "auto" keeps every tap unnormalised.
    """
    last = deepest_tap_channels(backbone, dim)
    local = weighting == "unsupervised" and peak is not None and peak >= LOCAL_PEAK
    coarse = (weighting == "reference" or local) and last is not None
    taps = ("deepest" if coarse else "all") if embed_taps == "auto" else embed_taps
    normalize = ("l2" if coarse else "none") if normalize == "auto" else normalize
    if taps == "all":
        return normalize, 0
    if last is None:
        raise AnoclustError(
            f"--embed-taps deepest needs the patch features of {backbone}'s default taps, not {dim} channels: "
            "use --embed-taps all"
        )
    return normalize, dim - last


COMPONENTS_PER_CLUSTER = 4


def resolve_components(components: int | str, weighting: str, k: int, shape: tuple[int, int]) -> int:
    """Principal axes the clustering space keeps (0: all, no projection); "auto" resolved.

    "auto" keeps COMPONENTS_PER_CLUSTER per cluster with the reference and unsupervised
    weightings: k clusters' centres span k - 1 directions, and the directions of least variation
    across the set blur them (docs/RESULTS.md, section 18). Average and max pooling, the
    paper's baselines, keep every direction. Never more than the (N, D) embeddings have.
    """
    if components == "auto":
        components = COMPONENTS_PER_CLUSTER * k if weighting in ("reference", "unsupervised") else 0
    return max(0, min(int(components), shape[0] - 1, shape[1]))


def resolve_method(method: str, weighting: str) -> str:
    """The clustering method of a fit; "auto" resolved.

    "auto" is Ward polished by k-means with the reference weighting and plain Ward otherwise:
    with the reference embedding the k-means steps measured better on MTD (45 of 51 subsets)
    and changed no synthetic set; without normals they cost MTD (docs/RESULTS.md, section 15).
    """
    if method != "auto":
        return method
    return "ward_kmeans" if weighting == "reference" else "ward"


class AnomalyClustering(ClusterMixin, BaseEstimator):
    """Group defect images into clusters of defect types (Sohn et al., WACV 2023).

    `fit` takes image paths, or precomputed patch bags of shape (N, M, D). `normal` (paths or
    bags) are defect-free reference images for the `reference` weighting.

    Learned: labels_ (N,), embeddings_ (N, D'; before normalisation), weights_ (N, M), scores_
    (N, M; NaN for uniform and max pooling), score_peak_ (weighting.score_peak of the scores;
    None without scores), n_clusters_, weighting_, method_ (resolve_method),
    normalize_ and embed_from_ (the resolved normalisation and the first of the D patch-feature
    columns the embedding keeps; resolve_embedding), n_components_ (resolve_components) and
    embedding_space_ (the fitted clustering.EmbeddingSpace, which maps embeddings_ rows to the
    space they were clustered in). When paths are given, images that cannot be read
    get label -1 (UNREADABLE) and NaN rows, and are listed in skipped_ as (path, reason).

    border: outer rings of the patch grid that are not scored or weighted; whiten: with
    reference weighting, measure patch distances (and the embeddings) after whitening by the
    normal patches; with unsupervised weighting, whiten the embeddings by the patches' variation
    within their own image (anoclust.patch_space; docs/RESULTS.md, sections 6 and 11).
    embed_taps ("auto", "all", "deepest") and normalize ("auto" or a clustering.NORMALIZATIONS
    entry): which taps the embedding describes the defect with and how it is normalised;
    "auto" is the deepest tap and l2 with the reference weighting, and with the unsupervised
    weighting when its scores find local defects (score_peak_ >= LOCAL_PEAK), else all taps
    unnormalised. n_components ("auto" or a whole number, 0 = off): after the normalisation keep
    that many principal axes of the embeddings and scale to unit length again; "auto" is
    4 per cluster with the reference and unsupervised weightings, 0 with uniform and max.
    With n_clusters="auto" k is chosen before the projection.
    method ("auto" or a clustering.METHODS entry): "auto" is Ward polished by k-means
    (ward_kmeans) with the reference weighting, else Ward.
    n_clusters="auto" picks k in 2..k_max with anoclust.model_selection.choose_k (k_diagnostics_).
    normal_threshold (None, "auto" or a number; reference weighting only): images whose largest
    patch score is below it get label -2 (NORMAL) and are not clustered (normals_, normal_threshold_).
    For new images: cluster_centers_ (in the clustering space; a new image goes to the nearest),
    novelty_centers_ and unknown_thresholds_ (per cluster, in the normalised space before the
    projection, where a new type's own directions survive), predict / assign, and save / load
    (anoclust.model_io).
    """

    def __init__(
        self,
        n_clusters: int | str = "auto",
        weighting: str = "auto",
        tau: float = 0.5,
        standardize: bool = True,
        position_norm: bool = False,
        border: int = 3,
        whiten: bool = True,
        n_sampled: int = 32,
        method: str = "auto",
        normalize: str = "auto",
        n_components: int | str = "auto",
        embed_taps: str = "auto",
        backbone: str = "mobilenet_v2",
        weights: str | None = None,
        image_size: int = DEFAULT_IMAGE_SIZE,
        max_bank: int = 100_000,
        cache_dir: str | None = None,
        random_state: int | None = 0,
        k_max: int = 20,
        normal_threshold: float | str | None = None,
    ):
        self.n_clusters = n_clusters
        self.k_max = k_max
        self.normal_threshold = normal_threshold
        self.weighting = weighting
        self.tau = tau
        self.standardize = standardize
        self.position_norm = position_norm
        self.border = border
        self.whiten = whiten
        self.n_sampled = n_sampled
        self.method = method
        self.normalize = normalize
        self.n_components = n_components
        self.embed_taps = embed_taps
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

    def _bags(self, X: PathsOrBags, what: str, check: bool = False) -> tuple[np.ndarray, np.ndarray, list]:
        """(bags of the readable items, their indices in X, skipped (path, reason)).

        check=True (new images for a fitted model): refuse other backbone weights than fit's.
        """
        if isinstance(X, np.ndarray) and X.ndim == 3:
            return X, np.arange(len(X)), []
        if isinstance(X, np.ndarray) or isinstance(X, (str, os.PathLike)):
            raise AnoclustError(f"{what} must be a list of image paths or an (N, M, D) array of patch bags")
        extractor = self._extractor()
        ex = extractor.extract(list(X), desc=what)
        taps = [t.name for t in extractor.model.feature_info]
        if check:
            fitted = (getattr(self, "weights_sha256_", None), getattr(self, "taps_", None))
            if fitted[0] is not None and (ex.weights_sha256, taps) != fitted:
                raise AnoclustError(
                    f"the backbone weights/taps now in use ({(ex.weights_sha256 or 'random')[:12]}, {taps}) differ "
                    f"from the model's ({fitted[0][:12]}, {fitted[1]}): use the weights the model was fitted with"
                )
        else:
            self.weights_sha256_, self.taps_ = ex.weights_sha256, taps
        return ex.bags, ex.ok, ex.skipped

    def _validate(self, n_images: int) -> None:
        if self.method not in ("auto",) + METHODS:
            raise AnoclustError(
                f"unknown clustering method {self.method!r}: choose one of auto, {', '.join(METHODS)}")
        if self.normalize not in ("auto",) + NORMALIZATIONS:
            raise AnoclustError(
                f"unknown normalisation {self.normalize!r}: choose one of auto, {', '.join(NORMALIZATIONS)}")
        if not (self.n_components == "auto" or (isinstance(self.n_components, (int, np.integer))
                                                 and not isinstance(self.n_components, bool) and self.n_components >= 0)):
            raise AnoclustError(f"n_components must be 'auto' or a whole number (0 = off), got {self.n_components!r}")
        if self.embed_taps not in EMBED_TAPS:
            raise AnoclustError(f"unknown embed_taps {self.embed_taps!r}: choose one of {', '.join(EMBED_TAPS)}")
        if self.n_clusters == "auto":
            if not (isinstance(self.k_max, (int, np.integer)) and self.k_max >= 2):
                raise AnoclustError(f"k_max must be a whole number of at least 2, got {self.k_max!r}")
        elif not (isinstance(self.n_clusters, (int, np.integer)) and self.n_clusters >= 1):
            raise AnoclustError(f"n_clusters must be a positive whole number or 'auto', got {self.n_clusters!r}")
        if n_images < max(2, 0 if self.n_clusters == "auto" else self.n_clusters):
            raise AnoclustError(
                f"{n_images} readable image(s) cannot form {self.n_clusters} clusters: "
                "add images or lower the number of clusters (--k)"
            )
        if not self.tau > 0:
            raise AnoclustError(f"tau must be positive, got {self.tau}")
        if self.n_sampled < 1:
            raise AnoclustError(f"n_sampled must be at least 1, got {self.n_sampled}")
        if not (isinstance(self.border, (int, np.integer)) and self.border >= 0):
            raise AnoclustError(f"border must be a whole number of patch rings (0 or more), got {self.border!r}")

    def fit(
        self, X: PathsOrBags, y=None, normal: PathsOrBags | None = None, scores: np.ndarray | None = None
    ) -> "AnomalyClustering":
        """scores: precomputed patch scores (n_readable, M, rows in X's order) of the resolved
        weighting, computed on the canonically ordered bags (see distributed.py and
        ordering.py); they replace the scoring step."""
        self.weights_sha256_ = self.taps_ = None  # known only when fit extracts the bags itself
        bags, ok, skipped = self._bags(X, "images")
        self._validate(len(bags))
        # Rows in content order: the result must not depend on the order X lists the images.
        order = canonical_order(bags)
        bags, ok = take_rows(bags, order), ok[order]
        if scores is not None:
            scores = scores[order]
        normal_bags = None
        if normal is not None and len(normal) > 0:
            normal_bags, _, normal_skipped = self._bags(normal, "normal images")
            skipped = skipped + normal_skipped
            if len(normal_bags) == 0:
                normal_bags = None
            else:
                normal_bags = take_rows(normal_bags, canonical_order(normal_bags))
        if normal_bags is not None and normal_bags.shape[1:] != bags.shape[1:]:
            raise AnoclustError("normal images' patch bags differ in shape from the images': use the same settings")
        self.weighting_ = resolve_weighting(self.weighting, normal_bags is not None)
        self.method_ = resolve_method(self.method, self.weighting_)

        def space_of(normals: np.ndarray | None) -> PatchSpace:
            return patch_space(
                bags.shape[1], self.weighting_, normals, self.border, self.whiten, self.max_bank, self.random_state
            )

        space = space_of(normal_bags)
        self.normal_threshold_ = resolve_normal_threshold(
            self.normal_threshold, self.weighting_, normal_bags, self.max_bank, self.random_state, space_of
        )

        if scores is None:
            scores = patch_scores(
                bags, self.weighting_, normal_bags, self.n_sampled, self.max_bank, self.random_state, space
            )
        # (2, 0) when unused, so a saved model always holds the array.
        use = self.position_norm and scores is not None
        self.position_stats_ = position_statistics(scores) if use else np.zeros((2, 0))
        pooled = embedding_whitening(space, self.weighting_, bags, self.whiten, self.max_bank, self.random_state)
        embeddings, weights = pool_bags(
            bags, self.weighting_, scores, self.tau, self.standardize, self._position_stats(), pooled
        )
        self.score_peak_ = None if scores is None else score_peak(scores)
        self.normalize_, self.embed_from_ = resolve_embedding(
            self.normalize, self.embed_taps, self.weighting_, self.backbone, bags.shape[2], self.score_peak_
        )
        embeddings = embeddings[:, self.embed_from_ :]
        normals = np.zeros(len(bags), dtype=bool)
        if self.normal_threshold_ is not None:
            normals = np.nanmax(scores, 1) < self.normal_threshold_
            self._validate(int((~normals).sum()))
        labels = np.full(len(bags), NORMAL, dtype=np.int64)
        labels[~normals] = self._cluster(embeddings[~normals])
        self._scoring_state = scoring_state(
            bags, self.weighting_, normal_bags, self.n_sampled, self.max_bank, self.random_state, space
        )
        if pooled is not None and pooled is not space.whitening:
            self._scoring_state.update(pooled_whiten_mean=pooled.mean, pooled_whiten_matrix=pooled.matrix)

        n, m, d = len(X), bags.shape[1], embeddings.shape[1]
        self.labels_ = np.full(n, UNREADABLE, dtype=np.int64)
        self.labels_[ok] = labels
        self.normals_ = np.zeros(n, dtype=bool)
        self.normals_[ok] = normals
        self.embeddings_ = np.full((n, d), np.nan, dtype=np.float32)
        self.embeddings_[ok] = embeddings
        self.weights_ = np.full((n, m), np.nan, dtype=np.float32)
        self.weights_[ok] = weights
        self.scores_ = np.full((n, m), np.nan, dtype=np.float32)
        if scores is not None:
            self.scores_[ok] = scores
        self.skipped_ = skipped
        self.patch_shape_ = bags.shape[1:]
        return self

    def fit_predict(self, X: PathsOrBags, y=None, normal: PathsOrBags | None = None) -> np.ndarray:
        return self.fit(X, y, normal=normal).labels_

    def _position_stats(self) -> np.ndarray | None:
        return self.position_stats_ if self.position_stats_.size else None

    def _whitening(self, name: str) -> Whitening | None:
        state = self._scoring_state
        if f"{name}_mean" not in state:
            return None
        return Whitening(np.asarray(state[f"{name}_mean"]), np.asarray(state[f"{name}_matrix"]))

    def _patch_space(self) -> PatchSpace:
        """The fitted patch space: the border from the parameters, whitening from the state."""
        return PatchSpace(interior_mask(self.patch_shape_[0], self.border), self._whitening("whiten"))

    def _cluster(self, embeddings: np.ndarray) -> np.ndarray:
        """Cluster the clustering space; sets n_clusters_, centres and the unknown thresholds."""
        self.k_diagnostics_ = None
        k = self.n_clusters
        if k == "auto":
            k, self.k_diagnostics_ = choose_k(normalize_embeddings(embeddings, self.normalize_), int(self.k_max),
                                              method=self.method_, random_state=self.random_state)
        self.n_components_ = resolve_components(self.n_components, self.weighting_, int(k), embeddings.shape)
        self.embedding_space_ = EmbeddingSpace(self.normalize_, embeddings, self.n_components_)
        full = self.embedding_space_.normalized(embeddings)
        x = self.embedding_space_.project(full)
        labels = cluster_embeddings(x, int(k), self.method_, self.random_state)
        self.n_clusters_ = int(labels.max()) + 1
        self.cluster_centers_ = cluster_centres(x, labels)
        # A new defect type differs from the known ones in directions the projection onto the
        # known clusters' principal axes drops, so the unknown test measures before it.
        self.novelty_centers_ = cluster_centres(full, labels)
        self.unknown_thresholds_ = calibrate_thresholds(full, labels, self.novelty_centers_)
        return labels

    def assign(self, X: PathsOrBags) -> "Assignment":
        """Nearest cluster of new images, with distance, unknown flag and anomaly score."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "cluster_centers_")
        bags, ok, skipped = self._bags(X, "images", check=True)
        if bags.shape[1:] != tuple(self.patch_shape_):
            raise AnoclustError(
                f"patch bags of shape {bags.shape[1:]} do not fit the model's {tuple(self.patch_shape_)}: "
                "use the model's backbone and image size"
            )
        n = len(X)
        out = Assignment(
            labels=np.full(n, UNREADABLE, dtype=np.int64),
            distances=np.full(n, np.nan),
            unknown=np.zeros(n, dtype=bool),
            max_scores=np.full(n, np.nan),
            skipped=skipped,
        )
        if len(bags) == 0:
            return out
        space = self._patch_space()
        scores = new_patch_scores(bags, self.weighting_, self._scoring_state, space)
        pooled = self._whitening("pooled_whiten") or space.whitening
        embeddings, _ = pool_bags(
            bags, self.weighting_, scores, self.tau, self.standardize, self._position_stats(), pooled
        )
        full = self.embedding_space_.normalized(embeddings[:, self.embed_from_ :])
        nearest = centre_distances(self.embedding_space_.project(full), self.cluster_centers_).argmin(1)
        own = np.linalg.norm(full - self.novelty_centers_[nearest], axis=1)
        out.labels[ok] = nearest
        out.distances[ok] = own
        out.unknown[ok] = own > self.unknown_thresholds_[nearest]
        if scores is not None:
            out.max_scores[ok] = np.nanmax(scores, 1)
            if self.normal_threshold_ is not None:
                normal = out.max_scores[ok] < self.normal_threshold_
                out.labels[ok[normal]] = NORMAL
                out.unknown[ok[normal]] = False
        return out

    def predict(self, X: PathsOrBags) -> np.ndarray:
        """Nearest cluster of each new image (-1 unreadable, -2 normal); see assign for unknowns."""
        return self.assign(X).labels

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to a folder (JSON + .npz; anoclust.model_io)."""
        from .model_io import save_model

        save_model(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, backbone: str | None = None, weights: str | None = None,
        cache_dir: str | None = None,
    ) -> "AnomalyClustering":
        """Read a model folder; refuses other format versions or another backbone than `backbone`.

        weights / cache_dir: where this machine keeps the backbone weights and the feature cache.
        """
        from .model_io import load_model

        return load_model(path, backbone=backbone, weights=weights, cache_dir=cache_dir)


@dataclass
class Assignment:
    """Result of AnomalyClustering.assign, one entry per input image."""

    labels: np.ndarray  # nearest cluster; -1 unreadable, -2 normal (below the normal threshold)
    distances: np.ndarray  # to the nearest cluster's centre, before the projection (the unknown test's)
    unknown: np.ndarray  # farther than that cluster's calibrated threshold
    max_scores: np.ndarray  # largest patch score (NaN for uniform / max pooling)
    skipped: list = field(default_factory=list)


def anomaly_clustering(
    X: PathsOrBags, n_clusters: int | str = "auto", normal: PathsOrBags | None = None, **params
) -> tuple[np.ndarray, np.ndarray]:
    """Function form of AnomalyClustering: returns (labels, embeddings)."""
    est = AnomalyClustering(n_clusters=n_clusters, **params).fit(X, normal=normal)
    return est.labels_, est.embeddings_
