"""A fitted Model (anoclust.fit) as a folder: model.json + model.npz, no pickle.

model.json: format name and version, anoclust version, every method setting (`settings`), what
each "auto" became (`resolved`), the backbone's identity (taps, weights SHA-256), the patch
shape, the calibration (per-cluster unknown thresholds, normal threshold) and the names of the
weighting's state arrays. model.npz (read with allow_pickle=False): cluster centres in the
clustering space and before its projection (the unknown test's), the clustered images'
embeddings (they define the clustering space) and the weighting's typed state, one array per
field under `weighting/`.

A folder is refused with one AnoclustError line when its format or format version differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from . import __version__
from .errors import AnoclustError
from .fit import Model, Resolved
from .outputs import all_or_nothing, write_json, write_npz
from .settings import DEFAULTS, Params, validate
from .space import EmbeddingSpace
from .weighting import WEIGHTING_TYPES
from .weighting.base import state_arrays, state_from_arrays

FORMAT = "anoclust-model"
# 2: border ring and whitening; 3: the embedding's taps and normalisation resolved at fit;
# 4: the clustering space's principal axes and the unknown test's centres;
# 5: settings and resolved values as written by anoclust.settings / fit.Resolved, the
#    weighting's state by field, no position normalisation.
FORMAT_VERSION = 5
_CENTRES = ("cluster_centers", "novelty_centers", "unknown_thresholds", "fit_embeddings")
_STATE = "weighting/"


@all_or_nothing
def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Write a fitted model to the folder `path` (created; files written atomically)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise AnoclustError(f"--save-model {out} exists and is not a folder: choose another path")
    out.mkdir(parents=True, exist_ok=True)
    state = state_arrays(model.weighting.state) if model.weighting.state is not None else {}
    arrays = {name: getattr(model, name) for name in _CENTRES}
    arrays.update({_STATE + name: value for name, value in state.items()})
    write_npz(out / "model.npz", **arrays)
    write_json(out / "model.json", {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "anoclust_version": __version__,
        "settings": dataclasses.asdict(model.params),
        "resolved": dataclasses.asdict(model.resolved),
        "taps": model.taps,
        "weights_sha256": model.weights_sha256,
        "patch_shape": list(model.patch_shape),
        "calibration": {
            "unknown": "per cluster: 99th percentile of members' leave-one-out distances to their centre "
            "(global 99th percentile for clusters under 5 members)",
            "unknown_thresholds": [float(t) for t in model.unknown_thresholds],
            "normal_threshold": model.resolved.normal_threshold,
        },
        "weighting_state": sorted(state),
    })
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
        uses = " and --position-norm, which anoclust no longer has," if meta.get("params", {}).get("position_norm") else ""
        raise AnoclustError(
            f"model {path} has format version {meta.get('format_version')} (anoclust {meta.get('anoclust_version')}"
            f"{uses}); this anoclust {__version__} reads version {FORMAT_VERSION}: refit it with "
            f"`anoclust fit INPUT --out {path}`"
        )
    return meta


def read_model(path: str | os.PathLike) -> Model:
    """Read a model folder (see module docstring)."""
    path = Path(path)
    meta = _read_json(path)
    try:
        with np.load(path / "model.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        settings = {**DEFAULTS, **meta["settings"]}
        validate(settings)
        params = Params(**settings)
        resolved = Resolved(**meta["resolved"])
        weighting_type = WEIGHTING_TYPES[resolved.weighting]
        state = None
        if weighting_type.state_type is not None:
            state = state_from_arrays(weighting_type.state_type, {
                k[len(_STATE):]: v for k, v in arrays.items() if k.startswith(_STATE)})
        patch_shape = tuple(int(v) for v in meta["patch_shape"])
        centres = {name: arrays[name] for name in _CENTRES}
    except (OSError, ValueError, KeyError, TypeError, AnoclustError) as exc:
        raise AnoclustError(f"cannot read the model in {path} (damaged or incomplete model folder): {exc}") from None
    return Model(
        params=params,
        resolved=resolved,
        weighting=weighting_type.restore(params, state, patch_shape[0]),
        space=EmbeddingSpace(resolved.normalize, centres["fit_embeddings"], resolved.n_components),
        patch_shape=patch_shape,
        weights_sha256=meta["weights_sha256"],
        taps=meta["taps"],
        **centres,
    )
