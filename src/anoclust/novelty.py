"""Telling new images of an unknown defect type apart from the known clusters.

A new image goes to the nearest cluster in the clustering space. The unknown test measures in
the normalised space before the clustering space's projection (space.EmbeddingSpace.normalized):
the projection keeps the known clusters' principal axes and would drop what sets a new type
apart. Calibration: a
cluster's distance threshold is the 99th percentile of its members' leave-one-out distances to
its centre (clusters with fewer than MIN_MEMBERS members use the 99th
percentile over all clustered images); farther images are `unknown`, a possible new defect type.
Leave-one-out: a member's distance to the mean of the *other* members, n/(n-1) times its distance
to the full mean, because a new image does not pull the centre towards itself as a member does.
"""

from __future__ import annotations

import numpy as np

UNKNOWN_PERCENTILE = 99.0
MIN_MEMBERS = 5


def centre_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distances (N, k) from each row to each centre."""
    d2 = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None]
    return np.sqrt(np.maximum(d2, 0))


def calibrate_thresholds(x: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Per-cluster distance beyond which an image is `unknown` (see module docstring)."""
    sizes = np.bincount(labels, minlength=len(centres))[labels]
    own = centre_distances(x, centres)[np.arange(len(x)), labels] * sizes / np.maximum(sizes - 1, 1)
    overall = np.percentile(own, UNKNOWN_PERCENTILE)
    out = np.empty(len(centres))
    for c in range(len(centres)):
        members = own[labels == c]
        out[c] = np.percentile(members, UNKNOWN_PERCENTILE) if len(members) >= MIN_MEMBERS else overall
    return out
