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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, study_sets, subset_rows

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.metrics import clustering_scores
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


w = sys.argv[1] if len(sys.argv) > 1 else "reference"
only = sys.argv[2].split(",") if len(sys.argv) > 2 else None
seeds = [0, 1, 2] if w == "unsupervised" else [0]
cfg = ClusterSettings()
tot = {}
for ds in study_sets(Path("/tmp/exp/studywork")):
    if only and ds.name not in only:
        continue
    e = embed(ds, cfg, "/tmp/anoclust-cache")
    k = len(set(e.truth))
    truth = np.array(e.truth)
    subsets = subset_rows(len(truth))
    res = {}
    for seed in seeds:
        sp = patch_space(e.bags.shape[1], w, e.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, seed)
        s = patch_scores(e.bags, w, e.normal_bags, cfg.n_sampled, cfg.max_bank, seed, sp)
        base = pool_bags(e.bags, w, s, cfg.tau, True, None, sp.whitening)[0]
        for norm in ("none", "l2"):
            x = normalize_embeddings(base, norm)
            methods = {f"{norm} ward": lambda r: cluster_embeddings(x[r], k, "ward")}
            for nn in (5, 10, 20):
                methods[f"{norm} spectral{nn}"] = lambda r, nn=nn: spectral(x[r], k, nn, seed)
                methods[f"{norm} wardgraph{nn}"] = lambda r, nn=nn: ward_graph(x[r], k, nn)
            for name, f in methods.items():
                full = clustering_scores(truth, f(np.arange(len(truth))))["nmi"]
                sub = [clustering_scores(truth[r], f(r))["nmi"] for r in subsets]
                res.setdefault(name, []).append([full] + sub)
    for name, v in res.items():
        v = np.array(v)
        tot[name] = tot.get(name, 0) + v[:, 1:].mean()
        print(ds.name, w, name, f"full {v[:, 0].mean():.3f} subsets {v[:, 1:].mean():.3f}±{v[:, 1:].std():.3f}",
              flush=True)
print("sum of subset means", {k: round(v, 3) for k, v in tot.items()})
