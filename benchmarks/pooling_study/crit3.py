import sys, dataclasses, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/tmp/x"); sys.path.insert(0, "/work/main/benchmarks")
import studyset
from joint import nmis
from crit2 import desc
from anoclust import fit
from anoclust.settings import Params
from anoclust.choose_k import choose_k, _ward_tree, _cut
from sklearn.metrics import silhouette_score

CANDS = [((0.5,), "peak"), ((np.inf,), "all"), ((np.inf,), "deep"), ((np.inf,), "peak"), ((0.5, np.inf), "peak")]
sets = [d for d in studyset.study_sets() if sys.argv[1] == "all" or d.name in sys.argv[1].split(",")]
for ds in sets:
    data = studyset.embed(ds)
    for w in studyset.weightings_of(data):
        params = Params(weighting=w)
        s = studyset.scored(data, params)
        k = len(set(s.truth))
        for taus, taps in CANDS:
            X = desc(s, params, taus, taps)
            v = float(np.mean(nmis(s, X, params, subsets=2)))
            p = dataclasses.replace(params, n_clusters=k)
            cl = fit.cluster(X, s.weighting, "none", p)
            Z = cl.space(X)
            silk = silhouette_score(Z, cl.labels)
            tree = _ward_tree(X)
            sils = [silhouette_score(X, _cut(tree, j)) for j in range(2, 11)]
            kk, _ = choose_k(X, 20, method="ward", random_state=0)
            print(f"{ds.name:9s} {w[:5]} {str(taus):12s} {taps:4s} nmi {v:.3f} silk_proj {silk:.3f} silmean {np.mean(sils):.3f} knee {kk} sil@knee {sils[kk-2] if kk>=2 else float('nan'):.3f}", flush=True)
    studyset.forget()
