import sys, dataclasses, numpy as np
sys.path.insert(0, "/work/main/benchmarks")
import studyset
from anoclust.settings import Params
from anoclust.weighting.pooling import standardised_rows
for ds in studyset.study_sets():
    data = studyset.embed(ds)
    for w in studyset.weightings_of(data):
        s = studyset.scored(data, Params(weighting=w))
        z = standardised_rows(s.scores)
        pk = np.nanmax(z, 1)
        q = np.percentile(pk, [10, 25, 50, 75, 90])
        # per-class median peak
        cls = {c: float(np.median(pk[s.truth == c])) for c in sorted(set(s.truth))}
        print(ds.name, w, len(pk), "peak q10..90", np.round(q, 2), "by class", {k: round(v, 2) for k, v in cls.items()}, flush=True)
    studyset.forget()
