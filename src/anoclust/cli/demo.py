"""`anoclust demo`: generate a synthetic defect set and cluster it end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..job import RunOptions, cluster_input
from ..settings import Params
from .options import print_summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="cluster a built-in synthetic defect set",
                       description="Generate a synthetic MVTec-style category and cluster it.")
    p.add_argument("--out", default="demo-out", metavar="DIR", help="output folder (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default %(default)s)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..synthetic import make_mvtec_category

    out = Path(args.out)
    data = make_mvtec_category(out / "data" / "surface", seed=args.seed)
    print(f"synthetic data in {data} (3 defect types and good images; normal references in train/good)")
    options = RunOptions(cache=str(out / "cache"), quiet=args.quiet)
    result = cluster_input(data, out / "results", Params(n_clusters=4, weighting="reference"), options)
    print_summary(result, out / "results")
    print(f"report in {out / 'results' / 'report.html'} (open it in a browser)")
    return 0
