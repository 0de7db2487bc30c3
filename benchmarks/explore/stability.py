"""Label-free stability of the clustering with and without l2: could it pick the normalisation per set?

Mean pairwise ARI between Ward clusterings of 10 random 80% subsets, next to the NMI against the
labels. An exploration (docs/RESULTS.md, section 8), not part of the tool.

    PYTHONPATH=src python benchmarks/explore/stability.py reference
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from sklearn.metrics import adjusted_rand_score
from studyset import embed, study_sets

from anoclust.clustering import cluster_embeddings, normalize_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings

sets = study_sets(Path("/tmp/exp/studywork"))
cfg = ClusterSettings()
w = sys.argv[1]
for ds in sets:
    e = embed(ds, cfg, "/tmp/anoclust-cache")
    k = len(set(e.truth))
    truth = np.array(e.truth)
    n = len(truth)
    sp = patch_space(e.bags.shape[1], w, e.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, 0)
    s = patch_scores(e.bags, w, e.normal_bags, cfg.n_sampled, cfg.max_bank, 0, sp)
    emb = pool_bags(e.bags, w, s, cfg.tau, True, None, sp.whitening)[0]
    for norm in ["none", "l2"]:
        x = normalize_embeddings(emb, norm)
        full = clustering_scores(truth, cluster_embeddings(x, k, "ward", 0))["nmi"]
        rng = np.random.default_rng(1)
        labs = []
        for _ in range(10):
            rows = np.sort(rng.choice(n, int(0.8 * n), replace=False))
            lab = np.full(n, -1)
            lab[rows] = cluster_embeddings(x[rows], k, "ward", 0)
            labs.append(lab)
        aris = []
        for a in range(10):
            for b in range(a + 1, 10):
                both = (labs[a] >= 0) & (labs[b] >= 0)
                aris.append(adjusted_rand_score(labs[a][both], labs[b][both]))
        print(ds.name, w, norm, f"NMI {full:.3f}  stability ARI {np.mean(aris):.3f}", flush=True)
