"""Self-referenced scoring without normals: the set's low-score patches as a cross-fitted bank.

An exploration (docs/RESULTS.md, section 8), not part of the tool; the five study sets of
studyset.py in /tmp/exp/studywork, features from the cache in /tmp/anoclust-cache. Prints
full-set NMI and the mean NMI over 10 random 90% subsets.

    PYTHONPATH=src python benchmarks/explore/selfref.py 50 0.1,0   # quantile, whitening shrinkages (0: none)
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
from studyset import embed, study_sets, subset_nmis

from anoclust.clustering import cluster_embeddings
from anoclust.estimator import patch_scores, patch_space, pool_bags
from anoclust.metrics import clustering_scores
from anoclust.patch_space import PatchSpace, Whitening
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import reference_scores

sets = study_sets(Path("/tmp/exp/studywork"))
cfg = ClusterSettings()
QS = [float(q) for q in sys.argv[1].split(",")]
SH = [float(x) for x in sys.argv[2].split(",")]
tot = {}
for ds in sets:
    e = embed(ds, cfg, "/tmp/anoclust-cache")
    k = len(set(e.truth))
    truth = np.array(e.truth)
    n = len(truth)
    res = {}
    for seed in [0, 1, 2]:
        sp = patch_space(e.bags.shape[1], "unsupervised", None, cfg.border, cfg.whiten, cfg.max_bank, seed)
        s = patch_scores(e.bags, "unsupervised", None, cfg.n_sampled, cfg.max_bank, seed, sp)
        base = pool_bags(e.bags, "unsupervised", s, cfg.tau, True, None, None)[0]
        embs = {"unsup": base}
        fold = np.random.default_rng(seed).permutation(n) % 2
        for q in QS:
            thr = np.nanpercentile(s, q)
            low = np.isfinite(s) & (s <= thr)
            rng = np.random.default_rng(seed)
            for whiten in SH:
                allP = e.bags[low].astype(np.float32)
                if len(allP) > 60000:
                    allP = allP[rng.choice(len(allP), 60000, replace=False)]
                wh = Whitening.fit(allP, shrinkage=whiten) if whiten else None
                space = PatchSpace(sp.keep, wh)
                S2 = np.full(s.shape, np.nan, np.float32)
                for f in (0, 1):
                    src = fold == f
                    P = e.bags[src][low[src]].astype(np.float32)
                    if len(P) > 60000:
                        P = P[rng.choice(len(P), 60000, replace=False)]
                    S2[~src] = reference_scores(e.bags[~src], P, space=space)
                emb = pool_bags(e.bags, "unsupervised", S2, cfg.tau, True, None, wh)[0]
                embs[f"self q{q} shrink{whiten}"] = emb
        for name, x in embs.items():
            r = [clustering_scores(truth, cluster_embeddings(x, k, "ward", seed))["nmi"]]
            r += subset_nmis(truth, x, k, seed=seed)
            res.setdefault(name, []).append(r)
    for name, v in res.items():
        v = np.array(v)
        tot[name] = tot.get(name, 0) + v[:, 1:].mean()
        print(ds.name, name, f"full {v[:,0].mean():.3f}±{v[:,0].std():.3f} subsets {v[:,1:].mean():.3f}", flush=True)
print("sum of subset means", {k: round(v, 3) for k, v in tot.items()})
