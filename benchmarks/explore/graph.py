"""Graph-based clustering of the default embeddings: spectral clustering on k-nearest-neighbour
graphs and Ward restricted to a k-nearest-neighbour connectivity graph.

On MTD the default reference embedding puts an image's nearest neighbour in its own class 91%
of the time (5-fold 1-NN accuracy), yet Ward builds one large mixed cluster; a method that
follows the neighbourhood graph may keep that local structure. An exploration
(docs/RESULTS.md), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/graph.py [reference|unsupervised] [set,set,...]
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import compare_embeddings

from anoclust.clustering import normalize_embeddings
from anoclust.estimator import pool_bags
from anoclust.pipeline import ClusterSettings

# sklearn warns of disconnected k-NN graphs on the small synthetic sets; it handles them
warnings.filterwarnings("ignore")


def spectral(x, k, nn, seed, assign="cluster_qr"):
    from sklearn.cluster import SpectralClustering

    return SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=min(nn, len(x) - 1),
                              assign_labels=assign, random_state=seed).fit_predict(x)


def ward_graph(x, k, nn):
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.neighbors import kneighbors_graph

    g = kneighbors_graph(x, min(nn, len(x) - 1), include_self=False)
    return AgglomerativeClustering(k, linkage="ward", connectivity=g).fit_predict(x)


def variants(e, space, scores, seed):
    k = len(set(e.truth))
    base = pool_bags(e.bags, sys.argv[1], scores, ClusterSettings().tau, True, None, space.whitening)[0]
    out = {}
    for norm in ("none", "l2"):
        x = normalize_embeddings(base, norm)
        out[f"{norm} ward"] = x
        for nn in (5, 10, 20):
            out[f"{norm} spectral{nn}"] = lambda r, x=x, nn=nn: spectral(x[r], k, nn, seed)
            out[f"{norm} wardgraph{nn}"] = lambda r, x=x, nn=nn: ward_graph(x[r], k, nn)
    return out


if __name__ == "__main__":
    compare_embeddings(sys.argv[1] if len(sys.argv) > 1 else "reference", variants,
                       sys.argv[2].split(",") if len(sys.argv) > 2 else None)
