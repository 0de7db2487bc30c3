"""Scores of a clustering against known labels: NMI, ARI and Hungarian-matched F1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def contingency(y_true: Sequence, y_pred: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of (cluster, class) pairs: returns (table[n_clusters, n_classes], clusters, classes)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-D and of the same length")
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    return table, clusters, classes


def hungarian_match(table: np.ndarray) -> dict[int, int]:
    """Cluster row -> class column, one-to-one, maximising the matched count."""
    rows, cols = linear_sum_assignment(table, maximize=True)
    return dict(zip(rows.tolist(), cols.tolist()))


def matched_f1(y_true: Sequence, y_pred: Sequence) -> float:
    """Micro-F1 after one-to-one matching of clusters to classes.

    Every image gets exactly one prediction, so micro precision = recall = F1 = the share of
    images whose cluster is matched to their class (clustering accuracy). Images in unmatched
    clusters (more clusters than classes) count as wrong.
    """
    table, _, _ = contingency(y_true, y_pred)
    if table.sum() == 0:
        return 0.0
    match = hungarian_match(table)
    return float(sum(table[r, c] for r, c in match.items()) / table.sum())


def clustering_scores(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """NMI (arithmetic normalisation, as scikit-learn's default), ARI and matched F1."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    return {
        "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
        "f1": matched_f1(y_true, y_pred),
    }
