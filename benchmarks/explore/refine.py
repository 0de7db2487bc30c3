"""Clusterings of the default embedding beyond one Ward cut: k-means started from Ward's
clusters (`ward_kmeans`, the reference weighting's default since docs/RESULTS.md section 15);
spherical k-means started from Ward's clusters (centres scaled to unit length, assignment by
cosine: the k-means of unit vectors); a few rounds of re-projection onto the clusters'
discriminant directions (shrunk LDA) and re-clustering; a consensus of Ward on 50 random 80%
subsets (co-association matrix, average linkage); and spectral clustering on a 20-neighbour
graph.

An exploration; the five study sets of studyset.py.

    PYTHONPATH=src python benchmarks/explore/refine.py reference|unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings, l2

from anoclust.clustering import cluster_embeddings, kmeans_refined
from anoclust.estimator import embedding_whitening, pool_bags, resolve_embedding
from anoclust.pipeline import ClusterSettings

CFG = ClusterSettings()


def default_embedding(e, space, scores, seed, weighting):
    w = embedding_whitening(space, weighting, e.bags, CFG.whiten, CFG.max_bank, seed)
    emb = pool_bags(e.bags, weighting, scores, CFG.tau, CFG.standardize, None, w)[0]
    # the embedding of the time: section 16's switch for the unsupervised weighting came later
    how, start = resolve_embedding("auto", "auto", weighting, CFG.backbone, emb.shape[1])
    return l2(emb[:, start:]) if how == "l2" else emb[:, start:]


def lda_rounds(x, labels, k, rounds):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    for _ in range(rounds):
        if len(set(labels)) < 2:
            break
        z = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, labels).transform(x)
        labels = cluster_embeddings(z, k, "ward", 0)
    return labels


def spherical_from(x, labels, iterations=50):
    for _ in range(iterations):
        centres = l2(np.stack([x[labels == c].mean(0) for c in np.unique(labels)]))
        moved = (x @ centres.T).argmax(1)
        if (moved == labels).all():
            break
        labels = moved
    return labels


def spectral(x, k, seed, neighbours=20):
    from sklearn.cluster import SpectralClustering

    return SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=neighbours, assign_labels="cluster_qr",
                              random_state=seed).fit_predict(x)


def consensus(x, k, seed, runs=50, share=0.8):
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    n = len(x)
    rng = np.random.default_rng(seed)
    together, seen = np.zeros((n, n)), np.zeros((n, n))
    for _ in range(runs):
        rows = np.sort(rng.choice(n, int(share * n), replace=False))
        lab = cluster_embeddings(x[rows], k, "ward", seed)
        same = (lab[:, None] == lab[None, :]).astype(float)
        together[np.ix_(rows, rows)] += same
        seen[np.ix_(rows, rows)] += 1
    d = 1.0 - together / np.maximum(seen, 1)
    np.fill_diagonal(d, 0.0)
    return fcluster(linkage(squareform(d, checks=False), "average"), k, "maxclust") - 1


def variants(e, space, scores, seed):
    weighting = sys.argv[1]
    x = default_embedding(e, space, scores, seed, weighting)
    k = len(set(e.truth))
    ward = lambda r: cluster_embeddings(x[r], k, "ward", seed)
    return {
        "Ward": x,
        "k-means from Ward": lambda r: kmeans_refined(x[r], ward(r)),
        "spherical k-means from Ward": lambda r: spherical_from(x[r], ward(r)),
        "LDA, 1 round": lambda r: lda_rounds(x[r], ward(r), k, 1),
        "LDA, 3 rounds": lambda r: lda_rounds(x[r], ward(r), k, 3),
        "consensus": lambda r: consensus(x[r], k, seed),
        "spectral, 20 neighbours": lambda r: spectral(x[r], k, seed),
    }


if __name__ == "__main__":
    compare_embeddings(sys.argv[1], variants)
