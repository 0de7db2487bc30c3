"""AnomalyClustering: the scikit-learn face of anoclust, a thin wrapper over anoclust.fit."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from .errors import AnoclustError
from .fit import Assignment, Model, Resolved, assign_bags, fit_bags, fit_labelled
from .labels import UNREADABLE
from .settings import DEFAULTS, METHOD_SETTINGS, Params, validate

PathsOrBags = Sequence[str | os.PathLike] | np.ndarray

# The estimator's parameters: every method setting, and where extracted features are cached.
_PARAMS = {**DEFAULTS, "cache_dir": None}


class AnomalyClustering(ClusterMixin, BaseEstimator):
    """Group defect images into clusters of defect types (Sohn et al., WACV 2023).

    `fit(X, normal=...)` takes image paths, or precomputed patch bags of shape (N, M, D);
    `normal` (paths or bags) are defect-free reference images. Every parameter is checked
    before any image is read; their meaning is in anoclust.settings (and below).

    Learned: labels_ (N,; -1 unreadable, -2 set apart as normal), normals_, embeddings_ (N, D';
    before normalisation), weights_ and scores_ (N, M; NaN scores without a scored weighting),
    grids_ ((N, 2) each image's patch grid, row-major: rows * cols = M, or with aspect "keep" the
    interior's, the bag's first rows * cols patches; None for precomputed bags),
    skipped_ ((path, reason) of unreadable images), model_ (anoclust.fit.Model: what placing
    new images needs), and what each "auto" setting resolved to: weighting_, method_,
    embed_taps_, embed_from_, normalize_, n_components_, n_clusters_, score_peak_,
    normal_threshold_, k_diagnostics_, pooling_, pooling_silhouettes_, normal_match_;
    cluster_names_ (the labels' names when fitted with y, else
    None). New images: predict / assign; save / load_model.
    """

    def __init__(self, **params):
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise TypeError(f"AnomalyClustering got unknown parameter(s) {', '.join(unknown)}")
        for name, default in _PARAMS.items():
            setattr(self, name, params.get(name, default))

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=d) for name, d in _PARAMS.items()]
    )

    def _params(self, has_normals: bool | None = None) -> Params:
        values = {s.name: getattr(self, s.name) for s in METHOD_SETTINGS}
        validate(values, has_normals)
        return Params(**values)

    def _bags(self, X: PathsOrBags, params: Params, what: str) -> tuple[np.ndarray, np.ndarray, list, tuple]:
        """(bags of the readable items, their indices in X, skipped (path, reason), the backbone's
        (weights SHA-256, taps, patch grids) or None for precomputed bags)."""
        if isinstance(X, np.ndarray) and X.ndim == 3:
            return X, np.arange(len(X)), [], None
        if isinstance(X, (np.ndarray, str, os.PathLike)):
            raise AnoclustError(f"{what} must be a list of image paths or an (N, M, D) array of patch bags")
        from .features.extract import EmbeddingConfig, PatchExtractor

        extractor = PatchExtractor(EmbeddingConfig.of(params), cache_dir=self.cache_dir)
        ex = extractor.extract(list(X), desc=what)
        return ex.bags, ex.ok, ex.skipped, (ex.weights_sha256, [t.name for t in extractor.model.feature_info], ex.grids)

    def fit(self, X: PathsOrBags, y=None, normal: PathsOrBags | None = None) -> "AnomalyClustering":
        """Cluster X; with y (one label per item of X), the clusters are those labels instead
        (anoclust.fit.fit_labelled: items labelled "normal" join the normal references)."""
        has_normals = normal is not None and len(normal) > 0
        params = self._params(has_normals)
        if not (isinstance(X, np.ndarray) and X.ndim == 3):  # images: --aspect auto from their shapes
            from .features.aspect import resolve_aspect

            params = resolve_aspect(params, list(X))
        if y is not None and len(y) != len(X):
            raise AnoclustError(f"y has {len(y)} labels for {len(X)} images: give one label per image")
        bags, ok, skipped, identity = self._bags(X, params, "images")
        normal_bags = None
        if has_normals:
            normal_bags, _, normal_skipped, _ = self._bags(normal, params, "normal images")
            skipped = skipped + normal_skipped
        if y is None:
            fitted = fit_bags(bags, normal_bags, params)
        else:
            fitted = fit_labelled(bags, [y[i] for i in ok], normal_bags, params)
        if identity is not None:
            fitted.model.weights_sha256, fitted.model.taps = identity[:2]
        self._set_model(fitted.model)
        n = len(X)
        self.grids_ = None if identity is None else _spread(identity[2], ok, n, 0)
        self.labels_ = _spread(fitted.labels, ok, n, UNREADABLE)
        self.normals_ = _spread(fitted.normals, ok, n, False)
        self.embeddings_ = _spread(fitted.embeddings, ok, n, np.nan)
        self.weights_ = _spread(fitted.weights, ok, n, np.nan)
        scores = fitted.scores if fitted.scores is not None else np.full(fitted.weights.shape, np.nan, np.float32)
        self.scores_ = _spread(scores, ok, n, np.nan)
        self.skipped_ = skipped
        return self

    def _set_model(self, model: Model) -> None:
        self.model_ = model
        for f in dataclasses.fields(Resolved):
            setattr(self, f"{f.name}_", getattr(model.resolved, f.name))
        self.cluster_centers_ = model.cluster_centers
        self.cluster_names_ = model.cluster_names

    def fit_predict(self, X: PathsOrBags, y=None, normal: PathsOrBags | None = None) -> np.ndarray:
        return self.fit(X, y, normal=normal).labels_

    def assign(self, X: PathsOrBags) -> "NewImages":
        """Nearest cluster of new images, with distance, unknown flag and anomaly score."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        model = self.model_
        bags, ok, skipped, identity = self._bags(X, model.params, "images")
        if identity is not None and model.weights_sha256 is not None and identity[:2] != (model.weights_sha256, model.taps):
            used = identity[0] or "random"
            raise AnoclustError(
                f"the backbone weights/taps now in use ({used[:12]}, {identity[1]}) differ from the model's "
                f"({model.weights_sha256[:12]}, {model.taps}): use the weights the model was fitted with"
            )
        n = len(X)
        placed = assign_bags(model, bags) if len(bags) else None
        if placed is None:
            placed = Assignment(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), np.zeros(0))
        return NewImages(
            labels=_spread(placed.labels, ok, n, UNREADABLE),
            distances=_spread(placed.distances, ok, n, np.nan),
            unknown=_spread(placed.unknown, ok, n, False),
            max_scores=_spread(placed.max_scores, ok, n, np.nan),
            skipped=skipped,
        )

    def predict(self, X: PathsOrBags) -> np.ndarray:
        """Nearest cluster of each new image (-1 unreadable, -2 normal); see assign for unknowns."""
        return self.assign(X).labels

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to a folder (model.json + model.npz; anoclust.model)."""
        from .model import save_model

        save_model(self.model_, path)


@dataclasses.dataclass
class NewImages(Assignment):
    """AnomalyClustering.assign's result: one entry per input item (label -1: unreadable)."""

    skipped: list = dataclasses.field(default_factory=list)


