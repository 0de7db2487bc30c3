"""`anoclust cluster INPUT --out DIR`: group a set of images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..inputs import LAYOUTS
from ..job import cluster_input
from .options import add_method_options, add_run_options, params_from_args, print_summary, run_options_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="group images into clusters of defect types",
                       description="Group images into clusters of defect types.")
    add_input_options(p, out_help="output folder")
    p.add_argument("--save-model", metavar="DIR", help="also save the fitted model here (for anoclust assign)")
    p.add_argument("--no-report", dest="report", action="store_false", help="do not write report.html")
    add_method_options(p, "user")
    add_run_options(p)
    add_method_options(p, "research")
    p.set_defaults(func=run)


def add_input_options(p: argparse.ArgumentParser, out_help: str) -> None:
    """INPUT, --out and the input-reading options shared by cluster and fit."""
    p.add_argument("input", metavar="INPUT", help="MVTec category folder, labelled folder, flat folder or CSV list")
    p.add_argument("--out", required=True, metavar="DIR", help=out_help)
    p.add_argument("--layout", choices=LAYOUTS, default="auto", help="input layout (default: detected)")
    p.add_argument("--no-good", dest="include_good", action="store_false",
                   help="MVTec layout: leave test/good out of the clustering")
    p.add_argument("--force", action="store_true", help="allow --out inside an input folder")


def run(args: argparse.Namespace) -> int:
    options = run_options_from_args(args)
    result = cluster_input(args.input, args.out, params_from_args(args), options, save_model=args.save_model)
    print_summary(result, args.out)
    if options.report:
        print(f"report in {Path(args.out) / 'report.html'}")
    return 0
