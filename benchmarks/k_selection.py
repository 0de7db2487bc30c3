"""The criteria that choose the number of clusters (`--k auto`), on every study set.

    python benchmarks/k_selection.py [--criteria eigengap silhouette ...] [--types 2 3 ... 8]

For each study set (studyset.real_sets, with normals where the set has them) and synthetic sets
with 2..8 local defect types (20 images each, 20 normal references), the images are embedded
and weighted with the default settings (anoclust.fit), then every criterion of
anoclust.choose_k chooses k in the normalised space, as the tool does, and the table gives the
chosen k against the true k and the NMI of the tool's clustering at the chosen k against the NMI
at the true k. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import studyset
from anoclust import fit
from anoclust.choose_k import DEFAULT_CRITERION, K_CRITERIA, choose_k
from anoclust.evaluation import folder_dataset
from anoclust.metrics import clustering_scores
from anoclust.settings import Params
from anoclust.space import EmbeddingSpace
from anoclust.synthetic import DEFECT_TYPES, make_labelled_folder


def study(name: str, data, params: Params, criteria, k_max: int) -> None:
    s, d = studyset.describe(data, params)
    method = s.weighting.auto_method if params.method == "auto" else params.method
    x = EmbeddingSpace(d.normalize, d.embeddings)(d.embeddings)

    def nmi_at(k: int) -> float:
        p = dataclasses.replace(params, n_clusters=k)
        return clustering_scores(s.truth, fit.cluster(d.embeddings, s.weighting, d.normalize, p).labels)["nmi"]

    k_true = len(set(s.truth))
    nmi_true = nmi_at(k_true)
    for c in criteria:
        k, _ = choose_k(x, k_max, c, method, params.random_state)
        nmi = nmi_at(k)
        print(f"| {name} | {s.weighting.name} | {c} | {k_true} | {k} | {nmi_true:.3f} | {nmi:.3f} | "
              f"{nmi / nmi_true:.2f} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k-max", type=int, default=20)
    ap.add_argument("--criteria", nargs="+", default=list(K_CRITERIA), choices=K_CRITERIA)
    ap.add_argument("--types", type=int, nargs="*", default=list(range(2, 9)), help="synthetic type counts")
    ap.add_argument("--data", type=Path, default=studyset.DATA, help="the shared real sets (default %(default)s)")
    ap.add_argument("--cache", default=studyset.CACHE)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    params = Params(random_state=args.seed)
    print(f"default criterion: {DEFAULT_CRITERION}; k in 2..{args.k_max}; default settings otherwise\n")
    print("| set | weighting | criterion | true k | chosen k | NMI at true k | NMI at chosen k | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for ds in studyset.real_sets(args.data):
        data = studyset.embed(ds, params, args.cache)
        for w in studyset.weightings_of(data):
            study(ds.name, data, dataclasses.replace(params, weighting=w), args.criteria, args.k_max)
    with tempfile.TemporaryDirectory() as tmp:
        for n_types in args.types:
            root = Path(tmp) / f"types{n_types}"
            make_labelled_folder(root / "defects", classes=DEFECT_TYPES[:n_types], normal_root=root / "normal",
                                 seed=args.seed)
            data = studyset.embed(folder_dataset(root / "defects", root / "normal"), params, args.cache)
            study(f"synthetic {n_types} types", data, params, args.criteria, args.k_max)
    return 0


if __name__ == "__main__":
    sys.exit(main())
