"""Without normals: score each image against the images of *other* clusters (section 13).

The unsupervised score of a patch is its mean distance to the nearest patch of K other images.
When some of those images show the same defect type, the defect's patches find close matches
there and look less anomalous, more so for the common types. After a first clustering, each
image is scored again against the sampled images outside its own cluster only: the background,
common to all clusters, stays normal, the defect does not. Then pool, whiten and cluster as
the default; "x2" repeats the step once with the new clusters.

Each image is compared with 64 sampled others (the default draws 32), so that about 50 remain
once its own cluster is left out; "all 64" is the plain mean over those 64, to tell the effect
of the larger sample from that of leaving the own cluster out. Subsets are re-scored with
their own images only.

An exploration, not part of the tool; the five study sets of studyset.py, seeds 0-2.

    PYTHONPATH=src python benchmarks/explore/cross_cluster.py
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import embedding_whitening, pool_bags
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import sample_others

CFG = ClusterSettings()
SAMPLED = 64


def nearest_per_image(bags: np.ndarray, space, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(others (N, SAMPLED), distances (N, SAMPLED, M)): for each image the sampled others and
    each kept patch's distance to its nearest patch in each of them (NaN where left out)."""
    n, m_all, d = bags.shape
    cols = np.arange(m_all) if space.keep is None else np.flatnonzero(space.keep)
    kept = np.asarray(space.kept(bags), np.float32)
    if space.whitening is not None:  # the unsupervised default has none; kept for completeness
        kept = space.whitening(kept.reshape(-1, d)).reshape(n, len(cols), d)
    kept = torch.from_numpy(np.ascontiguousarray(kept, np.float32))  # (N, m, d)
    sq = kept.square().sum(2)
    others = np.stack([sample_others(n, i, SAMPLED, seed) for i in range(n)])
    out = np.full((n, others.shape[1], m_all), np.nan, np.float32)
    for i in range(n):
        for start in range(0, others.shape[1], 8):
            js = torch.from_numpy(others[i, start : start + 8])
            prod = torch.einsum("md,jnd->jmn", kept[i], kept[js])
            d2 = sq[i][None, :, None] + sq[js][:, None, :] - 2 * prod
            out[i, start : start + len(js)][:, cols] = d2.amin(2).clamp_min(0).sqrt().numpy()
    return others, out


def rescored(dist: np.ndarray, others: np.ndarray, rows: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """(len(rows), M) scores of `rows`, each against its sampled others among `rows`, leaving
    out those with its own label (labels aligned with rows; None keeps all)."""
    where = np.full(len(others), -1)
    where[rows] = np.arange(len(rows))
    out = []
    for r, i in enumerate(rows):
        slot = where[others[i]] >= 0
        if labels is not None:
            other_cluster = slot.copy()
            other_cluster[slot] = labels[where[others[i][slot]]] != labels[r]
            if other_cluster.sum() >= 4:  # too few left: keep the own cluster too
                slot = other_cluster
        out.append(dist[i, slot].mean(0))
    return np.array(out)


def variants(e, space, scores, seed):
    whitening = embedding_whitening(space, "unsupervised", e.bags, CFG.whiten, CFG.max_bank, seed)
    k = len(set(e.truth))
    pool = lambda b, s: pool_bags(b, "unsupervised", s, CFG.tau, CFG.standardize, None, whitening)[0]
    default = pool(e.bags, scores)
    others, dist = nearest_per_image(e.bags, space, seed)

    def cross(rounds: int):
        def labels(rows: np.ndarray) -> np.ndarray:
            lab = cluster_embeddings(default[rows], k, "ward", seed)
            for _ in range(rounds):
                x = pool(e.bags[rows], rescored(dist, others, rows, lab))
                lab = cluster_embeddings(x, k, "ward", seed)
            return lab
        return labels

    def all_sampled(rows: np.ndarray) -> np.ndarray:
        return cluster_embeddings(pool(e.bags[rows], rescored(dist, others, rows, None)), k, "ward", seed)

    return {"default": default, "all 64": all_sampled, "other clusters": cross(1), "other clusters x2": cross(2)}


if __name__ == "__main__":
    compare_embeddings("unsupervised", variants)
