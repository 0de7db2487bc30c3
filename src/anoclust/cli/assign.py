"""`anoclust assign MODEL INPUT --out DIR`: place new images in a saved model's clusters.

assignments.csv: path, cluster (the nearest cluster, by name for a model fitted from labels,
`unknown` when farther from it than the model's calibrated threshold, `normal` when below the
model's normal threshold), nearest_cluster, label (when the input has labels), distance to the
nearest centre, largest patch score. config.json records the model, the input and the working
folder the relative paths start from.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from .. import __version__
from ..estimator import load_model
from ..features.cache import default_cache_dir
from ..inputs import LAYOUTS, read_input
from ..labels import NORMAL, UNREADABLE, cluster_name
from ..job import protected_folders
from ..outputs import all_or_nothing, check_out_dir, write_csv, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assign", help="assign new images to the clusters of a saved model",
                       description="Assign new images to the clusters of a model saved by fit or cluster --save-model.")
    p.add_argument("model", metavar="MODEL", help="model folder")
    p.add_argument("input", metavar="INPUT", help="MVTec category folder, labelled folder, flat folder or CSV list")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--layout", choices=LAYOUTS, default="auto", help="input layout (default: detected)")
    p.add_argument("--backbone", help="refuse the model unless it was fitted with this backbone")
    p.add_argument("--weights", metavar="PATH", help="backbone weights file, when not found automatically")
    p.add_argument("--cache", metavar="DIR", default=str(default_cache_dir()), help="feature cache folder")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=None, help="do not cache features")
    p.add_argument("--force", action="store_true", help="allow --out inside an input folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars or warnings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    est = load_model(args.model, backbone=args.backbone, weights=args.weights, cache_dir=args.cache)
    images = read_input(args.input, layout=args.layout)
    out = Path(args.out)
    protected = protected_folders(Path(args.input), images, None) | {Path(args.model)}
    check_out_dir(out, protected, args.force)
    if args.cache:
        check_out_dir(Path(args.cache), protected, args.force, flag="--cache")
    result = est.assign([str(p) for p in images.paths])
    rows = _write(out, images, result, est.cluster_names_, {
        "anoclust_version": __version__, "model": str(Path(args.model).resolve()),
        "input": str(Path(args.input).resolve()), "cwd": os.getcwd()})
    n_unknown = sum(r[1] == "unknown" for r in rows)
    n_normal = sum(r[1] == "normal" for r in rows)
    print(f"assigned {len(rows)} images: {len(rows) - n_unknown - n_normal} to clusters, {n_unknown} unknown, "
          f"{n_normal} normal; results in {out}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable file(s): see {out}/skipped.csv")
    return 0


@all_or_nothing
def _write(out: Path, images, result, names: list[str] | None, config: dict) -> list[list]:
    out.mkdir(parents=True, exist_ok=True)
    labelled = images.labels is not None
    header = ["path", "cluster", "nearest_cluster"] + (["label"] if labelled else []) + ["distance", "max_patch_score"]
    rows = []
    for i, p in enumerate(images.paths):
        label = int(result.labels[i])
        if label == UNREADABLE:
            continue
        nearest = "" if label == NORMAL else cluster_name(label, names=names)
        row = [str(p), cluster_name(label, bool(result.unknown[i]), names), nearest]
        row += [images.labels[i]] if labelled else []
        dist, score = result.distances[i], result.max_scores[i]
        rows.append(row + ["" if math.isnan(dist) else f"{dist:.6g}", "" if math.isnan(score) else f"{score:.6g}"])
    write_csv(out / "assignments.csv", header, rows)
    write_csv(out / "skipped.csv", ["path", "reason"], result.skipped)
    write_json(out / "config.json", config)  # `cwd`: what the relative paths are relative to
    return rows
