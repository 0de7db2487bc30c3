"""Every default against its alternatives, one setting changed at a time, on every study set.

    python benchmarks/ablations.py [--sets mtd,neu,...] [--seeds 0] [--subsets 10] > ablations.md

For each study set (studyset.study_sets: the real sets found in ../shared/data and the synthetic
ones) and each weighting it is studied with (unsupervised always, reference where it has normal
images), the images are clustered with k = the number of classes by the tool's own stages
(studyset.nmis) with the default settings and with each variant below. A cell is the mean NMI
over the full set and 10 random 90% subsets (the same subsets for every row); the last column
sums the cells of a row, the number the defaults were chosen on (docs/DESIGN.md). Two markdown
tables on stdout, one per weighting.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

import studyset
from anoclust.settings import Params

# name -> the settings it changes; a callable gets k (for settings that scale with it)
VARIANTS: dict[str, dict] = {
    "default": {},
    "paper's method": dict(tau=1.0, standardize=False, border=0, whiten=False, embed_taps="all",
                           normalize="none", n_components=0, method="ward", pooling="weighted",
                           aspect="squash"),
    "uniform weighting (average pooling)": dict(weighting="uniform"),
    "pooling weighted (no choice)": dict(pooling="weighted"),
    "pooling average (no choice)": dict(pooling="average"),
    "pooling residual (no choice)": dict(pooling="residual"),
    "max pooling": dict(weighting="max"),
    "tau 0.25": dict(tau=0.25),
    "tau 1": dict(tau=1.0),
    "scores not standardised": dict(standardize=False),
    "border 0": dict(border=0),
    "border 2": dict(border=2),
    "border 4": dict(border=4),
    "no whitening": dict(whiten=False),
    "K = 16 sampled images": dict(n_sampled=16),
    "K = 64 sampled images": dict(n_sampled=64),
    "every tap, auto normalisation": dict(embed_taps="all"),
    "deepest tap, auto normalisation": dict(embed_taps="deepest"),
    "normalisation none": dict(normalize="none"),
    "normalisation l2": dict(normalize="l2"),
    "no projection": dict(n_components=0),
    "2 axes per cluster": dict(n_components=lambda k: 2 * k),
    "8 axes per cluster": dict(n_components=lambda k: 8 * k),
    "method ward": dict(method="ward"),
    "method ward_kmeans": dict(method="ward_kmeans"),
    "input 224 px": dict(image_size=224),
    "input 320 px": dict(image_size=320),
    "backbone efficientnet_lite0": dict(backbone="efficientnet_lite0"),
    "aspect keep": dict(aspect="keep"),
    "aspect squash": dict(aspect="squash"),
}
# Settings that only one weighting reads: the rows are left out of the other's table.
ONLY = {"K = 16 sampled images": "unsupervised", "K = 64 sampled images": "unsupervised",
        "pooling residual (no choice)": "reference"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", help="comma-separated study set names (default: all found)")
    ap.add_argument("--variants", help="'|'-separated substrings of the variants to run (default: all)")
    ap.add_argument("--seeds", default="0", help="seeds (the unsupervised score's sampling); cells average them")
    ap.add_argument("--subsets", type=int, default=10)
    ap.add_argument("--cache", default=studyset.CACHE)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sets = [d for d in studyset.study_sets() if not args.sets or d.name in args.sets.split(",")]
    variants = {n: v for n, v in VARIANTS.items()
                if n == "default" or not args.variants or any(p in n for p in args.variants.split("|"))}
    names = [d.name for d in sets]
    cells: dict = {}  # (weighting, variant, set) -> mean NMI
    for ds in sets:
        embedded: dict = {}
        for vname, change in variants.items():
            for seed in seeds:
                base = Params(random_state=seed)
                # what extraction depends on; the border only where aspect "keep" lays out its ring there
                embedding = {s: change.get(s, getattr(base, s)) for s in ("backbone", "image_size", "aspect")}
                embedding["aspect"] = studyset.resolved(Params(aspect=embedding["aspect"]), ds).aspect
                if embedding["aspect"] == "keep":
                    embedding["border"] = change.get("border", base.border)
                key = tuple(sorted(embedding.items()))
                if key not in embedded:
                    embedded[key] = studyset.embed(ds, dataclasses.replace(base, **embedding), args.cache)
                data = embedded[key]
                k = len(set(data.truth))
                for w in studyset.weightings_of(data):
                    if ONLY.get(vname, w) != w:
                        continue
                    values = {s: (v(k) if callable(v) else v) for s, v in change.items()}
                    params = dataclasses.replace(base, **{"weighting": w, **values})
                    nmi = float(np.mean(studyset.nmis(data, params, args.subsets)))
                    cells.setdefault((w, vname, ds.name), []).append(nmi)
            print(f"{ds.name}: {vname} done", file=sys.stderr, flush=True)
        studyset.forget()
    for w in ("unsupervised", "reference"):
        cols = [n for n in names if any(key[0] == w and key[2] == n for key in cells)]
        print(f"\n### {w} weighting: mean NMI over the full set and {args.subsets} random 90% subsets "
              f"(seeds {args.seeds})\n")
        print("| variant | " + " | ".join(cols) + " | sum |")
        print("|---|" + "---|" * (len(cols) + 1))
        for vname in variants:
            row = [cells.get((w, vname, n)) for n in cols]
            if all(r is None for r in row):
                continue
            vals = [float(np.mean(r)) if r else float("nan") for r in row]
            print(f"| {vname} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {sum(vals):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
