import sys, dataclasses, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/main/benchmarks")
import studyset
from anoclust import fit
from anoclust.settings import Params
from anoclust.metrics import clustering_scores
for ds in studyset.study_sets():
    if ds.name not in sys.argv[1].split(","): continue
    data = studyset.embed(ds)
    for w in studyset.weightings_of(data):
        params = Params(weighting=w)
        s, descs = studyset._descriptions(data, params)
        p = dataclasses.replace(params, n_clusters=len(set(s.truth)))
        rows = [np.arange(len(s.truth))] + studyset.subset_rows(len(s.truth), 10)
        for r in rows:
            d, f, sil = fit.cluster_best(descs, s.weighting, p, r)
            nm = {dd.pooling: clustering_scores(s.truth[r], fit.cluster_best([dd], s.weighting, p, r)[1].labels)["nmi"] for dd in descs}
            print(ds.name, w[:5], d.pooling, {k: round(v, 3) for k, v in sil.items()}, {k: round(v, 3) for k, v in nm.items()})
    studyset.forget()
