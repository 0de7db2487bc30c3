"""A model fitted from labels (`anoclust fit --from-labels`): how often `assign` gives the right name.

    python benchmarks/from_labels.py [--seeds 0,1,2]

For every study set (studyset.study_sets; with its normal references where it has them), half of
each label's images (a seeded draw) are fitted with their labels, the default settings otherwise;
the other half is assigned. Reported per set: the share of held-out images whose nearest cluster
has their label's name ("right name"), the share whose answer is exactly that name (not flagged
`unknown` or `normal`), and the share flagged `unknown`. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import studyset
from anoclust.fit import assign_bags, fit_labelled
from anoclust.labels import NORMAL
from anoclust.settings import Params


def split(truth: np.ndarray, seed: int) -> np.ndarray:
    """A boolean mask of the fitted half, half of each label (at least one image each side)."""
    rng = np.random.default_rng(seed)
    fitted = np.zeros(len(truth), dtype=bool)
    for label in np.unique(truth):
        rows = rng.permutation(np.flatnonzero(truth == label))
        fitted[rows[: max(1, len(rows) // 2)]] = True
    return fitted


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cache", default=studyset.CACHE)
    ap.add_argument("--sets", help="comma-separated study set names (default: all)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"half of each label fitted, the other half assigned; mean over seeds {args.seeds}\n")
    print("| set | images | labels | normals | right name | answered with the name | unknown | normal |")
    print("|---|---|---|---|---|---|---|---|")
    for ds in studyset.study_sets():
        if args.sets and ds.name not in args.sets.split(","):
            continue
        data = studyset.embed(ds, Params(), args.cache)
        truth = np.asarray(data.truth)
        stats = []
        for seed in seeds:
            half = split(truth, seed)
            fitted = fit_labelled(data.bags[half], list(truth[half]), data.normal_bags, Params(random_state=seed))
            model = fitted.model
            placed = assign_bags(model, data.bags[~half])
            names = np.array(model.cluster_names, dtype=object)
            nearest = np.where(placed.labels == NORMAL, None, names[np.maximum(placed.labels, 0)])
            right = nearest == truth[~half]
            stats.append((right.mean(), (right & ~placed.unknown).mean(), placed.unknown.mean(),
                          (placed.labels == NORMAL).mean()))
        s = np.mean(stats, axis=0)
        print(f"| {ds.name} | {len(truth)} | {len(set(truth))} | {0 if data.normal_bags is None else len(data.normal_bags)}"
              f" | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} | {s[3]:.3f} |", flush=True)
        studyset.forget()
    return 0


if __name__ == "__main__":
    sys.exit(main())