def load_model(path: str | os.PathLike, backbone: str | None = None, weights: str | None = None,
               cache_dir: str | None = None) -> AnomalyClustering:
    """A fitted AnomalyClustering from a model folder; refuses another format version, or another
    backbone than `backbone`. weights / cache_dir: where this machine keeps the backbone weights
    and the feature cache."""
    from .model import read_model

    model = read_model(path)
    if backbone is not None and backbone != model.params.backbone:
        raise AnoclustError(f"model {path} was fitted with backbone {model.params.backbone}, not {backbone}: "
                            f"use --backbone {model.params.backbone}")
    if weights is not None:
        model.params = dataclasses.replace(model.params, weights=weights)
    est = AnomalyClustering(**dataclasses.asdict(model.params), cache_dir=cache_dir)
    est._set_model(model)
    return est


def _spread(values: np.ndarray, rows: np.ndarray, n: int, fill) -> np.ndarray:
    """values of the readable rows placed at `rows` of an n-row array filled with `fill`."""
    out = np.full((n,) + values.shape[1:], fill, dtype=values.dtype)
    out[rows] = values
    return out


def anomaly_clustering(
    X: PathsOrBags, n_clusters: int | str = "auto", normal: PathsOrBags | None = None, **params
) -> tuple[np.ndarray, np.ndarray]:
    """Function form of AnomalyClustering: returns (labels, embeddings)."""
    est = AnomalyClustering(n_clusters=n_clusters, **params).fit(X, normal=normal)
    return est.labels_, est.embeddings_
