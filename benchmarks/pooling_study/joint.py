import sys, dataclasses, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/main/benchmarks")
import studyset
from anoclust import fit
from anoclust.settings import Params
from anoclust.metrics import clustering_scores
from anoclust.weighting.pooling import softmax_weights, weighted_average, score_peak
from anoclust.features.backbones import deepest_tap_channels

def block(s, params, tau, scale_by):
    w = softmax_weights(s.scores, tau) if np.isfinite(tau) else np.where(np.isnan(s.scores), 0, 1.0 / (~np.isnan(s.scores)).sum(1, keepdims=True)).astype(np.float32)
    e = weighted_average(s.bags, w)
    m = s.weighting.embedding_map
    return m(e) if m is not None else e

def describe(s, params, taus, local_rule="peak"):
    peak = score_peak(s.scores)
    local = s.weighting.describes_locally(peak)
    dim = s.bags.shape[2]
    last = deepest_tap_channels(params.backbone, dim)
    out = []
    for tau in taus:
        e = block(s, params, tau, None).astype(np.float64)
        if local:
            e = e[:, dim - last:]
            e = e / np.linalg.norm(e, axis=1, keepdims=True)
        else:
            e = e - e.mean(0)
            e = e / np.sqrt((e ** 2).sum(1).mean())
        out.append(e)
    return np.concatenate(out, 1)

def nmis(s, X, params, subsets=10):
    p = dataclasses.replace(params, n_clusters=len(set(s.truth)))
    rows = [np.arange(len(s.truth))] + studyset.subset_rows(len(s.truth), subsets)
    return [clustering_scores(s.truth[r], fit.cluster(X[r] if False else X, s.weighting, "none", p).labels[r] if False else fit.cluster(X[r], s.weighting, "none", p).labels)["nmi"] for r in rows]

if __name__ == '__main__':
    CANDS = [tuple(float(t) for t in c.split("+")) for c in sys.argv[2].split(",")]
    sets = [d for d in studyset.study_sets() if sys.argv[1] == "all" or d.name in sys.argv[1].split(",")]
    res = {}
    for ds in sets:
        data = studyset.embed(ds)
        for w in studyset.weightings_of(data):
            params = Params(weighting=w)
            s = studyset.scored(data, params)
            for c in CANDS:
                X = describe(s, params, c)
                v = float(np.mean(nmis(s, X, params)))
                res[(w, c, ds.name)] = v
                print(ds.name, w, c, round(v, 3), flush=True)
        studyset.forget()
    names = [d.name for d in sets]
    for w in ("unsupervised", "reference"):
        print("\n", w, names)
        for c in CANDS:
            vals = [res.get((w, c, n)) for n in names]
            vals2 = [v for v in vals if v is not None]
            print(f"{'+'.join(map(str,c)):14s}", " ".join("  -  " if v is None else f"{v:.3f}" for v in vals), f"sum {sum(vals2):.3f}")
