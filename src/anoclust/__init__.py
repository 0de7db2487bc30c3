"""anoclust: group images of product defects into clusters of defect types.

The public API (imported on first use, so that `import anoclust` stays light):

- `AnomalyClustering`: the scikit-learn style estimator (anoclust.estimator);
- `load_model(folder)`: a fitted estimator from a model folder;
- `clustering_scores(y_true, y_pred)`: NMI, ARI and Hungarian-matched F1 (anoclust.metrics),
  `matched_f1`;
- `METHOD_SETTINGS`: every setting with its default, allowed values and help (anoclust.settings).
"""

import os

# OpenMP threads that spin while waiting between parallel regions took the cores from our own
# decoding threads: with passive waiting the extraction rate rose from 0.55 to about 0.9 of the
# bare network's (docs/PERFORMANCE.md). Read when torch loads, so it is set before any import
# of torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.2.0"

_API = {
    "AnomalyClustering": "estimator",
    "load_model": "estimator",
    "clustering_scores": "metrics",
    "matched_f1": "metrics",
    "METHOD_SETTINGS": "settings",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from importlib import import_module

        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'anoclust' has no attribute {name!r}")
