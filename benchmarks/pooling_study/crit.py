import sys, dataclasses, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/tmp/x"); sys.path.insert(0, "/work/main/benchmarks")
import studyset
from joint import describe, nmis
from anoclust import fit
from anoclust.settings import Params
from sklearn.metrics import silhouette_score, calinski_harabasz_score, davies_bouldin_score

CANDS = [tuple(float(t) for t in c.split("+")) for c in sys.argv[2].split(",")]
sets = [d for d in studyset.study_sets() if sys.argv[1] == "all" or d.name in sys.argv[1].split(",")]
for ds in sets:
    data = studyset.embed(ds)
    for w in studyset.weightings_of(data):
        params = Params(weighting=w)
        s = studyset.scored(data, params)
        k = len(set(s.truth))
        for c in CANDS:
            X = describe(s, params, c)
            v = float(np.mean(nmis(s, X, params, subsets=int(sys.argv[3]))))
            p = dataclasses.replace(params, n_clusters=k)
            cl = fit.cluster(X, s.weighting, "none", p)
            Z = cl.space(X)
            lab = cl.labels
            tot = ((Z - Z.mean(0)) ** 2).sum()
            within = sum(((Z[lab == j] - Z[lab == j].mean(0)) ** 2).sum() for j in set(lab))
            print(f"{ds.name:9s} {w[:5]} {'+'.join(map(str,c)):10s} nmi {v:.3f} sil {silhouette_score(Z, lab):.3f} R2 {1-within/tot:.3f} CH {calinski_harabasz_score(Z, lab):8.1f} DB {davies_bouldin_score(Z, lab):.3f}", flush=True)
    studyset.forget()
