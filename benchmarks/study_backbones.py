"""Backbones and their combinations, with the default settings otherwise.

    PYTHONPATH=src python benchmarks/study_backbones.py --backbones mobilenet_v2,efficientnet_lite0,mobilenet_v2+efficientnet_lite0 --out docs/study_backbones.md

A combination concatenates the patch features of its backbones position by position, so its
members must give the same patch grid at the default input size. Reference weighting on every
study set, with the NMI over random 90% subsets next to the full-set NMI (studyset.score).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anoclust.evaluation import Embedded  # noqa: E402
from anoclust.pipeline import ClusterSettings  # noqa: E402
from studyset import embed, score, study_sets  # noqa: E402


def combined(dataset, names: list[str], cache: str) -> Embedded:
    parts = [embed(dataset, replace(ClusterSettings(), backbone=n), cache) for n in names]
    if len(parts) == 1:
        return parts[0]
    if len({p.bags.shape[:2] for p in parts}) != 1:
        raise SystemExit(f"{'+'.join(names)}: the backbones give different patch grids")
    normal = None if parts[0].normal_bags is None else np.concatenate([p.normal_bags for p in parts], -1)
    return Embedded(dataset, np.concatenate([p.bags for p in parts], -1), parts[0].truth, normal)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backbones", default="mobilenet_v2,efficientnet_lite0,mobilenet_v2+efficientnet_lite0",
                    help="comma-separated; '+' joins the members of a combination")
    ap.add_argument("--out", default="study_backbones.md")
    ap.add_argument("--cache", default="/tmp/anoclust-cache")
    ap.add_argument("--work", help="folder for the synthetic sets (default: a temporary folder)")
    ap.add_argument("--subsets", type=int, default=10)
    args = ap.parse_args()
    sets = study_sets(Path(args.work or tempfile.mkdtemp(prefix="anoclust-study-")))
    lines = ["| backbones | " + " | ".join(f"{d.name} NMI" + (" / F1" if d.name == "mtd" else "") for d in sets) + " |",
             "|---|" + "---|" * len(sets)]
    for spec in args.backbones.split(","):
        cells = []
        for d in sets:
            r = score(combined(d, spec.split("+"), args.cache), ClusterSettings(), "reference", [0], args.subsets)
            cells.append(f"{r['nmi'][0]:.3f} (subsets {r['nmi_sub'][0]:.3f}±{r['nmi_sub'][1]:.3f})"
                         + (f" / {r['f1'][0]:.3f}" if d.name == "mtd" else ""))
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    Path(args.out).write_text(f"Reference weighting, default settings otherwise; in brackets the NMI over "
                              f"{args.subsets} random 90% subsets; generated {time.strftime('%Y-%m-%d %H:%M')} by "
                              "`benchmarks/study_backbones.py`.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
