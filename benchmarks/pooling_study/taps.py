import sys, dataclasses, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/main/benchmarks")
import studyset
from anoclust import fit
from anoclust.settings import Params
from anoclust.metrics import clustering_scores
for ds in studyset.study_sets():
    data = studyset.embed(ds)
    if data.normal_bags is None: continue
    w = "reference"
    out = {}
    for taps, norm in (("deepest", "l2"), ("all", "none"), ("all", "l2")):
        params = Params(weighting=w, embed_taps=taps, normalize=norm, pooling="weighted")
        s, descs = studyset._descriptions(data, params)
        p = dataclasses.replace(params, n_clusters=len(set(s.truth)))
        rows = [np.arange(len(s.truth))] + studyset.subset_rows(len(s.truth), 10)
        nm, sl = [], []
        for r in rows:
            f = fit.cluster_best(descs, s.weighting, p, r)[1]
            nm.append(clustering_scores(s.truth[r], f.labels)["nmi"])
            sl.append(fit._silhouette(f, descs[0].embeddings[r], 0))
        print(ds.name, taps, norm, "nmi %.3f sil %.3f (min %.3f max %.3f)" % (np.mean(nm), np.mean(sl), np.min(sl), np.max(sl)), flush=True)
    studyset.forget()
