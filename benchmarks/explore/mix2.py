"""Softmax weights mixed with uniform weights over the scored patches (share 0 / 0.1 / 0.2 / 0.3).

An exploration (docs/RESULTS.md, section 8), not part of the tool; the five study sets of
studyset.py in /tmp/exp/studywork, features from the cache in /tmp/anoclust-cache. Prints
full-set NMI and the mean NMI over 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/mix2.py unsupervised
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, study_sets, subset_nmis

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space
from anoclust.metrics import clustering_scores
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import softmax_weights, weighted_average

sets = study_sets(Path("/tmp/exp/studywork"))
cfg = ClusterSettings()
w = sys.argv[1]
for ds in sets:
    e = embed(ds, cfg, "/tmp/anoclust-cache")
    k = len(set(e.truth))
    truth = np.array(e.truth)
    res = {}
    for seed in [0, 1, 2] if w == "unsupervised" else [0]:
        sp = patch_space(e.bags.shape[1], w, e.normal_bags, cfg.border, cfg.whiten, cfg.max_bank, seed)
        s = patch_scores(e.bags, w, e.normal_bags, cfg.n_sampled, cfg.max_bank, seed, sp)
        wh = sp.whitening or (lambda x: x)
        keep = np.isfinite(s)
        uk = (keep / keep.sum(1, keepdims=True)).astype(np.float32)
        a = softmax_weights(s, cfg.tau)
        for lam in [0.0, 0.1, 0.2, 0.3]:
            emb = wh(weighted_average(e.bags, ((1 - lam) * a + lam * uk).astype(np.float32)))
            r = [clustering_scores(truth, cluster_embeddings(emb, k, "ward", seed))["nmi"]]
            r += subset_nmis(truth, emb, k, seed=seed)
            res.setdefault(lam, []).append(r)
    for lam, v in res.items():
        v = np.array(v)
        print(ds.name, w, f"mix {lam}", f"full {v[:,0].mean():.3f} subsets {v[:,1:].mean():.3f}", flush=True)
