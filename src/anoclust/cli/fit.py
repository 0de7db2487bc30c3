"""`anoclust fit INPUT --out MODEL`: cluster a set of images and save only the model.

Takes the same options as `cluster`. The output folder receives the model (model.json +
model.npz) and nothing else; `anoclust cluster ... --save-model DIR` writes the usual results and
the model.
"""

from __future__ import annotations

import argparse

from ..job import cluster_input
from .cluster import add_input_options
from .options import add_method_options, add_run_options, params_from_args, run_options_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="cluster images and save the model for `anoclust assign`",
                       description="Cluster images and save the fitted model (no other results).")
    add_input_options(p, out_help="model folder to write")
    p.add_argument("--from-labels", action="store_true",
                   help="the clusters are the input's labels (e.g. the report's labels.csv), not found by "
                        "clustering; images labelled 'normal' join the normal references")
    add_method_options(p, "user")
    add_run_options(p)
    add_method_options(p, "research")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = cluster_input(args.input, args.out, params_from_args(args), run_options_from_args(args),
                           save_model=args.out, write_results=False, from_labels=args.from_labels)
    fitted = result.fit
    names = fitted.model.cluster_names
    what = f"the labels {', '.join(names)}" if names else f"{fitted.model.resolved.n_clusters} clusters"
    print(f"fitted {len(result.paths) - int(fitted.normals.sum())} images into {what}; model in {args.out}")
    return 0
