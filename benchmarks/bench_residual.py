"""The residual pooling on every study set with normal images: its cost and when it is chosen.

    python benchmarks/bench_residual.py [--subsets 10] [--grid]

Per set (the reference weighting, default settings, the set's aspect as `--aspect auto` reads
it): the normal images' patch match ratio (which decides whether the residual pooling leads
`--pooling auto`) and the time it takes, the time of the residual pooling's search
(`residual_average` with 32 and with the default 128 patches) against the time of the reference
scores of the same images, the median share of an
image's weight its 32 and 128 highest-weighted patches hold, and over the full set
and --subsets random 90% subsets with k given, the residual description's silhouette over the
weighted one's and how often `--pooling auto` (fit.cluster_best) chose it. --grid: instead, the
residual pooling forced with 32 / 64 / 128 patches and 1 / 4 / 16 neighbours, the mean NMI of
each set (full set and subsets, k given) and their sum, the measure its defaults were chosen on.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from functools import partial

import numpy as np

import studyset
from anoclust import fit
from anoclust.settings import Params
from anoclust.weighting import reference
from anoclust.weighting.residual import RESIDUAL_PATCHES, match_ratio, residual_average

GRID = [(32, 1), (32, 4), (32, 16), (64, 4), (128, 1), (128, 4), (128, 16)]  # (patches, neighbours)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subsets", type=int, default=10)
    ap.add_argument("--grid", action="store_true")
    args = ap.parse_args()
    if args.grid:
        grid(args.subsets)
        return
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
        matching = seconds(lambda: match_ratio(data.normal_bags, s.weighting.space, params.max_bank))
        held = np.median(np.cumsum(-np.sort(-weights, 1), 1)[:, [31, RESIDUAL_PATCHES - 1]], 0)
        k = dataclasses.replace(params, n_clusters=len(set(s.truth)))
        ratios, chosen = [], 0
        for rows in [np.arange(len(s.truth))] + studyset.subset_rows(len(s.truth), args.subsets):
            desc, _, silhouettes = fit.cluster_best(descs, s.weighting, k, rows)
            ratios.append(silhouettes["residual"] / silhouettes["weighted"])
            chosen += desc.pooling == "residual"
        print(f"{dataset.name}: {len(s.bags)} images, bank {len(state.bank)} rows; match ratio "
              f"{s.weighting.normal_match:.3f} ({matching:.2f} s), {descs[0].pooling} leads; search "
              + ", ".join(f"{t} patches {v:.2f} s" for t, v in times.items()) + f", scores {scoring:.2f} s; "
              f"weight held by the top 32 / {RESIDUAL_PATCHES} patches {held[0]:.2f} / {held[1]:.2f}; "
              f"silhouette ratio {min(ratios):.2f}-{max(ratios):.2f}, residual chosen {chosen} of {len(ratios)}",
              flush=True)
        studyset.forget()


def grid(subsets: int) -> None:
    sets = studyset.study_sets()
    for patches, neighbours in GRID:
        # the reference weighting pools through the name it imported
        reference.residual_average = partial(residual_average, n_patches=patches, n_neighbours=neighbours)
        cells = []
        for dataset in sets:
            data = studyset.embed(dataset, studyset.resolved(Params(), dataset))
            if data.normal_bags is not None:
                nmis = studyset.nmis(data, Params(weighting="reference", pooling="residual"), subsets)
                cells.append(f"{dataset.name} {np.mean(nmis):.3f}")
            studyset.forget()
        total = sum(float(c.split()[1]) for c in cells)
        print(f"{patches} patches, {neighbours} neighbours: " + ", ".join(cells) + f"; sum {total:.3f}", flush=True)
    reference.residual_average = residual_average


if __name__ == "__main__":
    main()
