"""The criteria that choose the number of clusters (`--k auto`), on every study set.

    python benchmarks/k_selection.py [--criteria knee eigengap ...] [--types 2 3 ... 8] [--no-single]

For each study set (studyset.study_sets, with normals where the set has them; each weighting it
is studied with) and synthetic sets of 2..8 local defect types (20 images each, 20 normal
references), the images are embedded and weighted with the default settings (anoclust.fit),
then every criterion of anoclust.choose_k chooses k in the normalised space, as the tool does.
Table 1: the chosen k against the true k, and the NMI of the tool's clustering at the chosen k
against the NMI at the true k. Table 2 (single-type folders): each label's images of the real
sets (and the synthetic ones) clustered alone, as a user would run a folder holding one defect
type, through the whole method (scores included); how often each criterion says k = 1.
Markdown on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

import studyset
from anoclust import fit
from anoclust.choose_k import DEFAULT_CRITERION, K_CRITERIA, choose_k
from anoclust.evaluation import Embedded, folder_dataset
from anoclust.metrics import clustering_scores
from anoclust.settings import Params
from anoclust.space import EmbeddingSpace
from anoclust.synthetic import DEFECT_TYPES, make_labelled_folder


def chosen(data: Embedded, params: Params, criteria, k_max: int) -> tuple[studyset.Scored, fit.Description, dict]:
    s, d = studyset.describe(data, params)
    method = s.weighting.auto_method if params.method == "auto" else params.method
    x = EmbeddingSpace(d.normalize, d.embeddings)(d.embeddings)
    return s, d, {c: choose_k(x, k_max, c, method, params.random_state)[0] for c in criteria}


def study(name: str, data: Embedded, params: Params, criteria, k_max: int) -> None:
    s, d, ks = chosen(data, params, criteria, k_max)

    def nmi_at(k: int) -> float:
        p = dataclasses.replace(params, n_clusters=k)
        return clustering_scores(s.truth, fit.cluster(d.embeddings, s.weighting, d.normalize, p).labels)["nmi"]

    k_true = len(set(s.truth))
    nmi_true = nmi_at(k_true)
    for c, k in ks.items():
        nmi = nmi_at(k)
        print(f"| {name} | {s.weighting.name} | {c} | {k_true} | {k} | {nmi_true:.3f} | {nmi:.3f} | "
              f"{nmi / nmi_true:.2f} |", flush=True)


def single_types(name: str, data: Embedded, params: Params, criteria, k_max: int, counts: dict) -> None:
    truth = np.asarray(data.truth)
    for label in sorted(set(truth)):
        rows = truth == label
        if rows.sum() < 8:
            continue
        alone = Embedded(data.dataset, data.bags[rows], list(truth[rows]), data.normal_bags)
        _, _, ks = chosen(alone, params, criteria, k_max)
        for c, k in ks.items():
            counts.setdefault(c, Counter())[k == 1] += 1
        print(f"| {name} | {label} | {int(rows.sum())} | " + " | ".join(str(k) for k in ks.values()) + " |",
              flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k-max", type=int, default=20)
    ap.add_argument("--criteria", nargs="+", default=[DEFAULT_CRITERION, "eigengap"], choices=K_CRITERIA)
    ap.add_argument("--types", type=int, nargs="*", default=list(range(2, 9)), help="synthetic type counts")
    ap.add_argument("--sets", help="comma-separated study set names (default: all)")
    ap.add_argument("--no-single", action="store_true", help="skip the single-type folders")
    ap.add_argument("--cache", default=studyset.CACHE)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    params = Params(random_state=args.seed)
    sets = [d for d in studyset.study_sets() if not args.sets or d.name in args.sets.split(",")]
    print(f"default criterion: {DEFAULT_CRITERION}; k in 2..{args.k_max}; default settings otherwise\n")
    print("| set | weighting | criterion | true k | chosen k | NMI at true k | NMI at chosen k | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    embedded = {}
    for ds in sets:
        embedded[ds.name] = data = studyset.embed(ds, params, args.cache)
        for w in studyset.weightings_of(data):
            study(ds.name, data, dataclasses.replace(params, weighting=w), args.criteria, args.k_max)
    with tempfile.TemporaryDirectory() as tmp:
        for n_types in args.types:
            root = Path(tmp) / f"types{n_types}"
            make_labelled_folder(root / "defects", classes=DEFECT_TYPES[:n_types], normal_root=root / "normal",
                                 seed=args.seed)
            data = studyset.embed(folder_dataset(root / "defects", root / "normal"), params, args.cache)
            study(f"synthetic {n_types} types", data, params, args.criteria, args.k_max)
    if args.no_single:
        return 0
    print("\nSingle-type folders (default weighting: reference where the set has normals), chosen k:\n")
    print("| set | type | images | " + " | ".join(args.criteria) + " |")
    print("|---|---|---|" + "---|" * len(args.criteria))
    counts: dict = {}
    for name, data in embedded.items():
        single_types(name, data, params, args.criteria, args.k_max, counts)
    print("\n| criterion | says k = 1 |\n|---|---|")
    for c in args.criteria:
        print(f"| {c} | {counts[c][True]} of {sum(counts[c].values())} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
