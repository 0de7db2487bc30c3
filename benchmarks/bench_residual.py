"""The residual pooling on every study set with normal images: its cost and when it is chosen.

    python benchmarks/bench_residual.py [--subsets 10]

Per set (the reference weighting, default settings, the set's aspect as `--aspect auto` reads
it): the time of the residual pooling's search (`residual_average` with 32 and with the default
128 patches) against the time of the reference scores of the same images, and over the full set
and --subsets random 90% subsets with k given, the residual description's silhouette over the
weighted one's and how often `--pooling auto` (fit.cluster_best) chose it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import studyset
from anoclust import fit
from anoclust.settings import Params
from anoclust.weighting.residual import RESIDUAL_PATCHES, residual_average


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subsets", type=int, default=10)
    args = ap.parse_args()
    for dataset in studyset.study_sets():
        data = studyset.embed(dataset, studyset.resolved(Params(), dataset))
        if data.normal_bags is None:
            continue
        params = studyset.resolved(Params(weighting="reference"), dataset)
        s, descs = studyset._descriptions(data, params)
        state, weights = s.weighting.state, descs[0].weights
        times = {t: seconds(lambda: residual_average(s.bags, weights, state.bank, state.whitening, n_patches=t))
                 for t in (32, RESIDUAL_PATCHES)}
        scoring = seconds(lambda: s.weighting.scores(s.bags))
        k = dataclasses.replace(params, n_clusters=len(set(s.truth)))
        ratios, chosen = [], 0
        for rows in [np.arange(len(s.truth))] + studyset.subset_rows(len(s.truth), args.subsets):
            desc, _, silhouettes = fit.cluster_best(descs, s.weighting, k, rows)
            ratios.append(silhouettes["residual"] / silhouettes["weighted"])
            chosen += desc.pooling == "residual"
        print(f"{dataset.name}: {len(s.bags)} images, bank {len(state.bank)} rows; search "
              + ", ".join(f"{t} patches {v:.2f} s" for t, v in times.items()) + f", scores {scoring:.2f} s; "
              f"silhouette ratio {min(ratios):.2f}-{max(ratios):.2f}, residual chosen {chosen} of {len(ratios)}",
              flush=True)
        studyset.forget()


if __name__ == "__main__":
    main()
