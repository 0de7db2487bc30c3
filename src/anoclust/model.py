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
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import read_regular
from .errors import AnoclustError
from .fit import Model, Resolved
from .outputs import all_or_nothing, write_json, write_npz
from .settings import DEFAULTS, EMBED_TAPS, METHODS, NORMALIZATIONS, POOLINGS, WEIGHTINGS, Params, validate
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
        "cluster_names": model.cluster_names,
    })
    return out


# A model.json is a few kB; model.npz holds the normal bank (25 MB at the defaults) or K sampled
# bags, and the fitted images' embeddings.
MAX_JSON_BYTES = 1 << 22
MAX_NPZ_BYTES = 1 << 32


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(read_regular(path / "model.json", MAX_JSON_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise AnoclustError(f"{path} is not an anoclust model folder (no model.json)") from None
    except (OSError, ValueError) as exc:
        raise AnoclustError(f"cannot read {path / 'model.json'}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AnoclustError(f"{path} is not an anoclust model folder (model.json has no format {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        old = meta.get("params")
        uses = (" and --position-norm, which anoclust no longer has,"
                if isinstance(old, dict) and old.get("position_norm") else "")
        raise AnoclustError(
            f"model {path} has format version {meta.get('format_version')} (anoclust {meta.get('anoclust_version')}"
            f"{uses}); this anoclust {__version__} reads version {FORMAT_VERSION}: refit it with "
            f"`anoclust fit INPUT --out {path}`"
        )
    return meta


def read_model(path: str | os.PathLike) -> Model:
    """Read and check a model folder (see module docstring); a damaged one is refused with one
    line saying what is wrong, before any of its arrays is used."""
    path = Path(path)
    meta = _read_json(path)
    try:
        blob = read_regular(path / "model.npz", MAX_NPZ_BYTES)
        loaded = np.load(io.BytesIO(blob), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # e.g. a .npy file under the .npz name
            raise ValueError("not an .npz archive")
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise AnoclustError(f"cannot read {path / 'model.npz'} (damaged or incomplete model folder): {exc}; "
                            "copy it again or refit") from None
    try:
        return _model(meta, arrays)
    except (KeyError, TypeError, ValueError, AnoclustError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise AnoclustError(f"the model in {path} is damaged ({what}): copy it again or refit it with "
                            f"`anoclust fit INPUT --out {path}`") from None


def _model(meta: dict, arrays: dict) -> Model:
    """The Model of a format-5 folder's contents; raises on anything out of place."""
    settings = meta["settings"]
    _expect(isinstance(settings, dict), "settings must be an object")
    settings = {**DEFAULTS, "aspect": "squash", **settings}  # models saved before --aspect were squashed
    validate(settings)
    _expect(settings["aspect"] in ("squash", "keep"), f"aspect must be squash or keep, got {settings['aspect']!r}")
    params = Params(**settings)
    resolved = Resolved(**_typed_resolved(meta["resolved"]))
    shape = meta["patch_shape"]
    _expect(isinstance(shape, list) and len(shape) == 2 and all(_whole(v, 1) for v in shape),
            f"patch_shape must be two positive whole numbers, got {shape!r}")
    m, d = shape
    _expect(meta["taps"] is None or (isinstance(meta["taps"], list) and all(isinstance(t, str) for t in meta["taps"])),
            "taps must be a list of names")
    _expect(meta["weights_sha256"] is None or isinstance(meta["weights_sha256"], str), "weights_sha256 must be text")
    k, e = resolved.n_clusters, d - resolved.embed_from
    names = meta["cluster_names"]
    _expect(names is None or (isinstance(names, list) and len(names) == k and all(isinstance(n, str) for n in names)),
            f"cluster_names must be {k} names or null")
    _expect(e >= 1, f"embed_from {resolved.embed_from} leaves no feature of {d}")
    centres = {name: _float_array(arrays, name) for name in _CENTRES}
    fitted = centres["fit_embeddings"]
    _expect(fitted.ndim == 2 and fitted.shape[1] == e and len(fitted) >= k,
            f"fit_embeddings has shape {fitted.shape}, expected (N >= {k}, {e})")
    space = EmbeddingSpace(resolved.normalize, fitted, resolved.n_components)
    full = space.normalized(fitted[:1])
    expected = {"cluster_centers": (k, space.project(full).shape[1]), "novelty_centers": (k, full.shape[1]),
                "unknown_thresholds": (k,)}
    for name, want in expected.items():
        _expect(centres[name].shape == want, f"{name} has shape {centres[name].shape}, expected {want}")
    weighting_type = WEIGHTING_TYPES[resolved.weighting]
    state = None
    if weighting_type.state_type is not None:
        found = {key[len(_STATE):]: _float_array(arrays, key) for key in arrays if key.startswith(_STATE)}
        sizes = {"M": m, "D": d}
        for name, letters in weighting_type.state_type.SHAPES.items():
            if name in found:
                a = found[name]
                ok = a.ndim == len(letters) and all(sizes.get(L, n) == n for L, n in zip(letters, a.shape))
                _expect(ok and a.size > 0, f"weighting state {name} has shape {a.shape}, expected {letters} "
                        f"with M = {m}, D = {d}")
        state = state_from_arrays(weighting_type.state_type, found)
    return Model(
        params=params,
        resolved=resolved,
        weighting=weighting_type.restore(params, state, m),
        space=space,
        patch_shape=(m, d),
        weights_sha256=meta["weights_sha256"],
        taps=meta["taps"],
        cluster_names=names,
        **centres,
    )


def _typed_resolved(r) -> dict:
    _expect(isinstance(r, dict), "resolved must be an object")
    if "pooling" not in r and "pooling_silhouettes" not in r:  # saved before pooling="auto": always weighted
        scored = r.get("weighting") in WEIGHTING_TYPES and WEIGHTING_TYPES[r["weighting"]].scored
        r = {**r, "pooling": "weighted" if scored else None, "pooling_silhouettes": None}
    if "normal_match" not in r:  # saved before the residual pooling could lead
        r = {**r, "normal_match": None}
    names = {f.name for f in dataclasses.fields(Resolved)}
    _expect(set(r) == names, f"resolved must have exactly the keys {', '.join(sorted(names))}")
    checks = {
        "weighting": r["weighting"] in WEIGHTINGS, "method": r["method"] in METHODS + ("labels",),
        "embed_taps": r["embed_taps"] in EMBED_TAPS, "embed_from": _whole(r["embed_from"], 0),
        "normalize": r["normalize"] in NORMALIZATIONS, "n_components": _whole(r["n_components"], 0),
        "n_clusters": _whole(r["n_clusters"], 1), "score_peak": r["score_peak"] is None or _real(r["score_peak"]),
        "normal_threshold": r["normal_threshold"] is None or _real(r["normal_threshold"]),
        "k_diagnostics": r["k_diagnostics"] is None or isinstance(r["k_diagnostics"], dict),
        "pooling": r["pooling"] is None or r["pooling"] in POOLINGS,
        "pooling_silhouettes": r["pooling_silhouettes"] is None or isinstance(r["pooling_silhouettes"], dict),
        "normal_match": r["normal_match"] is None or _real(r["normal_match"]),
    }
    bad = [name for name, ok in checks.items() if not ok]
    _expect(not bad, f"resolved {', '.join(f'{b}={r[b]!r}' for b in bad)} not allowed")
    return r


def _float_array(arrays: dict, name: str) -> np.ndarray:
    a = arrays[name]
    _expect(a.dtype.kind == "f" and np.isfinite(a).all(), f"{name} must hold finite numbers")
    return a


def _whole(v, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _real(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


def _expect(ok: bool, problem: str) -> None:
    if not ok:
        raise ValueError(problem)
