import sys, dataclasses, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/main/benchmarks")
import studyset
from anoclust.settings import Params
from anoclust.weighting import base, pooling
from anoclust.weighting.pooling import standardised_rows

orig = pooling.softmax_weights

def make(rule, tau):
    def sw(scores, tau_ignored=None, standardize=True, **kw):
        s = np.asarray(scores, dtype=np.float64)
        scored = ~np.isnan(s)
        c = s - np.nanmean(s, 1, keepdims=True)
        sd = np.nanstd(s, 1)
        if rule == "default":
            return orig(scores, tau, True)
        if rule == "setstd":
            z = c / np.median(sd)
        elif rule == "setmad":
            mad = np.nanmedian(np.abs(s - np.nanmedian(s, 1, keepdims=True)), 1) * 1.4826
            z = c / np.median(mad)
        elif rule == "imgmad":
            mad = np.nanmedian(np.abs(s - np.nanmedian(s, 1, keepdims=True)), 1, keepdims=True) * 1.4826
            z = c / mad
        elif rule == "setmean":  # scale relative to the set's typical score level
            z = c / np.nanmedian(s) * 10
        zz = np.where(scored, z / tau, -np.inf)
        zz -= zz.max(1, keepdims=True)
        w = np.exp(zz)
        return (w / w.sum(1, keepdims=True)).astype(np.float32)
    return sw

RULES = [("default", 0.5)] + [(r, t) for r in sys.argv[2].split(",") for t in map(float, sys.argv[3].split(","))]
sets = [d for d in studyset.study_sets() if d.name in sys.argv[1].split(",")] if sys.argv[1] != "all" else studyset.study_sets()
res = {}
for ds in sets:
    data = studyset.embed(ds)
    for w in studyset.weightings_of(data):
        for rule, tau in RULES:
            base.softmax_weights = make(rule, tau)
            v = float(np.mean(studyset.nmis(data, Params(weighting=w))))
            res[(w, rule, tau, ds.name)] = v
            print(ds.name, w, rule, tau, round(v, 3), flush=True)
    studyset.forget()
names = [d.name for d in sets]
for w in ("unsupervised", "reference"):
    print("\n", w, names)
    for rule, tau in RULES:
        vals = [res.get((w, rule, tau, n)) for n in names]
        vals2 = [v for v in vals if v is not None]
        print(f"{rule:10s} {tau:5.2f}", " ".join("  -  " if v is None else f"{v:.3f}" for v in vals), f"sum {sum(vals2):.3f}")
