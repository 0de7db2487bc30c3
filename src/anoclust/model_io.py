"""A fitted AnomalyClustering as a folder: model.json + model.npz, no pickle.

model.json: format name and version, anoclust version, the estimator's parameters, backbone,
taps, image size, weights SHA-256, weighting, k, patch shape, and the calibration (per-cluster
unknown thresholds, normal threshold). model.npz (read with allow_pickle=False): cluster centres
in the clustering space and before its projection (the unknown test's), the clustered images'
embeddings (they define the clustering space: clustering.EmbeddingSpace), and the scoring state
of anoclust.prediction (normal patch bank and its whitening, or the K sampled fitted bags).

A folder is refused with one AnoclustError line when its format or format version differs, or
when a caller asks for another backbone than the one it was fitted with. Weights are checked
when new images are embedded (AnomalyClustering.assign).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import __version__
from .errors import AnoclustError
from .outputs import all_or_nothing, write_json, write_npz

FORMAT = "anoclust-model"
# 2: border ring and whitening (patch_space.py); version-1 models were fitted without them.
# 3: the embedding's taps and normalisation resolved at fit (embed_from, normalize).
# 4: the clustering space's principal axes (n_components) and the unknown test's centres.
FORMAT_VERSION = 4
_FITTED_ARRAYS = ("cluster_centers_", "novelty_centers_", "unknown_thresholds_", "position_stats_")


@all_or_nothing
def save_model(est, path: str | os.PathLike) -> Path:
    """Write a fitted estimator to the folder `path` (created; files written atomically)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "cluster_centers_")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise AnoclustError(f"--save-model {out} exists and is not a folder: choose another path")
    out.mkdir(parents=True, exist_ok=True)
    clustered = (est.labels_ >= 0)
    arrays = {name.rstrip("_"): getattr(est, name) for name in _FITTED_ARRAYS}
    arrays.update(est._scoring_state)
    arrays["fit_embeddings"] = est.embeddings_[clustered]
    write_npz(out / "model.npz", **arrays)
    params = est.get_params()
    write_json(
        out / "model.json",
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "anoclust_version": __version__,
            "params": params,
            "backbone": est.backbone,
            "taps": est.taps_,
            "image_size": est.image_size,
            "weights_sha256": est.weights_sha256_,
            "weighting": est.weighting_,
            "method": est.method_,
            "normalize": est.normalize_,
            "n_components": est.n_components_,
            "embed_from": est.embed_from_,
            "n_clusters": est.n_clusters_,
            "patch_shape": list(est.patch_shape_),
            "calibration": {
                "unknown": "per cluster: 99th percentile of members' leave-one-out distances to their centre "
                "(global 99th percentile for clusters under 5 members)",
                "unknown_thresholds": [float(t) for t in est.unknown_thresholds_],
                "normal_threshold": est.normal_threshold_,
            },
            "scoring_state": sorted(est._scoring_state),
        },
    )
    return out


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnoclustError(f"{path} is not an anoclust model folder (no model.json)") from None
    except (OSError, ValueError) as exc:
        raise AnoclustError(f"cannot read {path / 'model.json'}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AnoclustError(f"{path} is not an anoclust model folder (model.json has no format {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise AnoclustError(
            f"model {path} has format version {meta.get('format_version')} (anoclust "
            f"{meta.get('anoclust_version')}); this anoclust {__version__} reads version {FORMAT_VERSION}: refit it"
        )
    return meta


def load_model(path: str | os.PathLike, backbone: str | None = None, weights: str | None = None,
               cache_dir: str | None = None):
    """Read a model folder into a fitted AnomalyClustering (see module docstring)."""
    from .estimator import AnomalyClustering
    from .clustering import EmbeddingSpace

    path = Path(path)
    meta = _read_json(path)
    if backbone is not None and backbone != meta["backbone"]:
        raise AnoclustError(
            f"model {path} was fitted with backbone {meta['backbone']}, not {backbone}: use --backbone {meta['backbone']}"
        )
    try:
        with np.load(path / "model.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        state = {k: arrays[k] for k in meta["scoring_state"]}
        fitted = {name: arrays[name.rstrip("_")] for name in _FITTED_ARRAYS}
        fit_embeddings = arrays["fit_embeddings"]
    except (OSError, ValueError, KeyError) as exc:
        raise AnoclustError(f"cannot read {path / 'model.npz'} (damaged or incomplete model folder): {exc}") from None
    params = dict(meta["params"])
    if weights is not None:
        params["weights"] = weights
    params["cache_dir"] = cache_dir
    unknown = sorted(set(params) - set(AnomalyClustering().get_params()))
    if unknown:
        raise AnoclustError(
            f"model {path} has settings this anoclust {__version__} does not know ({', '.join(unknown)}): refit it"
        )
    est = AnomalyClustering(**params)
    est.weighting_ = meta["weighting"]
    est.method_ = meta.get("method", params.get("method"))  # models saved before it was recorded
    est.normalize_, est.embed_from_ = meta["normalize"], int(meta["embed_from"])
    est.n_components_ = int(meta["n_components"])
    est.n_clusters_ = int(meta["n_clusters"])
    est.patch_shape_ = tuple(meta["patch_shape"])
    est.weights_sha256_ = meta["weights_sha256"]
    est.taps_ = meta["taps"]
    est.normal_threshold_ = meta["calibration"]["normal_threshold"]
    for name, value in fitted.items():
        setattr(est, name, value)
    est._scoring_state = state
    est.embedding_space_ = EmbeddingSpace(est.normalize_, fit_embeddings, est.n_components_)
    return est
