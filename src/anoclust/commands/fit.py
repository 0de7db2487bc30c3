"""`anoclust fit INPUT --out MODEL`: cluster a set of images and save only the model.

Takes the same options as `cluster`. The output folder receives the model (model.json +
model.npz) and nothing else; `anoclust cluster ... --save-model DIR` writes the usual results and
the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..datasets import LAYOUTS
from ..outputs import check_out_dir
from ..pipeline import load_images, run_clustering
from .common import add_method_options, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="cluster images and save the model for `anoclust assign`",
                       description="Cluster images and save the fitted model (no other results).")
    p.add_argument("input", metavar="INPUT", help="MVTec category folder, labelled folder, flat folder or CSV list")
    p.add_argument("--out", required=True, metavar="MODEL", help="model folder to write")
    p.add_argument("--layout", choices=LAYOUTS, default="auto", help="input layout (default: detected)")
    p.add_argument("--no-good", dest="include_good", action="store_false",
                   help="MVTec layout: leave test/good out of the clustering")
    p.add_argument("--force", action="store_true", help="allow --out inside an input folder")
    add_method_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    images = load_images(args.input, settings)
    out = Path(args.out)
    check_out_dir(out, [Path(args.input)] + ([Path(settings.normal)] if settings.normal else []), args.force)
    result = run_clustering(images, settings)
    result.estimator.save(out)
    est = result.estimator
    print(f"fitted {len(result.paths) - int(est.normals_.sum())} images into {est.n_clusters_} clusters; model in {out}")
    return 0
