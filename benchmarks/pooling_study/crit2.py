import sys, dataclasses, numpy as np, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/tmp/x"); sys.path.insert(0, "/work/main/benchmarks")
import studyset
from joint import block, nmis
from anoclust import fit
from anoclust.settings import Params
from anoclust.choose_k import dispersion_curve
from anoclust.weighting.pooling import score_peak
from anoclust.features.backbones import deepest_tap_channels

def desc(s, params, taus, taps):
    dim = s.bags.shape[2]; last = deepest_tap_channels(params.backbone, dim)
    if taps == "peak":
        taps = "deep" if s.weighting.describes_locally(score_peak(s.scores)) else "all"
    out = []
    for tau in taus:
        e = block(s, params, tau, None).astype(np.float64)
        if taps == "deep":
            e = e[:, dim - last:]; e = e / np.linalg.norm(e, axis=1, keepdims=True)
        else:
            e = e - e.mean(0); e = e / np.sqrt((e ** 2).sum(1).mean())
        out.append(e)
    return np.concatenate(out, 1)

if __name__ == '__main__':
    CANDS = [((0.5,), "peak"), ((np.inf,), "all"), ((np.inf,), "deep"), ((0.5, np.inf), "peak")]
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
                W = dispersion_curve(X, 10)
                r2 = 1 - W[1:] / W[0]
                p = dataclasses.replace(params, n_clusters=k)
                cl = fit.cluster(X, s.weighting, "none", p)
                Z = cl.space(X)
                Wz = dispersion_curve(Z, 10); r2z = 1 - Wz[1:] / Wz[0]
                print(f"{ds.name:9s} {w[:5]} {str(taus):12s} {taps:4s} nmi {v:.3f} R2k {r2[k-2]:.3f} R2mean {r2.mean():.3f} projR2k {r2z[k-2]:.3f} projR2mean {r2z.mean():.3f}", flush=True)
        studyset.forget()
